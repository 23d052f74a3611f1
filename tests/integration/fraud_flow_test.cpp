// Seed 004's fraud flow end to end, as shipped: pipelines/fraud.yaml (topic_1 → features →
// models:/fraud@champion → topic_2, frauds to a webhook) and pipelines/fraud-logger.yaml
// (topic_2 → fraud_transactions in PostgreSQL) running side by side on the development broker,
// a throwaway PostgreSQL and a local webhook receiver. Transactions arrive in four phases while
// the registry changes under the running pipeline: version 2 published and the alias moved to
// it, the alias moved back (rollback), and a version 3 that does not fit the pipeline. Every
// transaction must land once, scored by the version serving in its phase, and every predicted
// fraud must be alerted once.
#include <catch2/catch.hpp>

#include <simdjson.h>

#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "tests/integration/postgres.h"

using namespace sluice::testing;

namespace {

constexpr int kPhases = 4;
constexpr int kPerPhase = 1500;
// The version that must score each phase: 1; 2 once published and aliased; 1 again after the
// rollback; still 1 after version 3 (which does not fit) was aliased and refused.
const char* kPhaseVersion[kPhases] = {"1", "2", "1", "1"};

// Prints the trans_num of every row of a file of dataframe-split messages.
const char* kTransNums =
    "import json, sys\n"
    "for line in open(sys.argv[1]):\n"
    "    m = json.loads(line)\n"
    "    i = m['columns'].index('trans_num')\n"
    "    for row in m['data']:\n"
    "        print(row[i])\n";

}  // namespace

TEST_CASE("fraud.yaml and fraud-logger.yaml: every transaction once in PostgreSQL, frauds "
          "alerted once, model versions swapped and rolled back mid-stream",
          "[integration][kafka][postgres][fraud]") {
  TempDir dir;
  ThrowawayPostgres pg;
  pg.Sql(Slurp(Source("pipelines/sql/fraud_transactions.sql")));

  // A registry of our own: version 1 (the shipped model) and the champion alias on it.
  const std::string registry = dir / "registry";
  REQUIRE(Run("mkdir -p " + registry + "/fraud/aliases && cp -rL " +
              Source("models/registry/fraud/1") + " " + registry + "/fraud/1 && echo 1 > " +
              registry + "/fraud/aliases/champion")
              .exit_code == 0);

  // Each phase's transactions, 4 rows to a message as the seed's producer may send them.
  std::vector<std::vector<std::string>> phase_ids(kPhases);
  for (int p = 0; p < kPhases; ++p) {
    const std::string file = dir / ("phase" + std::to_string(p) + ".jsonl");
    auto gen = Run("/usr/bin/python3 " + Source("models/fraud_data.py") + " --rows " +
                   std::to_string(kPerPhase) + " --seed " + std::to_string(100 + p) +
                   " --per-message 4 --start-index " + std::to_string(p * kPerPhase) + " -o " +
                   file);
    INFO(gen.err);
    REQUIRE(gen.exit_code == 0);
    std::ofstream(dir / "trans_nums.py") << kTransNums;
    auto ids = Run("/usr/bin/python3 " + (dir / "trans_nums.py") + " " + file);
    REQUIRE(ids.exit_code == 0);
    phase_ids[p] = LinesOf(ids.out);
    REQUIRE(phase_ids[p].size() == static_cast<size_t>(kPerPhase));
  }

  const std::string d = dir.path().string();
  const std::string count_sql =
      "psql -X -At -d '" + pg.url() + "' -c 'SELECT count(*) FROM fraud_transactions'";
  // Waits until fraud_transactions holds $1 rows (at most 90 s), then says how many it holds.
  std::string script = R"SH(
set -u
trap 'kill -TERM $fraud $logger $receiver $broker 2>/dev/null' EXIT
/usr/bin/python3 )SH" + Source("tests/integration/webhook_receiver.py") +
                       " --port-file " + d + "/port --log " + d + R"SH(/posts.jsonl &
receiver=$!
)SH" + StartBroker(dir, "-t topic_1:4 -t topic_2:4 --run-seconds 240") +
                       R"SH(
