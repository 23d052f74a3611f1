#include "engine/testing.h"

#include <charconv>
#include <cmath>
#include <regex>

#include <fmt/format.h>
#include <simdjson.h>

#include "engine/formats.h"
#include "engine/json.h"

namespace sluice {

Result<std::unique_ptr<InMemoryRun>> InMemoryRun::Build(Plan& plan) {
  std::unique_ptr<InMemoryRun> run(new InMemoryRun(plan));
  const size_t n = plan.nodes.size();
  run->contexts_.resize(n);
  run->decoders_.resize(n);
  run->transforms_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    PlannedNode& pn = plan.nodes[i];
    if (!pn.ok) return Status::InvalidConfig(fmt::format("node '{}' is not valid", pn.cfg->name));
    run->contexts_[i] = std::make_unique<NodeContext>(pn.cfg->name, &run->dead_letters_);
    if (pn.source) {
      SLUICE_ASSIGN_OR_RETURN(run->decoders_[i], pn.source->MakeDecoder());
    } else if (pn.transform) {
      SLUICE_ASSIGN_OR_RETURN(run->transforms_[i], pn.transform->Build());
    }
  }
  return run;
}

namespace {
std::shared_ptr<RawRecords> ToRaw(const std::vector<std::string>& lines) {
  auto raw = std::make_shared<RawRecords>();
  raw->origin = "test";
  raw->offsets.push_back(0);
  int64_t pos = 0;
  for (const auto& l : lines) raw->Add(l, ++pos);
  raw->data.reserve(raw->data.size() + 64);
  return raw;
}
}  // namespace

Status InMemoryRun::InjectLines(const std::string& node, const std::vector<std::string>& lines) {
  int i = plan_.IndexOf(node);
  if (i < 0 || !decoders_[i]) {
    return Status::InvalidConfig(fmt::format("'{}' is not a source of this pipeline", node));
  }
  std::shared_ptr<RawRecords> raw;
  if (decoders_[i]->TakesHeader() && !lines.empty()) {
    raw = ToRaw(std::vector<std::string>(lines.begin() + 1, lines.end()));
    raw->header = lines[0];
  } else {
    raw = ToRaw(lines);
  }
  SLUICE_ASSIGN_OR_RETURN(auto batch, decoders_[i]->Decode(raw, *contexts_[i]));
  return Emit(i, batch);
}

Status InMemoryRun::InjectRecords(const std::string& node,
                                  const std::vector<std::string>& objects) {
  int i = plan_.IndexOf(node);
  if (i < 0) return Status::InvalidConfig(fmt::format("'{}' is not a node of this pipeline", node));
  const PlannedNode& pn = plan_.nodes[i];
  SchemaPtr schema = pn.source ? pn.output_schema : pn.input_schema;
  auto decoder = MakeFormatDecoder(Format::kJson, schema);
  SLUICE_ASSIGN_OR_RETURN(auto batch, decoder->Decode(ToRaw(objects), *contexts_[i]));
  if (pn.source) return Emit(i, batch);
  return Deliver(i, batch);
}

Status InMemoryRun::Deliver(int i, const BatchPtr& batch) {
  const PlannedNode& pn = plan_.nodes[i];
  if (pn.sink) {
    seen_[i].push_back(batch);
    return Status::Ok();
  }
  auto out = transforms_[i]->Process(batch, *contexts_[i]);
  BatchPtr result;
  if (out.ok() && *out) {
    result = *out;
  } else {
    std::string reason = out.ok() ? "no output" : out.status().message();
    for (size_t r = 0; r < batch->num_rows(); ++r) contexts_[i]->Reject(*batch, r, reason);
    result = batch->Empty(pn.output_schema);
  }
  return Emit(i, result);
}

Status InMemoryRun::Emit(int i, const BatchPtr& batch) {
  seen_[i].push_back(batch);
  for (int o : plan_.nodes[i].outputs) SLUICE_RETURN_IF_ERROR(Deliver(o, batch));
  return Status::Ok();
}

Result<std::vector<std::string>> InMemoryRun::Rows(const std::string& node) const {
  int i = plan_.IndexOf(node);
  if (i < 0) return Status::InvalidConfig(fmt::format("'{}' is not a node of this pipeline", node));
  std::vector<std::string> out;
  auto it = seen_.find(i);
  if (it == seen_.end()) return out;
  for (const auto& b : it->second) {
    const RowJsonEncoder encoder(*b->schema());
    for (size_t r = 0; r < b->num_rows(); ++r) {
      std::string s;
      encoder.Append(s, *b, r);
      out.push_back(std::move(s));
    }
  }
  return out;
}

