// The bad-input suite: a corpus of malformed records (truncated, wrong types, huge numbers, deep
// nesting, invalid UTF-8, NaN and Infinity, wrong shapes) mixed among good ones, through every
// record format of the file source and through the http source's Pub/Sub pushes. Every bad
// record must reach the dead-letter file with a reason, at its own line, and every good record
// must reach the sink: nothing crashes, nothing is lost, nothing bad slips through.
#include <catch2/catch.hpp>

#include <simdjson.h>

#include <map>
#include <set>
#include <string>

#include "tests/integration/process.h"

using namespace sluice::testing;

namespace {

// Writes DIR/<format>.in (good and bad records, one per line), DIR/<format>.bad (the line
// numbers of the bad ones) and DIR/<format>.good (how many good ones) for each format.
const char* kGenerator = R"PY(
import base64, json, sys
out = sys.argv[1]
huge = "x" * 1_000_000
deep = "[" * 5000 + "]" * 5000

def good_json(i, name="n"):
    return json.dumps({"id": i, "score": i / 2, "name": name, "ts": "2024-10-31T15:56:25Z",
                       "ride": {"zone": i % 265 + 1}}).encode()

bad_json = [
    b'{"id": 1, "score": 2.5, "name": "trunc',                       # truncated
    b'{"id": "one", "score": 2.5, "name": "a", "ride": {"zone": 1}}', # wrong type
    b'{"id": 1, "score": "2.5", "name": "a", "ride": {"zone": 1}}',
    b'{"id": 1, "score": 2.5, "name": 7, "ride": {"zone": 1}}',
    b'{"id": 1, "score": 2.5, "name": "a", "ride": "zone 1"}',        # object expected
    b'{"id": 1, "score": 2.5, "name": "a", "ride": {}}',              # missing nested field
    b'{"id": 1, "score": 2.5, "name": "a"}',                          # missing field
    b'{"id": 99999999999999999999, "score": 1, "name": "a", "ride": {"zone": 1}}',  # huge int
    b'{"id": 1, "score": 1e400, "name": "a", "ride": {"zone": 1}}',   # huge float
    b'{"id": 1, "score": NaN, "name": "a", "ride": {"zone": 1}}',
    b'{"id": 1, "score": Infinity, "name": "a", "ride": {"zone": 1}}',
    b'{"id": 1, "score": -Infinity, "name": "a", "ride": {"zone": 1}}',
    b'{"id": "' + huge.encode() + b'", "score": 1, "name": "a", "ride": {"zone": 1}}',  # huge, wrong
    b'{"id": 1, "score": 1, "name": "a", "ride": {"zone": 1}, "x": ' + deep.encode() + b'}',
    b'{"id": 1, "score": 1, "name": "\xff\xfe", "ride": {"zone": 1}}',  # invalid UTF-8
    b'{"id": 1, "score": 1, "name": "\xc3", "ride": {"zone": 1}}',
    b'{"id": 1, "score": 1, "name": "a", "ts": "not a time", "ride": {"zone": 1}}',
    b'{"id": 1, "score": 1, "name": "a", "ts": 9223372036854775807, "ride": {"zone": 1}}',
    b'[1, 2, 3]', b'"just a string"', b'null', b'{}', b'{{}}', b'\x00\x01\x02',
    b'{"id": 1, "id": 2, "score": 1, "name": "a", "ride": {"zone": 1}}',  # duplicate key
]

def interleave(name, goods, bads):
    lines, bad_lines = [], []
    gi = bi = 0
    while gi < len(goods) or bi < len(bads):
        if gi < len(goods):
            lines.append(goods[gi]); gi += 1
        if bi < len(bads) and gi % 3 == 0:
            lines.append(bads[bi]); bi += 1; bad_lines.append(len(lines))
        elif gi >= len(goods) and bi < len(bads):
            lines.append(bads[bi]); bi += 1; bad_lines.append(len(lines))
    with open(f"{out}/{name}.in", "wb") as f:
        f.write(b"\n".join(lines) + b"\n")
    with open(f"{out}/{name}.bad", "w") as f:
        f.write("\n".join(map(str, bad_lines)) + "\n")
    with open(f"{out}/{name}.good", "w") as f:
        f.write(str(len(goods)))

goods = [good_json(i) for i in range(1, 300)] + [good_json(300, huge)]  # a huge string is fine
interleave("json", goods, bad_json)

def envelope(payload):
    return b'{"schema": {"type": "struct"}, "payload": ' + payload + b'}'
interleave("connect-json", [envelope(g) for g in goods],
           [envelope(b) for b in bad_json] +
           [b'{"schema": {}}', b'{"payload": 1}', b'{"schema": {}, "payload": "x"}', b'{"sch'])

csv_header = b"id,score,name,ts,zone"
csv_good = [f"{i},{i / 2},name {i},2024-10-31 15:56:25,{i % 265 + 1}".encode() for i in range(1, 301)]
csv_bad = [b"one,2.5,a,2024-01-01,1", b"1,2.5", b"1,2.5,a,2024-01-01,1,extra",
           b'1,2.5,"unterminated,2024-01-01,1', b"1,NaN,a,2024-01-01,1", b"1,inf,a,2024-01-01,1",
           b"99999999999999999999,1,a,2024-01-01,1", b"1,1e400,a,2024-01-01,1",
           b"1,1,a,not a time,1", b"1,1,\xff\xfe,2024-01-01,1", b",1,a,2024-01-01,1",
           b"1,1,a,2024-01-01,", b'1,1,"a"b,2024-01-01,1']
interleave("csv", csv_good, csv_bad)
with open(f"{out}/csv.in", "rb") as f:
    body = f.read()
with open(f"{out}/csv.in", "wb") as f:
    f.write(csv_header + b"\n" + body)
with open(f"{out}/csv.bad") as f:
    shifted = [str(int(l) + 1) for l in f.read().split()]
with open(f"{out}/csv.bad", "w") as f:
    f.write("\n".join(shifted) + "\n")

cols = ["id", "score", "name", "ts", "zone"]
def frame(rows, columns=cols):
    return json.dumps({"columns": columns, "index": list(range(len(rows))), "data": rows}).encode()
df_good = [frame([[i, i / 2, f"n{i}", "2024-10-31 15:56:25", i % 265 + 1]]) for i in range(1, 301)]
df_bad = [frame([[1, 2.5, "a", "2024-01-01"]]),                   # short row
          frame([["one", 2.5, "a", "2024-01-01", 1]]),            # wrong type
          frame([[1, 2.5, "a", "2024-01-01", 1]], cols[:4]),     # a column missing
          b'{"columns": ["id"], "data": 5}', b'{"data": [[1]]}', b'{"columns": ',
          b'{"columns": ["id", "score", "name", "ts", "zone"], "data": [[1, NaN, "a", "2024-01-01", 1]]}',
          frame([[1, 2.5, "a", "2024-01-01", 99999999999999999999]]),
          b'{"columns": ["id", "score", "name", "ts", "zone"], "data": [[1, 1, "\xff", "2024-01-01", 1]]}',
          b'[1, 2]']
interleave("dataframe-split", df_good, df_bad)

str_good = [f"line {i}".encode() for i in range(1, 301)]
str_bad = [b"\xff\xfe", b"ok then \xc3", b"\xed\xa0\x80 surrogate", b"\xf8\x88\x80\x80\x80"]
interleave("string", str_good, str_bad)

# Pub/Sub push bodies for the http source: good pushes of good records, and bad ones.
pushes, bad_pushes = [], []
for g in goods[:50]:
    pushes.append(json.dumps({"message": {"data": base64.b64encode(g).decode(), "messageId": "1"},
                              "subscription": "s"}))
for b in bad_json[:12] + bad_json[14:16]:
    bad_pushes.append(json.dumps({"message": {"data": base64.b64encode(b).decode()}}))
bad_pushes += ['{"message": {"data": "not base64!"}}', '{"message": {}}', '{"subscription": "s"}',
               '', 'not json', '{"message": {"data": ""}}']
with open(f"{out}/push.good", "w") as f:
    f.write("\n".join(pushes) + "\n")
with open(f"{out}/push.bad", "w") as f:
    f.write("\n".join(bad_pushes) + "\n")
)PY";

