// The http sink against a local webhook receiver (tests/integration/webhook_receiver.py, on a
// free loopback port, recording every POST with its time and its answer): every row posted once
// with its text, Retry-After honoured, 5xx retried, failures dead-lettered and none dropped, the
// rate limit kept. Each test starts its own receiver and kills it (a shell trap covers early
// exits); every wait is bounded.
#include <catch2/catch.hpp>

#include <simdjson.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/integration/process.h"

using namespace sluice::testing;

namespace {

const char* kSchema = R"({
  "type": "object",
  "properties": {
    "id": {"type": "integer"},
    "merchant": {"type": "string"},
    "amt": {"type": "number"},
    "probability": {"type": "number"}
  },
  "required": ["id", "merchant", "amt", "probability"]
})";

std::string Row(int id) {
  const std::string merchant = id == 2 ? "A&B <shop>" : "shop_" + std::to_string(id);
  return "{\"id\": " + std::to_string(id) + ", \"merchant\": \"" + merchant +
         "\", \"amt\": " + std::to_string(10 * id) + ".5, \"probability\": 0.9" +
         std::to_string(id) + "1}";
}

// The Slack text the sink should post for Row(id) with kTemplate.
std::string Text(int id) {
  const std::string merchant = id == 2 ? "A&amp;B &lt;shop&gt;" : "shop_" + std::to_string(id);
  const std::string p = std::to_string(9 * 10 + id);  // 0.9<id>1 to two decimals
  return "Fraud suspected: " + std::to_string(10 * id) + ".5 at " + merchant + " (id " +
         std::to_string(id) + ", p=0." + p + ")";
}

const std::string kTemplate =
    "\"Fraud suspected: {amt} at {merchant} (id {id}, p={probability:.2f})\"";

struct Post {
  double t = 0;
  int status = 0;
  std::string body;
};

std::vector<Post> Posts(const std::string& log) {
  std::vector<Post> out;
  simdjson::dom::parser parser;
  for (const auto& line : LinesOf(Slurp(log))) {
    simdjson::padded_string padded(line);
    simdjson::dom::element doc;
    REQUIRE_FALSE(parser.parse(padded).get(doc));
    Post p;
    p.t = double(doc["t"]);
    p.status = static_cast<int>(int64_t(doc["status"]));
    p.body = std::string(std::string_view(doc["body"]));
    out.push_back(std::move(p));
  }
  return out;
}

// The `text` of a Slack body.
std::string SlackText(const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(body);
  simdjson::dom::element doc;
  if (parser.parse(padded).get(doc)) return "<not JSON: " + body + ">";
  std::string_view s;
  if (doc["text"].get_string().get(s)) return "<no text: " + body + ">";
  return std::string(s);
}

// The reasons of a dead-letter file, one per row.
std::vector<std::string> Reasons(const std::string& path) {
  std::vector<std::string> out;
  simdjson::dom::parser parser;
  for (const auto& line : LinesOf(Slurp(path))) {
    simdjson::padded_string padded(line);
    simdjson::dom::element doc;
    REQUIRE_FALSE(parser.parse(padded).get(doc));
    out.push_back(std::string(std::string_view(doc["reason"])));
  }
  return out;
}

// Writes `rows` rows and a pipeline (file source → http sink to `url`, with `settings`) to `dir`.
void WritePipeline(const TempDir& dir, int rows, const std::string& settings,
                   const std::string& url) {
  std::ofstream(dir / "s.json") << kSchema;
  std::ofstream in(dir / "in.jsonl");
  for (int i = 1; i <= rows; ++i) in << Row(i) << "\n";
  std::ofstream(dir / "p.yaml") << "name: alerts\nsources:\n  frauds: {type: file, path: "
                                   "in.jsonl, schema: s.json}\n"
                                   "sinks:\n  slack:\n    type: http\n    inputs: [frauds]\n"
                                   "    url: \"" +
                                       url + "\"\n    template: " + kTemplate + "\n" + settings +
                                       "dead_letter: {path: dead.jsonl}\n";
}

