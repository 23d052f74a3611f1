// predict's remote backends without a server: request bodies, answers of each protocol, the
// config checks of the backend keys, and an unreachable server reported as unavailable.
#include <catch2/catch.hpp>

#include "engine/metrics.h"
#include "operators/http/client.h"
#include "operators/transforms/predict_http.h"
#include "operator_helpers.h"
#include "unit_helpers.h"

using namespace sluice;
using namespace sluice::test;

namespace {

// Two rows: (5.1, 3, true) and (6.25, -2, false): a float64, an int64 and a bool column.
BatchPtr SmallBatch() {
  auto schema = std::make_shared<const Schema>(std::vector<Field>{
      {"a", TypeId::kFloat64, false}, {"b", TypeId::kInt64, false}, {"c", TypeId::kBool, false}});
  auto a = std::make_shared<Column>(TypeId::kFloat64);
  a->AppendDouble(5.1);
  a->AppendDouble(6.25);
  auto b = std::make_shared<Column>(TypeId::kInt64);
  b->AppendInt(3);
  b->AppendInt(-2);
  auto c = std::make_shared<Column>(TypeId::kBool);
  c->AppendInt(1);
  c->AppendInt(0);
  return std::make_shared<Batch>(schema, std::vector<ColumnPtr>{a, b, c}, 2);
}

const std::vector<std::string> kClasses = {"setosa", "versicolor", "virginica"};

OutputSpec Key(const std::string& field, const std::string& key, TypeId type) {
  OutputSpec o;
  o.field = field;
  o.kind = OutputSpec::kResponseKey;
  o.key = key;
  o.type = type;
  return o;
}

std::string RemotePipeline(const std::string& predict) {
  return "name: p\n" + kIrisSourceYaml +
         "transforms:\n"
         "  features: {type: drop-fields, inputs: [iris_data], fields: [id, target]}\n"
         "  classify: {type: predict, inputs: [features], " +
         predict +
         "}\n"
         "sinks:\n"
         "  out: {type: stdout, inputs: [classify]}\n";
}

}  // namespace

TEST_CASE("request bodies of the three protocols", "[operators][predict][http]") {
  BatchPtr batch = SmallBatch();
  const std::vector<size_t> cols = {1, 0, 2};
  const std::vector<std::string> names = {"b", "a", "c"};
  CHECK(EncodeMlflowRequest(*batch, cols, names, 0, 2) ==
        R"({"dataframe_split": {"columns": ["b", "a", "c"], "data": [[3, 5.1, 1], [-2, 6.25, 0]]}})");
  CHECK(EncodeMlflowRequest(*batch, cols, names, 1, 2) ==
        R"({"dataframe_split": {"columns": ["b", "a", "c"], "data": [[-2, 6.25, 0]]}})");
  CHECK(EncodeKserveRequest(*batch, cols, 0, 2, false) ==
        R"({"inputs": [{"name": "input-0", "shape": [2, 3], "datatype": "FP64", "data": [3, 5.1, 1, -2, 6.25, 0]}]})");
  CHECK(EncodeKserveRequest(*batch, {0}, 0, 1, true) ==
        R"({"inputs": [{"name": "input-0", "shape": [1, 1], "datatype": "FP32", "data": [5.1]}]})");
  CHECK(EncodeJsonRecord(*batch, cols, names, 1) == R"({"b": -2, "a": 6.25, "c": false})");
}

TEST_CASE("a string feature is sent as a JSON string", "[operators][predict][http]") {
  // A categorical input: the server's model encodes the category itself.
  auto schema = std::make_shared<const Schema>(std::vector<Field>{
      {"PU_DO", TypeId::kString, false}, {"trip_distance", TypeId::kFloat64, false}});
  auto pu_do = std::make_shared<Column>(TypeId::kString);
  pu_do->AppendString("130_205");
  pu_do->AppendString("say \"hi\"");
  auto distance = std::make_shared<Column>(TypeId::kFloat64);
  distance->AppendDouble(3.66);
  distance->AppendDouble(1.5);
  Batch batch(schema, {pu_do, distance}, 2);
  CHECK(EncodeMlflowRequest(batch, {0, 1}, {"PU_DO", "trip_distance"}, 0, 2) ==
        R"({"dataframe_split": {"columns": ["PU_DO", "trip_distance"], "data": [["130_205", 3.66], ["say \"hi\"", 1.5]]}})");
}