const char* kSchema = R"({
  "type": "object",
  "properties": {
    "id": {"type": "integer"}, "score": {"type": "number"}, "name": {"type": "string"},
    "ts": {"type": "string", "format": "date-time"},
    "ride": {"type": "object", "properties": {"zone": {"type": "integer"}}, "required": ["zone"]}
  },
  "required": ["id", "score", "name", "ride"]
})";

const char* kFlatSchema = R"({
  "type": "object",
  "properties": {
    "id": {"type": "integer"}, "score": {"type": "number"}, "name": {"type": "string"},
    "ts": {"type": "string", "format": "date-time"}, "zone": {"type": "integer"}
  },
  "required": ["id", "score", "name", "zone"]
})";

// The dead letters of a file: position → reason.
std::map<int64_t, std::string> DeadLetters(const std::string& path) {
  std::map<int64_t, std::string> out;
  simdjson::dom::parser parser;
  for (const auto& line : LinesOf(Slurp(path))) {
    simdjson::padded_string padded(line);
    simdjson::dom::element doc;
    std::string_view reason;
    int64_t position = -1;
    if (parser.parse(padded).get(doc) || doc["reason"].get(reason) ||
        doc["position"].get(position)) {
      out[-1] = "a dead-letter line that is not JSON: " + line.substr(0, 200);
      continue;
    }
    out[position] = std::string(reason);
  }
  return out;
}

}  // namespace

