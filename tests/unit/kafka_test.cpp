// The kafka source and sink without a broker: their configuration, the schemas they plan, the
// value shapes the sink builds, the exactly-once planning rules, and the string format.
// Behaviour against a broker is in tests/integration/dev_kafka_test.cpp.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "engine/formats.h"
#include "engine/json.h"
#include "engine/testing.h"
#include "operator_helpers.h"
#include "operators/kafka/client.h"
#include "operators/kafka/dev_kafka.h"
#include "operators/kafka/fetch_waker.h"
#include "operators/kafka/positions.h"
#include "operators/sinks/value_template.h"
#include "unit_helpers.h"

using namespace sluice;
using namespace sluice::test;

namespace {

const std::string kKafkaSource =
    "  in: {type: kafka, brokers: 127.0.0.1:1, topic: rides, group: g, schema: "
    "../schemas/iris_data.json";

std::string KafkaToKafka(const std::string& source_extra, const std::string& sink_extra,
                         const std::string& more_sinks = "") {
  return "sources:\n" + kKafkaSource + source_extra +
         "}\n"
         "sinks:\n"
         "  out: {type: kafka, inputs: [in], brokers: 127.0.0.1:1, topic: out" +
         sink_extra + "}\n" + more_sinks;
}

// Renders row `row` of `rows` (JSON objects of the input of sink `out`) through `shape`.
std::string Render(const Loaded& l, const std::string& shape_yaml,
                   const std::vector<std::string>& rows, size_t row, bool* present = nullptr) {
  const PlannedNode& out = l.Node("out");
  YAML::Node shape = YAML::Load(shape_yaml);
  auto t = ValueTemplate::Parse(l.Config("out"), shape, *out.input_schema);
  INFO(t.status().message());
  REQUIRE(t.ok());
  auto batch = InputBatch(l, "out", rows);
  std::string text;
  bool p = t->Render(*batch, row, text);
  if (present) *present = p;
  return text;
}

}  // namespace

TEST_CASE("kafka source: metadata fields extend the schema with their types", "[operators][kafka]") {
  Loaded l = Load(KafkaToKafka(
      ", metadata: {key: msg_key, timestamp: msg_time, topic: msg_topic, partition: part, "
      "offset: off}",
      ""));
  INFO(l.Text());
  REQUIRE_FALSE(l.diags.HasErrors());
  const Schema& s = *l.Node("in").output_schema;
  REQUIRE(s.size() == 12u);  // the iris fields, then the metadata in a fixed order
  CHECK(s.field(7) == Field{"msg_key", TypeId::kString, true});
  CHECK(s.field(8) == Field{"msg_time", TypeId::kTimestamp, true});
  CHECK(s.field(9) == Field{"msg_topic", TypeId::kString, false});
  CHECK(s.field(10) == Field{"part", TypeId::kInt64, false});
  CHECK(s.field(11) == Field{"off", TypeId::kInt64, false});
}

TEST_CASE("kafka source: metadata names are checked", "[operators][kafka]") {
  const std::string clash = KafkaToKafka(", metadata: {offset: id}", "");
  Loaded a = Load(clash);
  auto errs = a.ErrorsWith("field 'id' for the message offset is already a field of the records");
  REQUIRE(errs.size() == 1u);
  CHECK(errs[0].mark.ToString() == At(clash, "{offset: id}"));

  Loaded b = Load(KafkaToKafka(", metadata: {headers: h}", ""));
  CHECK(b.ErrorsWith("unknown message metadata 'headers' (known: key, timestamp, topic, "
                     "partition, offset)")
            .size() == 1u);
}

