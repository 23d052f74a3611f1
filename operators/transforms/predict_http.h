// predict against a remote model server over HTTP. Three protocols:
// - mlflow: POST {url}/invocations with {"dataframe_split": {"columns", "data"}}, a batch (or a
//   chunk of max_batch_rows) per request; the answer is {"predictions": [...]} or a bare array.
// - kserve-v2: the Open Inference Protocol, POST {url}/v2/models/{model}/infer with one FP32 or
//   FP64 tensor [rows, features]; the answer's outputs[0] holds the predictions.
// - json: one POST of the record's features as a JSON object to {url} per record (a FastAPI
//   `POST /predict`); the answer is a JSON object whose keys the outputs name.
//
// Failures: an outage (connection refused, timeout, 5xx, 408, 429) is retried by the client,
// then Process returns Unavailable so the runner pauses the pipeline and retries the batch:
// nothing is dropped. A request the server refuses (4xx) or an answer that cannot be read
// dead-letters the rows of that request with the server's message; the other rows flow.
//
// Threading contract: Process is const and runs concurrently on several batches (predict is
// parallel). It blocks its thread on HTTP calls, each bounded by timeout_ms per attempt and by
// the retry count (see operators/http/client.h), so it says it blocks() and the runner calls it
// on threads of the node's own, not on the TBB workers; requests in flight are bounded per node
// by `concurrency`, across all the batches being processed. The client is shared and thread-safe;
// the other mutable state is the node's metrics and drift window (predict_monitor.h), which
// take concurrent batches.
//
// Model version: a kserve-v2 answer that names its model_version gives its rows that version
// (the `model_version` output): the server says which version scored them, whatever the model
// directory's MLmodel says; otherwise the rows carry the MLmodel's version (empty without one).
//
// Metrics: sluice_model_info names the model (its MLmodel's name and version, or `model_name`
// or the node's name without one). With scores in the answer (mlflow, kserve-v2) the predictions
// are counted as in process, and a model directory with a reference profile adds drift
// monitoring; the json backend's answers are not scores, so only its inputs are monitored.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/batch.h"
#include "engine/model.h"
#include "engine/operator.h"
#include "operators/http/client.h"
#include "operators/transforms/predict_monitor.h"
#include "operators/transforms/predict_outputs.h"

namespace sluice {

enum class PredictBackend { kXgboost, kMlflow, kKserveV2, kJson };

struct RemoteConfig {
  PredictBackend backend = PredictBackend::kMlflow;
  std::string url;             ///< the server's base URL (mlflow, kserve-v2) or endpoint (json)
  std::string model_name;      ///< kserve-v2: the model's name on the server
  int64_t max_batch_rows = 0;  ///< rows per request for the batched protocols; 0: the batch
  bool fp32 = false;           ///< kserve-v2: send FP32 rather than FP64
  HttpOptions http;
};

// A server's answer for some rows: `width` numbers per row, read as in AppendPrediction, and a
// reason per row that cannot be used (empty when the row is fine).
struct Scores {
  size_t width = 1;
  bool direct = false;
  std::vector<double> values;
  std::vector<std::string> errors;
  std::string model_version;  ///< kserve-v2: the answer's model_version; empty when it has none
};

// Request bodies for rows [begin, end) of `batch`; `features` are column indices, `names` the
// model's input names in the same order.
std::string EncodeMlflowRequest(const Batch& batch, const std::vector<size_t>& features,
                                const std::vector<std::string>& names, size_t begin, size_t end);
std::string EncodeKserveRequest(const Batch& batch, const std::vector<size_t>& features,
                                size_t begin, size_t end, bool fp32);
std::string EncodeJsonRecord(const Batch& batch, const std::vector<size_t>& features,
                             const std::vector<std::string>& names, size_t row);

// Reads an answer for `rows` rows. Class names in the answer are mapped to their index in
// `classes`. An error status means the whole answer is unusable.
Result<Scores> DecodeMlflowResponse(std::string_view body, size_t rows,
                                    const std::vector<std::string>& classes);
Result<Scores> DecodeKserveResponse(std::string_view body, size_t rows,
                                    const std::vector<std::string>& classes);
// Appends the answer's value for every kResponseKey output to `cols` (one per output), or
// nothing and an error when a key is missing or of the wrong type.
Status DecodeJsonRecord(std::string_view body, const std::vector<OutputSpec>& outputs,
                        const std::vector<std::shared_ptr<Column>>& cols);

// The URL a backend posts to, from the configured one.
std::string EndpointUrl(const RemoteConfig& cfg);

// `sluice validate --connect`: asks the server, without predicting anything, whether it is
// there and serves the model. kserve-v2 reads the model's metadata (GET {url}/v2/models/{name})
// and checks that its one input tensor takes `features` numbers per row in the datatype sent;
// mlflow asks GET {url}/ping; a json endpoint takes POSTs only, so any answer to a GET (405
// included) shows the server is there. On an error `key` names the node's key to point at.
Result<std::string> ProbeRemoteModel(const RemoteConfig& cfg, size_t features,
                                     int64_t timeout_ms, std::string& key);

std::unique_ptr<TransformRuntime> MakeRemotePredict(RemoteConfig cfg, SchemaPtr out,
                                                    std::vector<size_t> features,
                                                    std::vector<std::string> names,
                                                    std::vector<OutputSpec> outputs,
                                                    ModelInfo info, MetricLabels labels,
                                                    DriftConfig drift);

}  // namespace sluice
