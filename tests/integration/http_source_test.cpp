// The http source in the real `sluice` binary, driven by curl: Pub/Sub pushes in both shapes
// (seed 001's CloudEvent sample among them), plain JSON posts, 2,000 concurrent pushes each
// written exactly once, the 400/404/405/413 answers, a SIGTERM while pushes are in flight (every
// push answered 2xx is in the output), and the durability property against a PostgreSQL sink
// whose server is stopped: no 2xx until the row is in the table. Every wait is bounded.
#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/integration/postgres.h"

using namespace sluice::testing;

namespace {

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string Base64(const std::string& in) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                       (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
  }
  if (i < in.size()) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string Ride(int id) {
  return "{\"ride\": {\"PULocationID\": " + std::to_string(id % 265 + 1) +
         ", \"DOLocationID\": 7, \"trip_distance\": 1.5}, \"ride_id\": " + std::to_string(id) + "}";
}

// The push subscription's JSON around `record`.
std::string Push(const std::string& record, int id) {
  return "{\"message\": {\"data\": \"" + Base64(record) + "\", \"messageId\": \"" +
         std::to_string(id) +
         "\", \"attributes\": {}}, \"subscription\": \"projects/p/subscriptions/rides\"}";
}

const char* kSeedCloudEvent = R"({
  "data": {
    "message": {
      "_comment": "data is base64 encoded string of 'Hello World'",
      "data": "ewogICAgInJpZGUiOiB7CiAgICAgICAgIlBVTG9jYXRpb25JRCI6IDEzMCwKICAgICAgICAiRE9Mb2NhdGlvbklEIjogMjA1LAogICAgICAgICJ0cmlwX2Rpc3RhbmNlIjogMy42NgogICAgfSwgCiAgICAicmlkZV9pZCI6IDEyMwp9"
    }
  },
  "type": "google.cloud.pubsub.topic.v1.messagePublished",
  "specversion": "1.0",
  "source": "//pubsub.googleapis.com/",
  "id": "1234567890"
})";

// Shell text: starts `sluice run DIR/p.yaml` in the background ($sluice) and waits until `url`
// answers (any status).
std::string StartSluice(const TempDir& dir, const std::string& url) {
  return Sluice() + " run " + (dir / "p.yaml") + " >" + (dir / "run.out") + " 2>" +
         (dir / "run.err") + " &\nsluice=$!\nfor i in $(seq 1 100); do curl -s -o /dev/null " +
         url + " && break; sleep 0.1; done\n";
}

// Shell text: POSTs file `body` to `url`; the status goes to DIR/NAME.code, the answer to
// DIR/NAME.body.
std::string Post(const TempDir& dir, const std::string& name, const std::string& body,
                 const std::string& url) {
  return "curl -s -m 30 -o " + (dir / (name + ".body")) + " -w '%{http_code}' --data-binary @" +
         body + " " + url + " >" + (dir / (name + ".code")) + "\n";
}

// A curl config that POSTs push `first`..`first + n - 1` (files DIR/push/ID.json) to `url`?id=ID,
// each printing "STATUS URL".
std::string PushConfig(const TempDir& dir, const std::string& url, int first, int n) {
  std::filesystem::create_directories(dir / "push");
  std::string cfg;
  for (int id = first; id < first + n; ++id) {
    if (id > first) cfg += "next\n";
    const std::string file = dir / ("push/" + std::to_string(id) + ".json");
    WriteFile(file, Push(Ride(id), id));
    cfg += "url = \"" + url + "?id=" + std::to_string(id) + "\"\ndata-binary = \"@" + file +
           "\"\noutput = \"/dev/null\"\nwrite-out = \"%{http_code} %{url}\\n\"\nmax-time = 60\n"
           "silent\n";
  }
  return cfg;
}

// "STATUS URL?id=N" lines → id → status.
std::map<int, int> Statuses(const std::string& text) {
  std::map<int, int> out;
  for (const std::string& line : LinesOf(text)) {
    const size_t at = line.rfind("?id=");
    if (at == std::string::npos) continue;
    out[std::stoi(line.substr(at + 4))] = std::stoi(line.substr(0, 3));
  }
  return out;
}