TEST_CASE("kafka source: metadata decodes to null keys and timestamps outside a broker",
          "[operators][kafka]") {
  // `sluice test` injects lines without keys or timestamps; they read as null.
  auto r = Start(
      "sources:\n"
      "  in: {type: kafka, brokers: 127.0.0.1:1, topic: t, group: g, format: string,\n"
      "       metadata: {key: k, timestamp: ts, topic: tp, partition: p, offset: o}}\n"
      "sinks:\n"
      "  out: {type: stdout, inputs: [in]}\n");
  REQUIRE(r.run->InjectLines("in", {"hello", "world"}).ok());
  auto rows = r.Rows("out");
  REQUIRE(rows.size() == 2u);
  CHECK(Get(rows[1], "value") == "\"world\"");
  CHECK(Get(rows[1], "k") == "null");
  CHECK(Get(rows[1], "ts") == "null");
  CHECK(Get(rows[1], "o") == "2");
}

TEST_CASE("string format: lines kept verbatim in `value`; invalid UTF-8 is dead-lettered",
          "[formats][string]") {
  auto decoder = MakeFormatDecoder(Format::kString, StringFormatSchema());
  MemoryDeadLetter dl;
  NodeContext ctx("src", &dl);
  const std::string envelope = R"({"schema":{"type":"struct"},"payload":{"id":1}})";
  auto got = decoder->Decode(Raw({envelope, "not json at all", "bad \xff byte", ""}), ctx);
  REQUIRE(got.ok());
  const Batch& b = **got;
  REQUIRE(b.num_rows() == 3u);
  CHECK(b.column(0).strings == std::vector<std::string>{envelope, "not json at all", ""});
  CHECK(b.Position(2) == 4);
  REQUIRE(dl.records().size() == 1u);
  CHECK(dl.records()[0].reason == "not valid UTF-8");
  CHECK(dl.records()[0].position == 3);
}

TEST_CASE("string format takes no schema; the other formats need one", "[formats][string]") {
  const std::string with_schema =
      "sources:\n"
      "  src: {type: file, path: data/iris_data.jsonl, format: string, schema: "
      "../schemas/iris_data.json}\n"
      "sinks:\n  out: {type: stdout, inputs: [src]}\n";
  Loaded a = Load(with_schema);
  auto errs = a.ErrorsWith("the string format has one field, 'value', and takes no schema");
  REQUIRE(errs.size() == 1u);
  CHECK(errs[0].mark.ToString() == At(with_schema, "../schemas/iris_data.json"));

  Loaded b = Load(
      "sources:\n  src: {type: file, path: data/iris_data.jsonl}\n"
      "sinks:\n  out: {type: stdout, inputs: [src]}\n");
  CHECK(b.ErrorsWith("'schema' is required for this format").size() == 1u);
}

TEST_CASE("kafka sink value shapes: nested objects of fields and typed constants",
          "[operators][kafka]") {
  Loaded l = Load(KafkaToKafka("", ""));
  REQUIRE_FALSE(l.diags.HasErrors());
  const std::vector<std::string> rows = {
      R"({"id": 7, "timestamp": "2026-01-01T00:00:00Z", "sepal_length": 5.5, "sepal_width": 1,
          "petal_length": 2, "petal_width": 0.25, "target": 2})"};
  CHECK(Render(l,
               "{model: iris, version: 3, ratio: 0.5, live: true, none: null, quoted: '3', "
               "prediction: {id: .id, at: .timestamp, widths: [.sepal_width, .petal_width]}}",
               rows, 0) ==
        R"({"model":"iris","version":3,"ratio":0.5,"live":true,"none":null,"quoted":"3",)"
        R"("prediction":{"id":7,"at":"2026-01-01T00:00:00Z","widths":[1,0.25]}})");
  // A leading dot that is not a field reference is escaped with a backslash.
  CHECK(Render(l, "{path: '\\.hidden'}", rows, 0) == R"({"path":".hidden"})");
  // One non-string field on its own: its JSON.
  CHECK(Render(l, ".petal_width", rows, 0) == "0.25");
}