for i in $(seq 1 100); do [ -s )SH" + d + R"SH(/port ] && break; sleep 0.1; done
export FRAUD_WEBHOOK_URL="http://127.0.0.1:$(cat )SH" + d + R"SH(/port)/services/T0/B0/secret"
export DATABASE_URL=')SH" + pg.url() + R"SH('
export SLUICE_MODEL_REGISTRY=)SH" + registry + R"SH(
export SLUICE_OUT=)SH" + d + R"SH(
export FRAUD_RELOAD_INTERVAL_MS=300
export FRAUD_ALERTS_PER_S=0
)SH" + Sluice() + " run " + Source("pipelines/fraud.yaml") + " 2>" + d + R"SH(/fraud.err &
fraud=$!
)SH" + Sluice() + " run " + Source("pipelines/fraud-logger.yaml") + " 2>" + d + R"SH(/logger.err &
logger=$!
wait_rows() {
  for i in $(seq 1 180); do
    n=$()SH" + count_sql + R"SH()
    [ "$n" -ge "$1" ] && break
    sleep 0.5
  done
  echo "phase rows $n"
}
wait_log() {
  for i in $(seq 1 100); do grep -q "$1" )SH" + d + R"SH(/fraud.err && return 0; sleep 0.1; done
  echo "never logged: $1"
}
alias_to() {
  echo $1 > )SH" + registry + R"SH(/fraud/aliases/.champion
  mv )SH" + registry + "/fraud/aliases/.champion " + registry + R"SH(/fraud/aliases/champion
}
produce() {
  kcat -P -b "$KAFKA_BROKERS" -t topic_1 -X linger.ms=20 < )SH" + d + R"SH(/phase$1.jsonl
}

produce 0
wait_rows )SH" + std::to_string(kPerPhase) + R"SH(
# Version 2 is published the way the registry's README says (copied aside, renamed in), then
# becomes the champion.
cp -r )SH" + registry + "/fraud/1 " + registry + "/fraud/.2 && mv " + registry + "/fraud/.2 " +
                       registry + R"SH(/fraud/2
alias_to 2
wait_log "is now version 2 (was 1)"
produce 1
wait_rows )SH" + std::to_string(2 * kPerPhase) + R"SH(
alias_to 1
wait_log "is now version 1 (was 2)"
produce 2
wait_rows )SH" + std::to_string(3 * kPerPhase) + R"SH(
# Version 3 wants an input the pipeline does not compute: refused, version 1 keeps serving.
cp -r )SH" + registry + "/fraud/1 " + registry + "/fraud/.3 && sed -i 's/\"city_pop\"/\"merchant_risk\"/' " +
                       registry + "/fraud/.3/MLmodel && mv " + registry + "/fraud/.3 " +
                       registry + R"SH(/fraud/3