std::string YamlToJson(const YAML::Node& node) {
  std::string out;
  if (node.IsMap()) {
    out.push_back('{');
    bool first = true;
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (!first) out.push_back(',');
      first = false;
      AppendJsonString(out, it->first.Scalar());
      out.push_back(':');
      out += YamlToJson(it->second);
    }
    out.push_back('}');
  } else if (node.IsSequence()) {
    out.push_back('[');
    for (size_t i = 0; i < node.size(); ++i) {
      if (i) out.push_back(',');
      out += YamlToJson(node[i]);
    }
    out.push_back(']');
  } else if (!node.IsDefined() || node.IsNull()) {
    out = "null";
  } else {
    const std::string& s = node.Scalar();
    if (node.Tag() == "!") {  // quoted: always a string
      AppendJsonString(out, s);
      return out;
    }
    if (s == "true" || s == "false") return s;
    if (s == "null" || s == "~") return "null";
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end == s.c_str() + s.size() && std::isfinite(d) &&
        s.find_first_of("xXpP") == std::string::npos) {
      // YAML numbers such as .5, +1 or 007 are not JSON numbers: write them in JSON's grammar.
      static const std::regex kJsonNumber(R"(-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?)");
      if (std::regex_match(s, kJsonNumber)) return s;
      int64_t i;
      auto r = std::from_chars(s.data() + (s[0] == '+'), s.data() + s.size(), i, 10);
      if (r.ec == std::errc() && r.ptr == s.data() + s.size()) return std::to_string(i);
      AppendJsonDouble(out, d);
      return out;
    }
    AppendJsonString(out, s);
  }
  return out;
}

namespace {

// yaml-cpp's const operator[] yields an invalid node for a missing key, and most accessors throw
// on it; this returns an empty (null) node instead.
YAML::Node At(const YAML::Node& node, const char* key) {
  if (!node.IsMap()) return YAML::Node();
  YAML::Node v = node[key];
  return v.IsDefined() ? v : YAML::Node();
}

// Compares an expected YAML value with an actual JSON value; returns the difference, or empty.
std::string Compare(const YAML::Node& expected, simdjson::dom::element actual, double tolerance) {
  std::string want = YamlToJson(expected);
  simdjson::dom::parser p;
  simdjson::dom::element w;
  simdjson::padded_string pw(want);
  if (p.parse(pw).get(w)) return "cannot read the expected value";
  auto text = [](simdjson::dom::element e) { return simdjson::minify(e); };
  if (w.is_number() && actual.is_number()) {
    double a = double(actual.get_double()), b = double(w.get_double());
    if (std::fabs(a - b) <= tolerance * std::max(1.0, std::fabs(b))) return "";
    return fmt::format("is {}, expected {}", text(actual), want);
  }
  if (w.is_string() && actual.is_string()) {
    std::string_view a = actual.get_string(), b = w.get_string();
    if (a == b) return "";
    // Timestamps compare as instants, whatever their spelling.
    auto ta = ParseTimestamp(a), tb = ParseTimestamp(b);
    if (ta.ok() && tb.ok() && *ta == *tb) return "";
    return fmt::format("is {}, expected {}", text(actual), want);
  }
  if (text(actual) == text(w)) return "";
  return fmt::format("is {}, expected {}", text(actual), want);
}

}  // namespace