TEST_CASE("kafka sink value shapes: one string field is sent as it is; a null one as no value",
          "[operators][kafka]") {
  Loaded l = Load(
      "sources:\n"
      "  in: {type: file, path: data/iris_data.jsonl, format: string}\n"
      "sinks:\n"
      "  out: {type: kafka, inputs: [in], brokers: 127.0.0.1:1, topic: out, value: .value}\n");
  INFO(l.Text());
  REQUIRE_FALSE(l.diags.HasErrors());
  const std::string envelope = R"({"schema":null,"payload":{"id":1,"note":"a \"q\""}})";
  std::string as_json;
  AppendJsonString(as_json, envelope);
  CHECK(Render(l, ".value", {"{\"value\": " + as_json + "}"}, 0) == envelope);

  Loaded n = Load(
      "sources:\n"
      "  in: {type: kafka, brokers: 127.0.0.1:1, topic: t, group: g, format: string, metadata: "
      "{key: k}}\n"
      "sinks:\n"
      "  out: {type: kafka, inputs: [in], brokers: 127.0.0.1:1, topic: out}\n");
  REQUIRE_FALSE(n.diags.HasErrors());
  bool present = true;
  auto rows = std::vector<std::string>{R"({"value": "v", "k": null})"};
  CHECK(Render(n, ".k", rows, 0, &present).empty());
  CHECK_FALSE(present);
  // Inside a shape a null field is JSON null.
  CHECK(Render(n, "{key: .k}", rows, 0, &present) == R"({"key":null})");
  CHECK(present);
}

TEST_CASE("kafka sink: unknown fields in the value, key and headers are errors at their place",
          "[operators][kafka]") {
  const std::string yaml = KafkaToKafka(
      "", ", value: {prediction: {ride: .petal_widht}}, headers: {h: .nope}, key: idd");
  Loaded l = Load(yaml);
  INFO(l.Text());
  // The key is checked first; fixing it shows the next problem.
  auto key = l.ErrorsWith("'idd' is not a field of 'in'; did you mean 'id'?");
  REQUIRE(key.size() == 1u);
  const std::string yaml2 =
      KafkaToKafka("", ", value: {prediction: {ride: .petal_widht}}, headers: {h: .nope}");
  Loaded v = Load(yaml2);
  auto value = v.ErrorsWith("'petal_widht' is not a field of 'in'; did you mean 'petal_width'?");
  REQUIRE(value.size() == 1u);
  CHECK(value[0].mark.ToString() == At(yaml2, ".petal_widht"));
  Loaded h = Load(KafkaToKafka("", ", headers: {h: .nope}"));
  CHECK(h.ErrorsWith("header 'h': 'nope' is not a field of 'in'").size() == 1u);
}

TEST_CASE("exactly-once: the sink must be the only one its kafka source feeds",
          "[operators][kafka][validation]") {
  Loaded ok = Load(KafkaToKafka("", ", delivery: exactly-once"));
  INFO(ok.Text());
  CHECK_FALSE(ok.diags.HasErrors());
  CHECK(ok.plan->PositionsCommittedBy(ok.plan->IndexOf("in")) == ok.plan->IndexOf("out"));

  Loaded at_least_once = Load(KafkaToKafka("", ""));
  CHECK(at_least_once.plan->PositionsCommittedBy(at_least_once.plan->IndexOf("in")) == -1);

  const std::string two =
      KafkaToKafka("", ", delivery: exactly-once", "  log: {type: stdout, inputs: [in]}\n");
  Loaded l = Load(two);
  auto errs = l.ErrorsWith(
      "kafka 'out': delivery: exactly-once commits the read positions of source 'in' with its "
      "writes, so it must be the only sink that source feeds (it also feeds 'log')");
  REQUIRE(errs.size() == 1u);
  CHECK(errs[0].mark.ToString() == At(two, "{type: kafka, inputs"));

  Loaded file = Load(
      "sources:\n"
      "  in: {type: file, path: data/iris_data.jsonl, format: string}\n"
      "sinks:\n"
      "  out: {type: kafka, inputs: [in], brokers: 127.0.0.1:1, topic: out, delivery: "
      "exactly-once}\n");
  CHECK(file.ErrorsWith("but file 'in' has none to hand over (a kafka source has)").size() == 1u);
}