// ride_id of each line of a JSON-lines file, in order.
std::vector<int> RideIds(const std::string& text) {
  std::vector<int> out;
  for (const std::string& line : LinesOf(text)) {
    const size_t at = line.find("\"ride_id\":");
    if (at != std::string::npos) out.push_back(std::stoi(line.substr(at + 10)));
  }
  return out;
}

std::string Code(const TempDir& dir, const std::string& name) {
  return Slurp(dir / (name + ".code"));
}
std::string Answer(const TempDir& dir, const std::string& name) {
  return Slurp(dir / (name + ".body"));
}

}  // namespace

TEST_CASE("http source: pushes and posts are written once each, and answered after",
          "[integration][http-source]") {
  TempDir dir;
  const int port = FreeLoopbackPort();
  const int plain_port = FreeLoopbackPort();
  const std::string push = "http://127.0.0.1:" + std::to_string(port) + "/push";
  const std::string plain = "http://127.0.0.1:" + std::to_string(plain_port) + "/";
  WriteFile(dir / "p.yaml",
            "name: push\nsources:\n"
            "  pushes: {type: http, address: \"127.0.0.1:" +
                std::to_string(port) +
                "\", path: /push, format: pubsub, schema: " + Source("schemas/ride_event.json") +
                ", max_connections: 16}\n"
                "  posts: {type: http, address: \"127.0.0.1:" +
                std::to_string(plain_port) +
                "\", format: json, schema: " + Source("schemas/ride_event.json") +
                "}\n"
                "sinks:\n"
                "  out: {type: file, inputs: [pushes], path: out.jsonl}\n"
                "  posted: {type: file, inputs: [posts], path: posted.jsonl}\n"
                "dead_letter: {path: dead.jsonl}\n");
  WriteFile(dir / "seed.json", kSeedCloudEvent);
  WriteFile(dir / "standard.json", Push(Ride(5), 5));
  std::string unpadded = Base64(Ride(6) + " ");
  REQUIRE(unpadded.back() == '=');
  while (unpadded.back() == '=') unpadded.pop_back();
  WriteFile(dir / "unpadded.json", "{\"message\": {\"data\": \"" + unpadded + "\"}}");
  WriteFile(dir / "bad64.json", "{\"message\": {\"data\": \"eyJyaWRl*\"}}");
  WriteFile(dir / "nodata.json", "{\"message\": {\"messageId\": \"1\"}}");
  WriteFile(dir / "notjson.json", "ride 7, please");
  WriteFile(dir / "noride.json", Push("{\"ride_id\": 8}", 8));
  WriteFile(dir / "lines.jsonl",
            Ride(10) + "\n" + Ride(11) +
                "\n\n{\n  \"ride\": {\"PULocationID\": 1,"
                " \"DOLocationID\": 2, \"trip_distance\": 0.5},\n  \"ride_id\": 12\n}\n");
  WriteFile(dir / "mixed.jsonl", Ride(13) + "\n{\"ride_id\": \"x\"}\n");
  WriteFile(dir / "big.json", "{\"message\": {\"data\": \"" + std::string(2 << 20, 'A') + "\"}}");
  constexpr int kConcurrent = 2000;
  WriteFile(dir / "many.cfg", PushConfig(dir, push, 1000, kConcurrent));

  std::string script = StartSluice(dir, push);
  script += Post(dir, "seed", dir / "seed.json", push);
  script += Post(dir, "standard", dir / "standard.json", push);
  script += Post(dir, "unpadded", dir / "unpadded.json", push);
  script += Post(dir, "bad64", dir / "bad64.json", push);
  script += Post(dir, "nodata", dir / "nodata.json", push);
  script += Post(dir, "notjson", dir / "notjson.json", push);
  script += Post(dir, "noride", dir / "noride.json", push);
  script += Post(dir, "big", dir / "big.json", push);
  script += Post(dir, "lines", dir / "lines.jsonl", plain);
  script += Post(dir, "mixed", dir / "mixed.jsonl", plain);
  script += "curl -s -o /dev/null -w '%{http_code}' " + push + " >" + (dir / "get.code") + "\n";
  script += Post(dir, "elsewhere", dir / "seed.json", push + "/other");
  script += "curl -s --no-progress-meter --parallel --parallel-max 64 -K " + (dir / "many.cfg") +
            " >" + (dir / "many.out") + "\n";
  script += "kill -TERM $sluice\nwait $sluice\necho exit=$?\n";
  CommandResult r = Run(script);
  const std::string err = Slurp(dir / "run.err");
  INFO(r.out << r.err << err);
  CHECK(Contains(r.out, "exit=0"));

  CHECK(Code(dir, "seed") == "200");
  CHECK(Answer(dir, "seed") == "{\"accepted\":1}");
  CHECK(Code(dir, "standard") == "200");
  CHECK(Code(dir, "unpadded") == "200");
  CHECK(Code(dir, "bad64") == "400");
  CHECK(Contains(Answer(dir, "bad64"), "'*' at character 9 is not base64"));
  CHECK(Code(dir, "nodata") == "400");
  CHECK(Contains(Answer(dir, "nodata"), "the message has no 'data'"));
  CHECK(Code(dir, "notjson") == "400");
  CHECK(Contains(Answer(dir, "notjson"), "not JSON"));
  CHECK(Code(dir, "noride") == "400");
  CHECK(Contains(Answer(dir, "noride"), "ride"));
  CHECK(Code(dir, "big") == "413");
  CHECK(Code(dir, "lines") == "200");
  CHECK(Answer(dir, "lines") == "{\"accepted\":3}");
  CHECK(Code(dir, "mixed") == "400");
  CHECK(Contains(Answer(dir, "mixed"), "\"accepted\":1,\"rejected\":[{\"record\":1,"));
  CHECK(Contains(Answer(dir, "mixed"), "ride_id"));
  CHECK(Slurp(dir / "get.code") == "405");
  CHECK(Code(dir, "elsewhere") == "404");

  // Every concurrent push answered 200, and written exactly once.
  const std::map<int, int> many = Statuses(Slurp(dir / "many.out"));
  CHECK(many.size() == static_cast<size_t>(kConcurrent));
  int ok = 0;
  for (const auto& [id, status] : many) ok += status == 200;
  CHECK(ok == kConcurrent);
  std::map<int, int> written;
  for (int id : RideIds(Slurp(dir / "out.jsonl"))) ++written[id];
  std::set<int> expected = {123, 5, 6};
  for (int id = 1000; id < 1000 + kConcurrent; ++id) expected.insert(id);
  std::set<int> got;
  int duplicates = 0;
  for (const auto& [id, n] : written) {
    got.insert(id);
    duplicates += n > 1;
  }
  CHECK(got == expected);
  CHECK(duplicates == 0);
  // The seed's sample decodes to its ride, nested fields included.
  CHECK(Contains(Slurp(dir / "out.jsonl"),
                 "{\"ride\":{\"PULocationID\":130,\"DOLocationID\":205,\"trip_distance\":3.66},"
                 "\"ride_id\":123}"));
  CHECK(RideIds(Slurp(dir / "posted.jsonl")) == std::vector<int>{10, 11, 12, 13});

  // Each undecodable body is a dead letter with its reason and the body as received.
  const std::string dead = Slurp(dir / "dead.jsonl");
  CHECK(LinesOf(dead).size() == 5u);
  CHECK(Contains(dead, "is not base64"));
  CHECK(Contains(dead, "\"input\":\"ride 7, please\""));
  CHECK(Contains(dead, "\"input\":\"{\\\"message\\\": {\\\"messageId\\\": \\\"1\\\"}}\""));
  CHECK(Contains(dead, "\"origin\":\"" + push + "\""));
}