TEST_CASE("mlflow answers", "[operators][predict][http]") {
  SECTION("labels, in MLflow 2's envelope or bare") {
    for (const std::string body : {R"({"predictions": [0, 2, 1]})", "[0, 2, 1]"}) {
      auto s = DecodeMlflowResponse(body, 3, kClasses);
      REQUIRE(s.ok());
      CHECK(s->direct);
      CHECK(s->width == 1u);
      CHECK(s->values == std::vector<double>{0, 2, 1});
      CHECK(s->errors == std::vector<std::string>(3));
    }
  }
  SECTION("class probabilities") {
    auto s = DecodeMlflowResponse(R"({"predictions": [[0.9, 0.05, 0.05], [0.1, 0.2, 0.7]]})", 2,
                                  kClasses);
    REQUIRE(s.ok());
    CHECK_FALSE(s->direct);
    CHECK(s->width == 3u);
    CHECK(s->values.size() == 6u);
    CHECK(s->values[5] == Approx(0.7));
  }
  SECTION("class names map to their index; an unknown one fails its row only") {
    auto s = DecodeMlflowResponse(R"({"predictions": ["virginica", "rose", "setosa"]})", 3,
                                  kClasses);
    REQUIRE(s.ok());
    CHECK(s->values[0] == 2);
    CHECK(s->values[2] == 0);
    CHECK(s->errors[0].empty());
    CHECK(s->errors[1] ==
          "the prediction 'rose' is not a class of the model (setosa, versicolor, virginica)");
  }
  SECTION("unusable answers") {
    auto count = DecodeMlflowResponse(R"({"predictions": [0, 1]})", 3, kClasses);
    REQUIRE_FALSE(count.ok());
    CHECK(count.status().message() == "the server answered 2 predictions for 3 rows");
    auto shape = DecodeMlflowResponse(R"({"outputs": [0, 1]})", 2, kClasses);
    REQUIRE_FALSE(shape.ok());
    CHECK_THAT(shape.status().message(), Catch::StartsWith(R"(expected {"predictions": [...]})"));
    auto text = DecodeMlflowResponse("Internal error", 1, kClasses);
    REQUIRE_FALSE(text.ok());
    CHECK(text.status().message() == "the answer is not JSON: Internal error");
    auto mixed = DecodeMlflowResponse(R"({"predictions": [0, [0.5, 0.5]]})", 2, kClasses);
    REQUIRE_FALSE(mixed.ok());
  }
}

TEST_CASE("kserve-v2 answers", "[operators][predict][http]") {
  SECTION("one label per row") {
    auto s = DecodeKserveResponse(
        R"({"model_name": "iris", "outputs": [{"name": "predict", "shape": [3, 1],
            "datatype": "INT64", "data": [0, 1, 2]}]})",
        3, kClasses);
    REQUIRE(s.ok());
    CHECK(s->direct);
    CHECK(s->values == std::vector<double>{0, 1, 2});
    CHECK(s->model_version.empty());  // the answer names no version
  }
  SECTION("the version the server scored with") {
    auto s = DecodeKserveResponse(
        R"({"model_name": "iris", "model_version": "7", "outputs": [{"name": "predict",
            "shape": [2, 1], "datatype": "INT64", "data": [2, 0]}]})",
        2, kClasses);
    REQUIRE(s.ok());
    CHECK(s->model_version == "7");
    CHECK(s->values == std::vector<double>{2, 0});
    auto number = DecodeKserveResponse(
        R"({"model_version": 7, "outputs": [{"name": "p", "shape": [1, 1], "datatype": "INT64",
            "data": [1]}]})",
        1, kClasses);
    REQUIRE(number.ok());
    CHECK(number->model_version.empty());  // not a string: not a version
  }
  SECTION("a [rows, classes] tensor of probabilities") {
    auto s = DecodeKserveResponse(
        R"({"outputs": [{"name": "p", "shape": [2, 3], "datatype": "FP32",
            "data": [0.8, 0.1, 0.1, 0.2, 0.2, 0.6]}]})",
        2, kClasses);
    REQUIRE(s.ok());
    CHECK_FALSE(s->direct);
    CHECK(s->width == 3u);
  }
  SECTION("BYTES class names") {
    auto s = DecodeKserveResponse(
        R"({"outputs": [{"name": "c", "shape": [2], "datatype": "BYTES",
            "data": ["versicolor", "tulip"]}]})",
        2, kClasses);
    REQUIRE(s.ok());
    CHECK(s->values[0] == 1);
    CHECK_THAT(s->errors[1], Catch::Contains("'tulip' is not a class"));
  }
  SECTION("unusable answers") {
    auto err = DecodeKserveResponse(R"({"error": "model iris not ready"})", 2, kClasses);
    REQUIRE_FALSE(err.ok());
    CHECK_THAT(err.status().message(), Catch::Contains("model iris not ready"));
    auto rows = DecodeKserveResponse(
        R"({"outputs": [{"name": "p", "shape": [3], "datatype": "INT64", "data": [0, 1, 2]}]})",
        2, kClasses);
    REQUIRE_FALSE(rows.ok());
    CHECK(rows.status().message() == "the answer's tensor holds 3 values for 2 rows");
    auto shape = DecodeKserveResponse(
        R"({"outputs": [{"name": "p", "shape": [1, 2], "datatype": "INT64", "data": [0, 1]}]})",
        2, kClasses);
    REQUIRE_FALSE(shape.ok());
    CHECK(shape.status().message() == "the answer's shape is [1,2] for 2 rows");
  }
}