TEST_CASE("exactly-once into postgres: planning rules and the positions table",
          "[operators][postgres][validation]") {
  const std::string pg = "  db: {type: postgres, inputs: [in], url: postgresql://127.0.0.1:1/x, "
                         "table: t, delivery: exactly-once";
  Loaded ok = Load("sources:\n" + kKafkaSource + "}\nsinks:\n" + pg + "}\n");
  INFO(ok.Text());
  CHECK_FALSE(ok.diags.HasErrors());
  CHECK(ok.plan->PositionsCommittedBy(ok.plan->IndexOf("in")) == ok.plan->IndexOf("db"));

  // A file source has no positions to store.
  Loaded file = Load(
      "sources:\n  in: {type: file, path: data/iris_data.jsonl, format: connect-json, schema: "
      "../schemas/iris_data.json}\nsinks:\n" + pg + "}\n");
  CHECK(file.ErrorsWith("has none to hand over (a kafka source has)").size() == 1u);

  // The positions and another sink's writes cannot be one transaction.
  Loaded two = Load("sources:\n" + kKafkaSource + "}\nsinks:\n" + pg +
                    "}\n  log: {type: stdout, inputs: [in]}\n");
  CHECK(two.ErrorsWith("must be the only sink that source feeds").size() == 1u);

  Loaded bad = Load("sources:\n" + kKafkaSource + "}\nsinks:\n" + pg +
                    ", positions_table: \"x.\"}\n");
  CHECK(bad.ErrorsWith("'x.' is not a table name").size() == 1u);
  Loaded typo = Load("sources:\n" + kKafkaSource + "}\nsinks:\n" + pg.substr(0, pg.size() - 12) +
                     "exactly_once}\n");
  CHECK(typo.Errors().size() == 1u);
}

TEST_CASE("fetch waker: one partition per leader, and every partition whose leader is unknown",
          "[operators][kafka]") {
  const FetchWaker::Partitions parts = {{"a", 0}, {"a", 1}, {"a", 2}, {"a", 3},
                                        {"b", 0}, {"b", 1}, {"c", 0}};
  // Leaders: broker 1 leads a/0, a/2 and b/1; broker 2 leads a/1 and a/3; b/0 has none (-1,
  // a partition between leaders); c is not in the metadata.
  const std::map<std::pair<std::string, int32_t>, int32_t> leaders = {
      {{"a", 0}, 1}, {{"a", 1}, 2}, {{"a", 2}, 1}, {{"a", 3}, 2}, {{"b", 0}, -1}, {{"b", 1}, 1}};
  CHECK(FetchWaker::OnePerLeader(parts, leaders) ==
        FetchWaker::Partitions{{"a", 0}, {"a", 1}, {"b", 0}, {"c", 0}});
  // No metadata: every partition is asked for, as before.
  CHECK(FetchWaker::OnePerLeader(parts, {}) == parts);
  CHECK(FetchWaker::OnePerLeader({}, leaders).empty());
}

namespace {

// The value librdkafka settled on for `name` in a consumer made from `props` (no broker needed:
// the client only tries to connect).
std::string EffectiveConsumerSetting(KafkaProperties props, const char* name) {
  props.emplace_back("bootstrap.servers", "127.0.0.1:1");
  props.emplace_back("log_level", "0");
  auto rk = NewKafkaClient(RD_KAFKA_CONSUMER, props);
  INFO(rk.status().ToString());
  REQUIRE(rk.ok());
  char buf[64];
  size_t size = sizeof buf;
  const bool got = rd_kafka_conf_get(rd_kafka_conf(*rk), name, buf, &size) == RD_KAFKA_CONF_OK;
  rd_kafka_destroy(*rk);
  REQUIRE(got);
  return buf;
}

}  // namespace