// Runs that pipeline against a receiver started with `receiver_args`.
CommandResult RunAgainstReceiver(const TempDir& dir, int rows, const std::string& settings,
                                 const std::string& receiver_args) {
  WritePipeline(dir, rows, settings, "http://127.0.0.1:${PORT}/services/T0/B0/secret");
  const std::string port_file = dir / "port.txt";
  const std::string script =
      "/usr/bin/python3 " + Source("tests/integration/webhook_receiver.py") + " --port-file " +
      port_file + " --log " + (dir / "posts.jsonl") + " " + receiver_args + " 2>" +
      (dir / "receiver.err") + " &\nreceiver=$!\ntrap 'kill -9 $receiver 2>/dev/null' EXIT\n" +
      "for i in $(seq 1 100); do [ -s " + port_file + " ] && break; sleep 0.1; done\n" +
      "export PORT=$(cat " + port_file + ")\n" +
      "for i in $(seq 1 100); do curl -sf http://127.0.0.1:$PORT/health >/dev/null && break; "
      "sleep 0.1; done\n" +
      "timeout 120 " + Sluice() + " run --quiet " + (dir / "p.yaml") + "\n";
  CommandResult r = Run(script);
  INFO(r.err);
  INFO(Slurp(dir / "receiver.err"));
  return r;
}

}  // namespace

TEST_CASE("webhook: N rows give N posts with the template's text, Slack-escaped",
          "[integration][webhook]") {
  TempDir dir;
  CommandResult r = RunAgainstReceiver(dir, 6, "    rate_limit_per_s: 0\n", "");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto posts = Posts(dir / "posts.jsonl");
  REQUIRE(posts.size() == 6u);
  for (int i = 1; i <= 6; ++i) {
    CHECK(posts[i - 1].status == 200);
    CHECK(SlackText(posts[i - 1].body) == Text(i));
  }
  CHECK_FALSE(std::filesystem::exists(dir / "dead.jsonl"));
  // The secret part of the URL is in no message.
  CHECK(r.err.find("secret") == std::string::npos);
}

TEST_CASE("webhook: a 429's Retry-After is waited for, then the post is sent again",
          "[integration][webhook]") {
  TempDir dir;
  // Backoff 10 ms: a retry a second later can only come from the Retry-After.
  CommandResult r =
      RunAgainstReceiver(dir, 3, "    rate_limit_per_s: 0\n    retry_backoff_ms: 10\n",
                         "--fail-status 429 --fail-count 1 --retry-after 1");
  REQUIRE(r.exit_code == 0);
  const auto posts = Posts(dir / "posts.jsonl");
  REQUIRE(posts.size() == 4u);
  CHECK(posts[0].status == 429);
  CHECK(posts[1].body == posts[0].body);
  CHECK(posts[1].t - posts[0].t >= 0.95);
  for (int i = 1; i <= 3; ++i) {
    CHECK(posts[i].status == 200);
    CHECK(SlackText(posts[i].body) == Text(i));
  }
  CHECK_FALSE(std::filesystem::exists(dir / "dead.jsonl"));
}

TEST_CASE("webhook: 5xx answers are retried until the post succeeds", "[integration][webhook]") {
  TempDir dir;
  CommandResult r = RunAgainstReceiver(
      dir, 3, "    rate_limit_per_s: 0\n    retry_backoff_ms: 10\n    max_retries: 3\n",
      "--fail-status 503 --fail-count 3");
  REQUIRE(r.exit_code == 0);
  const auto posts = Posts(dir / "posts.jsonl");
  REQUIRE(posts.size() == 6u);
  std::vector<std::string> delivered;
  for (const auto& p : posts)
    if (p.status == 200) delivered.push_back(SlackText(p.body));
  CHECK(delivered == std::vector<std::string>{Text(1), Text(2), Text(3)});
  // Each retry is logged, with the host of the URL but not its secret path.
  CHECK_THAT(r.err, Catch::Contains("webhook answered 503 (no_service: test answer 503); posting "
                                    "to http://127.0.0.1:"));
  CHECK(r.err.find("secret") == std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / "dead.jsonl"));
}