TEST_CASE("json answers: one object per record", "[operators][predict][http]") {
  const std::vector<OutputSpec> outputs = {Key("iris_class", "iris_class", TypeId::kInt64),
                                           Key("p", "probability", TypeId::kFloat64),
                                           Key("name", "label", TypeId::kString)};
  std::vector<std::shared_ptr<Column>> cols;
  for (const auto& o : outputs) cols.push_back(std::make_shared<Column>(o.type));
  REQUIRE(DecodeJsonRecord(R"({"iris_class": 2, "probability": 1, "label": "virginica",
                               "extra": null})",
                           outputs, cols)
              .ok());
  REQUIRE(DecodeJsonRecord(R"({"iris_class": 1.0, "probability": 0.5, "label": "x"})", outputs,
                           cols)
              .ok());
  CHECK(cols[0]->ints == std::vector<int64_t>{2, 1});
  CHECK(cols[1]->doubles == std::vector<double>{1, 0.5});
  CHECK(cols[2]->strings == std::vector<std::string>{"virginica", "x"});

  // A bad answer appends nothing, so the columns stay aligned.
  Status missing = DecodeJsonRecord(R"({"class": 2, "probability": 1})", outputs, cols);
  CHECK(missing.message() == "the answer has no key 'iris_class' (keys: class, probability)");
  Status wrong = DecodeJsonRecord(R"({"iris_class": "2", "probability": 1, "label": "a"})",
                                  outputs, cols);
  CHECK(wrong.message() == "the answer's 'iris_class' is \"2\", expected int64");
  Status fraction = DecodeJsonRecord(R"({"iris_class": 1.5, "probability": 1, "label": "a"})",
                                     outputs, cols);
  CHECK_FALSE(fraction.ok());
  Status not_object = DecodeJsonRecord("[1]", outputs, cols);
  CHECK(not_object.message() == "the answer is not a JSON object: [1]");
  for (const auto& c : cols) CHECK(c->size() == 2u);
}

TEST_CASE("server messages and endpoints", "[operators][predict][http]") {
  CHECK(ServerMessage(R"({"detail": "sepal_length is out of range"})") ==
        "sepal_length is out of range");
  CHECK(ServerMessage(R"({"detail": [{"loc": ["body"], "msg": "field required"}]})") ==
        R"([{"loc":["body"],"msg":"field required"}])");
  CHECK(ServerMessage(R"({"error": "no such model"})") == "no such model");
  CHECK(ServerMessage("Bad Gateway\n") == "Bad Gateway");
  CHECK(ServerMessage(std::string(1000, 'x')).size() == 303u);

  RemoteConfig cfg;
  cfg.url = "http://h:5000/";
  CHECK(EndpointUrl(cfg) == "http://h:5000/invocations");
  cfg.backend = PredictBackend::kKserveV2;
  cfg.model_name = "iris";
  CHECK(EndpointUrl(cfg) == "http://h:5000/v2/models/iris/infer");
  cfg.url = "http://h/v2/models/other/infer";
  CHECK(EndpointUrl(cfg) == "http://h/v2/models/other/infer");
  cfg.backend = PredictBackend::kJson;
  cfg.url = "http://h:8000/predict";
  CHECK(EndpointUrl(cfg) == "http://h:8000/predict");
}