// The kafka source bounds memory with librdkafka's read-ahead alone (queued.max.messages.kbytes,
// 16 MiB); docs/operations.md#memory counts on librdkafka capping each fetch response at it.
TEST_CASE("read-ahead: librdkafka caps a fetch response at the read-ahead", "[operators][kafka]") {
  // The kafka source's setting: responses of 16 MiB, not librdkafka's default 50 MiB.
  CHECK(EffectiveConsumerSetting({{"queued.max.messages.kbytes", "16384"}}, "fetch.max.bytes") ==
        "16777216");
  CHECK(EffectiveConsumerSetting({}, "fetch.max.bytes") == "52428800");
  // A read-ahead smaller than the largest message: responses of one largest message.
  CHECK(EffectiveConsumerSetting({{"queued.max.messages.kbytes", "256"}}, "fetch.max.bytes") ==
        "1000000");
  // A response size of the user's own is kept.
  CHECK(EffectiveConsumerSetting({{"queued.max.messages.kbytes", "16384"},
                                  {"fetch.max.bytes", "52428800"}},
                                 "fetch.max.bytes") == "52428800");
}

TEST_CASE("lost offsets: the loss is counted below the low watermark, and `continue` resumes there",
          "[operators][kafka]") {
  PositionPolicy fail{"in", false, /*continue_on_lost=*/false};
  auto below = ResumeAfterLoss(fail, "rides", 3, 40, 100, 500);
  REQUIRE_FALSE(below.ok());
  CHECK(below.status().code() == StatusCode::kDataLoss);
  CHECK_THAT(below.status().message(),
             Catch::Contains("partition rides[3]") &&
                 Catch::Contains("60 messages were deleted by the broker") &&
                 Catch::Contains("set lost_offsets: continue"));

  // Above the high watermark (the topic was recreated): nothing can say how much was lost.
  auto above = ResumeAfterLoss(fail, "rides", 3, 900, 100, 500);
  REQUIRE_FALSE(above.ok());
  CHECK_THAT(above.status().message(), Catch::Contains("outside the broker's range [100, 500]") &&
                                           Catch::Contains("lost is unknown"));

  PositionPolicy go_on{"in", false, /*continue_on_lost=*/true};
  auto resumed = ResumeAfterLoss(go_on, "rides", 3, 40, 100, 500);
  REQUIRE(resumed.ok());
  CHECK(*resumed == 100);
  auto recreated = ResumeAfterLoss(go_on, "rides", 3, 900, 0, 20);
  REQUIRE(recreated.ok());
  CHECK(*recreated == 0);
}

// The development broker's ports are set like a real broker's: a connection it accepts sends
// each response at once (TCP_NODELAY), instead of holding a small one back for the client's
// delayed ACK, which held a producer that waits for every batch to one batch per ~45 ms.
TEST_CASE("dev-kafka: connections accepted on the broker's ports have TCP_NODELAY",
          "[operators][kafka]") {
  auto listener_on = [](sockaddr_in& addr) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    addr = {};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    REQUIRE(listen(fd, 4) == 0);
    return fd;
  };
  auto accepted_nodelay = [](int listener, const sockaddr_in& addr) {
    const int client = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(client >= 0);
    REQUIRE(connect(client, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
    const int conn = accept(listener, nullptr, nullptr);
    REQUIRE(conn >= 0);
    int nodelay = -1;
    socklen_t len = sizeof nodelay;
    REQUIRE(getsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &nodelay, &len) == 0);
    close(conn);
    close(client);
    return nodelay != 0;
  };
  sockaddr_in broker{}, other{};
  const int broker_fd = listener_on(broker);
  const int other_fd = listener_on(other);
  CHECK_FALSE(accepted_nodelay(broker_fd, broker));  // the default: Nagle's algorithm on

  CHECK(SetNoDelayOnListeners({ntohs(broker.sin_port)}) == 1);
  CHECK(accepted_nodelay(broker_fd, broker));
  CHECK_FALSE(accepted_nodelay(other_fd, other));  // only the ports asked for
  close(broker_fd);
  close(other_fd);
}