TEST_CASE("webhook: a lasting 500 dead-letters every row with the answer; none is dropped",
          "[integration][webhook]") {
  TempDir dir;
  SECTION("each row tries max_retries + 1 times when the breaker closes at once") {
    CommandResult r =
        RunAgainstReceiver(dir, 4,
                           "    rate_limit_per_s: 0\n    retry_backoff_ms: 10\n    max_retries: 2\n"
                           "    outage_cooldown_ms: 0\n",
                           "--fail-status 500 --fail-count -1");
    REQUIRE(r.exit_code == 0);
    CHECK(Posts(dir / "posts.jsonl").size() == 12u);
    const auto reasons = Reasons(dir / "dead.jsonl");
    REQUIRE(reasons.size() == 4u);
    for (const auto& reason : reasons) {
      CHECK(reason == "webhook answered 500 after 3 attempts: no_service: test answer 500");
    }
  }
  SECTION("after one row failed for good, the others are dead-lettered without a call") {
    CommandResult r =
        RunAgainstReceiver(dir, 4,
                           "    rate_limit_per_s: 0\n    retry_backoff_ms: 10\n    max_retries: 2\n"
                           "    outage_cooldown_ms: 60000\n",
                           "--fail-status 500 --fail-count -1");
    REQUIRE(r.exit_code == 0);
    CHECK(Posts(dir / "posts.jsonl").size() == 3u);
    const auto reasons = Reasons(dir / "dead.jsonl");
    REQUIRE(reasons.size() == 4u);
    CHECK(reasons[0] == "webhook answered 500 after 3 attempts: no_service: test answer 500");
    for (size_t i = 1; i < reasons.size(); ++i) {
      CHECK_THAT(reasons[i], Catch::StartsWith("webhook not called: a message failed for good"));
      CHECK_THAT(reasons[i], Catch::Contains("webhook answered 500 after 3 attempts"));
    }
  }
  SECTION("an unreachable webhook: the same, with the network error") {
    // Nothing listens on port 1 of the loopback.
    WritePipeline(dir, 2,
                  "    rate_limit_per_s: 0\n    retry_backoff_ms: 10\n    max_retries: 1\n"
                  "    outage_cooldown_ms: 0\n    timeout_ms: 2000\n",
                  "http://127.0.0.1:1/services/T0/B0/secret");
    CommandResult r2 = Run(Sluice() + " run --quiet " + (dir / "p.yaml"));
    INFO(r2.err);
    REQUIRE(r2.exit_code == 0);
    const auto reasons = Reasons(dir / "dead.jsonl");
    REQUIRE(reasons.size() == 2u);
    for (const auto& reason : reasons) {
      CHECK_THAT(reason, Catch::StartsWith("webhook http://127.0.0.1:1/... unreachable after 2 "
                                           "attempts: "));
      CHECK(reason.find("secret") == std::string::npos);
    }
  }
}

TEST_CASE("webhook: a 400 dead-letters the row at once with the server's answer",
          "[integration][webhook]") {
  TempDir dir;
  CommandResult r =
      RunAgainstReceiver(dir, 3, "    rate_limit_per_s: 0\n", "--fail-status 400 --fail-count 1");
  REQUIRE(r.exit_code == 0);
  const auto posts = Posts(dir / "posts.jsonl");
  REQUIRE(posts.size() == 3u);  // no retry of the refused post
  CHECK(posts[0].status == 400);
  const auto reasons = Reasons(dir / "dead.jsonl");
  REQUIRE(reasons.size() == 1u);
  CHECK(reasons[0] == "webhook refused the message with 400: no_service: test answer 400");
  CHECK(SlackText(posts[1].body) == Text(2));
  CHECK(SlackText(posts[2].body) == Text(3));
}

TEST_CASE("webhook: the rate limit spaces the posts", "[integration][webhook]") {
  TempDir dir;
  const int kRows = 12;
  const int kRate = 4;
  CommandResult r = RunAgainstReceiver(dir, kRows, "    rate_limit_per_s: 4\n", "");
  REQUIRE(r.exit_code == 0);
  const auto posts = Posts(dir / "posts.jsonl");
  REQUIRE(posts.size() == static_cast<size_t>(kRows));
  // In any one second the receiver saw at most the rate, plus one for arrival jitter.
  for (size_t i = 0; i < posts.size(); ++i) {
    size_t in_window = 0;
    for (size_t j = i; j < posts.size() && posts[j].t < posts[i].t + 1.0; ++j) ++in_window;
    INFO("posts in the second from post " << i);
    CHECK(in_window <= static_cast<size_t>(kRate + 1));
  }
  // A loose bound: 12 posts at 4 per second span well over two seconds.
  CHECK(posts.back().t - posts.front().t >= 2.0);
}