TEST_CASE("an unreachable server is unavailable, then the breaker opens",
          "[operators][predict][http]") {
  HttpOptions o;
  o.timeout_ms = 1000;
  o.retries = 1;
  o.retry_backoff_ms = 1;
  o.breaker_failures = 2;
  o.breaker_cooldown_ms = 60000;
  o.metric_labels = {{"pipeline", "unit-breaker"}, {"node", "classify"}};
  HttpClient client(o);
  MetricsRegistry& reg = Metrics();
  auto requests = [&](const char* outcome) {
    MetricLabels l = o.metric_labels;
    l.emplace_back("outcome", outcome);
    return reg.GetCounter("sluice_http_requests_total", "", l)->Value();
  };
  auto circuit_open = [&] {
    reg.Render();  // the breaker's state is read at each scrape
    return reg.GetGauge("sluice_http_circuit_open", "", o.metric_labels)->Value();
  };
  CHECK(circuit_open() == 0);
  // Port 1 on loopback: nothing listens there, the connection is refused at once.
  std::vector<HttpRequest> reqs = {{"http://127.0.0.1:1/predict", "{}"}};
  auto first = client.PostAll(reqs);
  REQUIRE_FALSE(first.ok());
  CHECK(first.status().code() == StatusCode::kUnavailable);
  CHECK_THAT(first.status().message(),
             Catch::StartsWith("1 of 1 requests to http://127.0.0.1:1/predict failed: "));
  auto second = client.PostAll(reqs);
  REQUIRE_FALSE(second.ok());
  CHECK(second.status().code() == StatusCode::kUnavailable);
  CHECK_THAT(second.status().message(),
             Catch::StartsWith("circuit open after 2 consecutive failures"));
  // Two attempts (the first and one retry) failed; the open breaker made no third.
  CHECK(requests("failed") == 2);
  CHECK(requests("ok") == 0);
  CHECK(reg.GetHistogram("sluice_http_request_duration_seconds", "", o.metric_labels, {})
            ->Count() == 2u);
  CHECK(circuit_open() == 1);
}

TEST_CASE("a row that cannot be scored is dead-lettered once, not again by each retry",
          "[operators][predict][http]") {
  // Row 0 can be scored, row 1 has a null feature.
  auto schema = std::make_shared<const Schema>(std::vector<Field>{{"a", TypeId::kFloat64, true}});
  auto a = std::make_shared<Column>(TypeId::kFloat64);
  a->AppendDouble(1.5);
  a->AppendNull();
  auto batch = std::make_shared<Batch>(schema, std::vector<ColumnPtr>{a}, 2);
  auto out = std::make_shared<const Schema>(
      std::vector<Field>{{"a", TypeId::kFloat64, true}, {"y", TypeId::kInt64, false}});
  RemoteConfig cfg;
  cfg.backend = PredictBackend::kJson;
  cfg.url = "http://127.0.0.1:1/predict";  // nothing listens: the call fails at once
  cfg.http.retries = 0;
  cfg.http.breaker_failures = 100;
  auto predict =
      MakeRemotePredict(cfg, out, {0}, {"a"}, {Key("y", "y", TypeId::kInt64)}, ModelInfo{},
                        {{"pipeline", "unit-remote"}, {"node", "classify"}}, DriftConfig{});
  MemoryDeadLetter dl;
  NodeContext ctx("classify", &dl);
  // The runner processes a batch that came back Unavailable again, from the start: the null
  // row waits until the server has answered.
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto got = predict->Process(batch, ctx);
    REQUIRE_FALSE(got.ok());
    CHECK(got.status().code() == StatusCode::kUnavailable);
    CHECK(dl.records().empty());
  }
  // A batch of unscorable rows alone calls no server: they are dead-lettered at once.
  auto nulls = batch->Take({1});
  auto got = predict->Process(nulls, ctx);
  REQUIRE(got.ok());
  CHECK((*got)->num_rows() == 0u);
  REQUIRE(dl.records().size() == 1u);
  CHECK(dl.records()[0].reason == "feature 'a' is null");
}