alias_to 3
wait_log "refused version 3"
produce 3
wait_rows )SH" + std::to_string(4 * kPerPhase) + R"SH(
# A stop drains: the alerts still in flight are posted before fraud.yaml exits.
kill -TERM $fraud; wait $fraud; echo "fraud exit $?"
kill -TERM $logger; wait $logger; echo "logger exit $?"
timeout 30 kcat -C -b "$KAFKA_BROKERS" -t topic_2 -e -o beginning -q -f '%k|%s\n' > )SH" + d +
                       R"SH(/topic_2.jsonl
)SH";
  auto r = Run(script);
  const std::string fraud_err = Slurp(dir / "fraud.err");
  INFO(r.out + r.err + "\n--- fraud.err\n" + fraud_err + "\n--- logger.err\n" +
       Slurp(dir / "logger.err") + "\n--- broker.err\n" + Slurp(dir / "broker.err"));
  CHECK(r.out.find("never logged") == std::string::npos);
  CHECK(r.out.find("fraud exit 0") != std::string::npos);
  CHECK(r.out.find("logger exit 0") != std::string::npos);
  CHECK(fraud_err.find("refused version 3 of models:/fraud@champion") != std::string::npos);
  CHECK(fraud_err.find("merchant_risk") != std::string::npos);

  // Every transaction once, scored by its phase's version.
  std::map<std::string, std::pair<std::string, std::string>> rows;  // trans_num → version, fraud
  for (const auto& line : LinesOf(pg.Sql(
           "SELECT trans_num, model_name, model_version, is_fraud, fraud_confirmed IS NULL "
           "FROM fraud_transactions"))) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string part; std::getline(ss, part, '|');) f.push_back(part);
    REQUIRE(f.size() == 5u);
    CHECK(f[1] == "fraud");
    CHECK(f[4] == "t");
    rows[f[0]] = {f[2], f[3]};
  }
  CHECK(rows.size() == static_cast<size_t>(kPhases * kPerPhase));
  std::set<std::string> frauds;
  for (int p = 0; p < kPhases; ++p) {
    size_t missing = 0, wrong_version = 0;
    for (const auto& id : phase_ids[p]) {
      auto it = rows.find(id);
      if (it == rows.end()) {
        ++missing;
        continue;
      }
      if (it->second.first != kPhaseVersion[p]) ++wrong_version;
      if (it->second.second == "1") frauds.insert(id);
    }
    INFO("phase " << p);
    CHECK(missing == 0u);
    CHECK(wrong_version == 0u);
  }
  // The synthetic stream has about 0.5% fraud: some must be predicted, far from all.
  CHECK(frauds.size() >= 10u);
  CHECK(frauds.size() < static_cast<size_t>(kPhases * kPerPhase / 20));

  // topic_2 holds each scored transaction once, keyed by trans_num: the transaction, the
  // verdict, its probability, the model, and fraud_confirmed left null for an analyst.
  std::set<std::string> keys;
  size_t messages = 0, unkeyed = 0, misshapen = 0;
  for (const auto& line : LinesOf(Slurp(dir / "topic_2.jsonl"))) {
    ++messages;
    const std::string key = line.substr(0, line.find('|'));
    const std::string value = line.substr(line.find('|') + 1);
    keys.insert(key);
    if (value.find("\"trans_num\":\"" + key + "\"") == std::string::npos) ++unkeyed;
    for (const char* part : {"\"is_fraud\":", "\"fraud_probability\":", "\"model_name\":\"fraud\"",
                             "\"model_version\":\"", "\"fraud_confirmed\":null}"}) {
      if (value.find(part) == std::string::npos && misshapen++ == 0) {
        INFO("message: " << line);
        CHECK(value.find(part) != std::string::npos);
      }
    }
  }
  CHECK(messages == static_cast<size_t>(kPhases * kPerPhase));
  CHECK(keys.size() == messages);
  CHECK(unkeyed == 0u);
  CHECK(misshapen == 0u);

  // Each predicted fraud alerted once, naming the version that scored it; no other alerts.
  std::map<std::string, int> alerted;
  const std::regex alert_re(
      R"(^Possible fraud: .* transaction ([0-9a-f]{32}), p=[01]\.\d{3}, model fraud v(\d+)$)");
  simdjson::dom::parser parser;
  size_t unparsed = 0;
  for (const auto& line : LinesOf(Slurp(dir / "posts.jsonl"))) {
    simdjson::padded_string padded(line);
    simdjson::dom::element post;
    std::string_view body, text;
    if (parser.parse(padded).get(post) || post["body"].get(body)) {
      ++unparsed;
      continue;
    }
    simdjson::padded_string padded_body(body);
    simdjson::dom::element message;
    std::smatch m;
    if (parser.parse(padded_body).get(message) || message["text"].get(text)) {
      ++unparsed;
      continue;
    }
    const std::string s(text);
    if (!std::regex_match(s, m, alert_re)) {
      INFO("alert: " << s);
      CHECK(false);
      continue;
    }
    ++alerted[m[1]];
    auto it = rows.find(m[1]);
    if (it != rows.end()) CHECK(it->second.first == std::string(m[2]));
  }
  CHECK(unparsed == 0u);
  CHECK(alerted.size() == frauds.size());
  for (const auto& id : frauds) {
    INFO("fraud " << id);
    CHECK(alerted[id] == 1);
  }
  CHECK(LinesOf(Slurp(dir / "fraud.dead-letter.jsonl")).empty());
  CHECK(LinesOf(Slurp(dir / "fraud-logger.dead-letter.jsonl")).empty());
}