TEST_CASE("http source: a stop drains, and every push answered 2xx is written",
          "[integration][http-source]") {
  TempDir dir;
  const int port = FreeLoopbackPort();
  const std::string push = "http://127.0.0.1:" + std::to_string(port) + "/";
  WriteFile(dir / "p.yaml", "name: push\nsources:\n  pushes: {type: http, address: \"127.0.0.1:" +
                                std::to_string(port) +
                                "\", format: pubsub, schema: " + Source("schemas/ride_event.json") +
                                "}\nsinks:\n  out: {type: file, inputs: [pushes], path: "
                                "out.jsonl}\n");
  constexpr int kPushes = 3000;
  WriteFile(dir / "many.cfg", PushConfig(dir, push, 1, kPushes));
  // The stop comes once a few hundred pushes were answered, while the rest are in flight.
  std::string script = StartSluice(dir, push);
  script += "curl -s --no-progress-meter --parallel --parallel-max 32 -K " + (dir / "many.cfg") +
            " >" + (dir / "many.out") + " &\ncurls=$!\n";
  script += "for i in $(seq 1 300); do [ $(grep -c '^200' " + (dir / "many.out") +
            " 2>/dev/null || echo 0) -ge 300 ] && break; sleep 0.05; done\n";
  script += "kill -TERM $sluice\nwait $sluice\necho exit=$?\nwait $curls\n";
  CommandResult r = Run(script);
  INFO(r.out << r.err << Slurp(dir / "run.err"));
  CHECK(Contains(r.out, "exit=0"));
  const std::map<int, int> statuses = Statuses(Slurp(dir / "many.out"));
  std::set<int> written;
  for (int id : RideIds(Slurp(dir / "out.jsonl"))) written.insert(id);
  int ok = 0, lost = 0, other = 0;
  for (const auto& [id, status] : statuses) {
    if (status == 200) {
      ++ok;
      lost += written.count(id) == 0;
    } else if (status != 503 && status != 0) {
      ++other;  // a refused connection after the stop shows as 000
    }
  }
  CHECK(ok >= 300);
  CHECK(lost == 0);
  CHECK(other == 0);
}