TEST_CASE("predict backend config", "[operators][predict][http]") {
  SECTION("a remote backend plans with the model's signature, without a server") {
    Loaded l = Load(RemotePipeline(
        "model: ../models/iris, backend: mlflow, url: 'http://127.0.0.1:1', "
        "outputs: {iris_class: label, cls: class}"));
    INFO(l.Text());
    REQUIRE_FALSE(l.diags.HasErrors());
    const Schema& s = *l.Node("classify").output_schema;
    CHECK(s.field(s.size() - 2) == Field{"iris_class", TypeId::kInt64, false});
  }
  SECTION("json: outputs are answer keys, typed by the signature or by a suffix") {
    Loaded l = Load(RemotePipeline(
        "model: ../models/iris, backend: json, url: 'http://127.0.0.1:1/predict', "
        "outputs: {iris_class: iris_class, p: 'score:float64', name: 'label:string'}"));
    INFO(l.Text());
    REQUIRE_FALSE(l.diags.HasErrors());
    const Schema& s = *l.Node("classify").output_schema;
    CHECK(s.field(s.size() - 3) == Field{"iris_class", TypeId::kInt64, false});
    CHECK(s.field(s.size() - 2) == Field{"p", TypeId::kFloat64, false});
    CHECK(s.field(s.size() - 1) == Field{"name", TypeId::kString, false});
  }
  SECTION("json with a features list instead of a model") {
    const std::string yaml = RemotePipeline(
        "backend: json, url: 'http://127.0.0.1:1/predict', "
        "features: [sepal_length, sepal_width, petal_length, petal_widht], "
        "outputs: {iris_class: 'iris_class:int64'}");
    Loaded l = Load(yaml);
    REQUIRE(l.diags.ErrorCount() == 1u);
    CHECK_THAT(l.Errors()[0].message,
               Catch::Contains("feature 'petal_widht' is not a field of 'features'; did you mean "
                               "'petal_width'?"));
    CHECK(l.Errors()[0].mark.ToString() == At(yaml, "[sepal_length"));
  }
  SECTION("errors") {
    struct Case {
      std::string predict, message;
    };
    for (const Case& c : std::vector<Case>{
             {"model: ../models/iris, url: 'http://x'",
              "`url` is for the remote backends (mlflow, kserve-v2, json); this node runs the "
              "model in process"},
             {"model: ../models/iris, backend: mlflow",
              "backend 'mlflow' needs `url`, the model server's address"},
             {"model: ../models/iris, backend: mlflow, url: 'localhost:5000'",
              "url 'localhost:5000' is not an http:// or https:// URL"},
             {"backend: mlflow, url: 'http://x'",
              "give either `model` (an MLflow model directory whose signature names the inputs) "
              "or `features` (the input fields), found neither"},
             {"model: ../models/iris, backend: json, url: 'http://x'",
              "backend 'json' needs `outputs`: new field: key of the server's answer, e.g. "
              "{iris_class: iris_class}"},
             {"model: ../models/iris, backend: json, url: 'http://x', concurrency: 0, "
              "outputs: {c: c}",
              "'concurrency' must be at least 1, found 0"},
             {"backend: kserve-v2, url: 'http://x', features: [sepal_length]",
              "backend 'kserve-v2' without `model` needs `model_name`"},
             {"model: ../models/iris, backend: json, url: 'http://x', outputs: {c: 'c:decimal'}",
              "output 'c': unknown type 'decimal' (types: int64, float64, string, bool, "
              "timestamp)"},
         }) {
      INFO(c.predict);
      Loaded l = Load(RemotePipeline(c.predict));
      REQUIRE(l.diags.ErrorCount() == 1u);
      CHECK_THAT(l.Errors()[0].message, Catch::EndsWith(c.message));
    }
  }
}