std::vector<TestCaseResult> RunPipelineTests(Plan& plan, const YAML::Node& tests,
                                             const std::string& file) {
  std::vector<TestCaseResult> results;
  if (!tests.IsDefined() || tests.IsNull()) return results;
  if (!tests.IsSequence()) {
    results.push_back({"tests", Mark::Of(file, tests), {"'tests' must be a list of test cases"}});
    return results;
  }
  int index = 0;
  for (const auto& tc : tests) {
    ++index;
    TestCaseResult res;
    res.mark = Mark::Of(file, tc);
    res.name = At(tc, "name").IsScalar() ? At(tc, "name").Scalar() : fmt::format("case {}", index);
    auto fail = [&](const YAML::Node& at, std::string msg) {
      res.failures.push_back(fmt::format("{}: {}", Mark::Of(file, at).ToString(), msg));
    };
    try {
      auto built = InMemoryRun::Build(plan);
      if (!built.ok()) {
        fail(tc, built.status().message());
        results.push_back(std::move(res));
        continue;
      }
      InMemoryRun& run = **built;
      YAML::Node input = At(tc, "input");
      if (!input.IsMap() || !At(input, "node").IsScalar()) {
        fail(tc, "a test case needs 'input: {node: NAME, records: [...]}' (or lines: [...])");
        results.push_back(std::move(res));
        continue;
      }
      std::string at = At(input, "node").Scalar();
      Status st;
      if (At(input, "lines").IsSequence()) {
        std::vector<std::string> lines;
        for (const auto& l : At(input, "lines")) lines.push_back(l.Scalar());
        st = run.InjectLines(at, lines);
      } else if (At(input, "records").IsSequence()) {
        std::vector<std::string> objs;
        for (const auto& r : At(input, "records")) objs.push_back(YamlToJson(r));
        st = run.InjectRecords(at, objs);
      } else {
        st = Status::InvalidConfig("'input' needs 'records' (a list of rows) or 'lines'");
      }
      if (!st.ok()) fail(input, st.message());
      // `expect` is one expectation or a list of them. (Assigning to a yaml-cpp node that
      // refers into the tree would rewrite the tree, so collect them instead.)
      std::vector<YAML::Node> expectations;
      const YAML::Node expect = At(tc, "expect");
      if (expect.IsMap()) {
        expectations.push_back(expect);
      } else if (expect.IsSequence()) {
        for (const auto& e : expect) expectations.push_back(e);
      }
      for (const auto& e : expectations) {
        if (!At(e, "node").IsScalar()) {
          fail(e, "an expectation needs 'node'");
          continue;
        }
        std::string node = At(e, "node").Scalar();
        auto rows = run.Rows(node);
        if (!rows.ok()) {
          fail(At(e, "node"), rows.status().message());
          continue;
        }
        double tolerance =
            At(e, "tolerance").IsScalar() ? std::stod(At(e, "tolerance").Scalar()) : 1e-9;
        if (At(e, "count").IsScalar() && std::to_string(rows->size()) != At(e, "count").Scalar()) {
          fail(At(e, "count"), fmt::format("node '{}' has {} row(s), expected {}", node,
                                           rows->size(), At(e, "count").Scalar()));
        }
        YAML::Node records = At(e, "records");
        if (!records.IsSequence()) continue;
        if (records.size() != rows->size()) {
          fail(records, fmt::format("node '{}' has {} row(s), expected {}", node, rows->size(),
                                    records.size()));
        }
        simdjson::dom::parser parser;
        for (size_t r = 0; r < std::min<size_t>(records.size(), rows->size()); ++r) {
          simdjson::dom::element actual;
          simdjson::padded_string padded((*rows)[r]);
          if (parser.parse(padded).get(actual)) continue;
          for (auto it = records[r].begin(); it != records[r].end(); ++it) {
            std::string key = it->first.Scalar();
            simdjson::dom::element value;
            if (actual[key].get(value)) {
              fail(it->first, fmt::format("node '{}' row {}: no field '{}' (row: {})", node, r + 1,
                                          key, (*rows)[r]));
              continue;
            }
            std::string diff = Compare(it->second, value, tolerance);
            if (!diff.empty()) {
              fail(it->second, fmt::format("node '{}' row {}: '{}' {}", node, r + 1, key, diff));
            }
          }
        }
      }
      if (At(tc, "dead_letters").IsScalar()) {
        size_t n = run.dead_letters().count();
        if (std::to_string(n) != At(tc, "dead_letters").Scalar()) {
          std::string reasons;
          for (const auto& d : run.dead_letters().records())
            reasons += fmt::format("\n      {}: {}", d.node, d.reason);
          fail(At(tc, "dead_letters"), fmt::format("{} dead letters, expected {}{}", n,
                                                   At(tc, "dead_letters").Scalar(), reasons));
        }
      }
    } catch (const std::exception& e) {
      fail(tc, fmt::format("invalid test case: {}", e.what()));
    }
    results.push_back(std::move(res));
  }
  return results;
}

}  // namespace sluice