TEST_CASE("http source: no 2xx while the database is down; a redelivery lands once it is back",
          "[integration][http-source][postgres]") {
  ThrowawayPostgres pg;
  TempDir dir;
  const int port = FreeLoopbackPort();
  const std::string push = "http://127.0.0.1:" + std::to_string(port) + "/";
  WriteFile(dir / "ride_id.json",
            "{\"type\": \"object\", \"properties\": {\"ride_id\": {\"type\": \"integer\"}}, "
            "\"required\": [\"ride_id\"]}");
  WriteFile(
      dir / "p.yaml",
      "name: push\nsources:\n  pushes: {type: http, address: \"127.0.0.1:" + std::to_string(port) +
          "\", format: pubsub, schema: ride_id.json, ack_timeout_ms: 1500}\n"
          "sinks:\n  db: {type: postgres, inputs: [pushes], url: \"" +
          pg.url() + "\", table: rides, create: true, mode: upsert, key: [ride_id]}\n");
  WriteFile(dir / "first.json", Push(Ride(1), 1));
  WriteFile(dir / "second.json", Push(Ride(2), 2));
  std::string script = StartSluice(dir, push);
  script += Post(dir, "first", dir / "first.json", push);
  script += pg.StopCommand() + " >/dev/null\n";
  script += Post(dir, "down", dir / "second.json", push);
  script += pg.StartCommand() + " >/dev/null\n";
  // Redelivered until acknowledged, as Pub/Sub does (bounded).
  script += "for i in $(seq 1 40); do\n" + Post(dir, "again", dir / "second.json", push) +
            "  [ \"$(cat " + (dir / "again.code") + ")\" = 200 ] && break\ndone\n";
  script += "kill -TERM $sluice\nwait $sluice\necho exit=$?\n";
  CommandResult r = Run(script);
  pg.SetRunning(true);
  INFO(r.out << r.err << Slurp(dir / "run.err"));
  CHECK(Code(dir, "first") == "200");
  CHECK(Code(dir, "down") == "503");
  CHECK(Contains(Answer(dir, "down"), "not acknowledged within 1500 ms"));
  CHECK(Code(dir, "again") == "200");
  CHECK(Contains(r.out, "exit=0"));
  CHECK(pg.Value("SELECT string_agg(ride_id::text, ',' ORDER BY ride_id) FROM rides") == "1,2");
}