TEST_CASE("bad records of every format are dead-lettered with a reason; the good ones flow",
          "[integration][bad-input]") {
  TempDir dir;
  std::ofstream(dir / "gen.py") << kGenerator;
  auto gen = Run("/usr/bin/python3 " + (dir / "gen.py") + " " + dir.path().string());
  REQUIRE(gen.exit_code == 0);
  std::ofstream(dir / "nested.json") << kSchema;
  std::ofstream(dir / "flat.json") << kFlatSchema;

  const std::map<std::string, std::string> schema_of = {{"json", "nested.json"},
                                                        {"connect-json", "nested.json"},
                                                        {"csv", "flat.json"},
                                                        {"dataframe-split", "flat.json"},
                                                        {"string", ""}};
  for (const auto& [format, schema] : schema_of) {
    DYNAMIC_SECTION(format) {
      const std::string pipeline = dir / (format + ".yaml");
      std::ofstream(pipeline) << "name: bad-" << format << "\nsources:\n  in: {type: file, path: "
                              << format << ".in, format: " << format
                              << (schema.empty() ? "" : ", schema: " + schema)
                              << "}\nsinks:\n  out: {type: file, inputs: [in], path: " << format
                              << ".out}\ndead_letter: {path: " << format << ".dead.jsonl}\n";
      auto r = Run("timeout 120 " + Sluice() + " run --quiet " + pipeline);
      INFO(r.out + r.err);
      CHECK(r.exit_code == 0);
      const size_t good = std::stoul(Slurp(dir / (format + ".good")));
      CHECK(LinesOf(Slurp(dir / (format + ".out"))).size() == good);
      std::set<int64_t> bad;
      for (const auto& l : LinesOf(Slurp(dir / (format + ".bad")))) bad.insert(std::stoll(l));
      const auto dead = DeadLetters(dir / (format + ".dead.jsonl"));
      for (int64_t line : bad) {
        INFO(format << " line " << line);
        auto it = dead.find(line);
        REQUIRE(it != dead.end());
        CHECK_FALSE(it->second.empty());
      }
      // Nothing else was dead-lettered, and every dead letter is a JSON line.
      CHECK(dead.size() == bad.size());
    }
  }
}

TEST_CASE("bad Pub/Sub pushes are answered 400 and dead-lettered; good ones are written",
          "[integration][bad-input][http]") {
  TempDir dir;
  std::ofstream(dir / "gen.py") << kGenerator;
  REQUIRE(Run("/usr/bin/python3 " + (dir / "gen.py") + " " + dir.path().string()).exit_code == 0);
  std::ofstream(dir / "nested.json") << kSchema;
  std::ofstream(dir / "p.yaml")
      << "name: bad-push\nsources:\n  in: {type: http, address: \"127.0.0.1:${PORT}\", format: "
         "pubsub, schema: nested.json}\nsinks:\n  out: {type: file, inputs: [in], path: "
         "push.out}\ndead_letter: {path: push.dead.jsonl}\n";
  const std::string d = dir.path().string();
  const std::string script =
      "cd " + d + "\nexport PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); "
      "s.bind((\"127.0.0.1\",0)); print(s.getsockname()[1])')\n" +
      Sluice() + " run --quiet p.yaml 2>run.err &\nrun=$!\ntrap 'kill -9 $run 2>/dev/null' EXIT\n"
      "for i in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:$PORT/ && break; "
      "sleep 0.1; done\n"
      "post() { curl -s -o /dev/null -w '%{http_code}\\n' -H 'Content-Type: application/json' "
      "--data-binary \"$1\" http://127.0.0.1:$PORT/; }\n"
      "while IFS= read -r body; do echo \"good $(post \"$body\")\"; done < push.good\n"
      "while IFS= read -r body; do echo \"bad $(post \"$body\")\"; done < push.bad\n"
      "kill -TERM $run; wait $run; echo \"run exit $?\"\n";
  auto r = Run(script);
  INFO(r.out + r.err + Slurp(dir / "run.err"));
  size_t good_ok = 0, bad_400 = 0, bad_other = 0;
  for (const auto& l : LinesOf(r.out)) {
    if (l == "good 200") ++good_ok;
    if (l == "bad 400") ++bad_400;
    if (l.rfind("bad ", 0) == 0 && l != "bad 400") ++bad_other;
  }
  const size_t bad = LinesOf(Slurp(dir / "push.bad")).size() + 1;  // the empty body is a line too
  CHECK(good_ok == LinesOf(Slurp(dir / "push.good")).size());
  CHECK(bad_other == 0u);
  CHECK(bad_400 == bad);
  CHECK(r.out.find("run exit 0") != std::string::npos);
  CHECK(LinesOf(Slurp(dir / "push.out")).size() == good_ok);
  CHECK(LinesOf(Slurp(dir / "push.dead.jsonl")).size() == bad);
}
