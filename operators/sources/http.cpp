// http: an HTTP endpoint that receives records pushed to it — Google Pub/Sub push deliveries
// (base64 message data, in the push subscription's JSON or the CloudEvent shape) or plain JSON
// POSTs — and answers each request only once its records are durably written by every sink
// downstream (2xx), rejected by the decoder (400, dead-lettered), or not acknowledged in time
// (503, so the sender delivers again: at-least-once). The server and its waiting requests live
// in operators/http/push_server.h; this file declares the operator and its decoder.
//
// Threading: the decoder runs in parallel on batches and records the records it rejects in a
// RejectionLog the reader consults when the batch is acknowledged.
#include <algorithm>

#include <fmt/format.h>

#include "engine/dead_letter.h"
#include "engine/formats.h"
#include "operators/builtin.h"
#include "operators/http/pubsub.h"
#include "operators/http/push_server.h"

namespace sluice {
namespace {

constexpr int kMaxConnections = 4096;
constexpr int64_t kMaxLingerMs = 10000;

struct HttpSourceConfig {
  PushServerOptions server;       ///< address, path, limits
  bool pubsub = false;            ///< the body is a Pub/Sub push; its message data is the record
  Format format = Format::kJson;  ///< how a record (or the message data) decodes
  std::string schema_path;        ///< JSON Schema of the records
};

// Decodes push bodies into the source's schema. With `pubsub`, each body's message data is
// unwrapped first; every rejection is noted (position → reason) for the request's answer, and
// dead-lettered with the body as it was received.
class HttpDecoder : public Decoder {
 public:
  HttpDecoder(std::unique_ptr<Decoder> inner, bool pubsub, SchemaPtr schema,
              std::shared_ptr<RejectionLog> rejections)
      : inner_(std::move(inner)),
        pubsub_(pubsub),
        schema_(std::move(schema)),
        rejections_(std::move(rejections)) {}

  Result<std::shared_ptr<Batch>> Decode(std::shared_ptr<const RawRecords> raw,
                                        NodeContext& ctx) const override {
    std::shared_ptr<const RawRecords> input = raw;
    std::vector<uint32_t> original;  // record of `input` → record of `raw`
    if (pubsub_) {
      auto unwrapped = std::make_shared<RawRecords>();
      unwrapped->origin = raw->origin;
      unwrapped->offsets.push_back(0);
      for (size_t i = 0; i < raw->count(); ++i) {
        auto data = UnwrapPubSubPush(raw->Get(i));
        if (!data.ok()) {
          Reject(ctx, *raw, i, data.status().message());
          continue;
        }
        unwrapped->Add(*data, raw->positions[i]);
        original.push_back(static_cast<uint32_t>(i));
      }
      // Room past the last record lets the JSON parser read it in place.
      unwrapped->data.reserve(unwrapped->data.size() + kPadding);
      input = std::move(unwrapped);
    }
    // The inner decoder's rejections are caught here, to be reported with the original bytes.
    MemoryDeadLetter caught;
    NodeContext inner_ctx(ctx.node(), &caught);
    Result<std::shared_ptr<Batch>> got = inner_->Decode(input, inner_ctx);
    std::shared_ptr<Batch> batch;
    if (got.ok()) {
      batch = std::move(*got);
      for (const DeadLetterRecord& d : caught.records())
        Reject(ctx, *raw, IndexOf(*raw, d.position), d.reason);
    } else {
      for (size_t k = 0; k < input->count(); ++k)
        Reject(ctx, *raw, IndexOf(*raw, input->positions[k]), got.status().message());
      std::vector<ColumnPtr> cols;
      for (const auto& f : schema_->fields()) cols.push_back(std::make_shared<Column>(f.type));
      batch = std::make_shared<Batch>(schema_, std::move(cols), 0);
    }
    // Rows point at the bodies as received, for dead letters downstream.
    std::vector<uint32_t> index(batch->num_rows());
    bool identity = batch->num_rows() == raw->count();
    for (size_t r = 0; r < batch->num_rows(); ++r) {
      const uint32_t i = batch->RawIndex(r);
      index[r] = pubsub_ ? original[i] : i;
      identity = identity && index[r] == r;
    }
    if (identity) index.clear();
    batch->SetRaw(std::move(raw), std::move(index));
    return batch;
  }

 private:
  static constexpr size_t kPadding = 64;

  static size_t IndexOf(const RawRecords& raw, int64_t position) {
    auto it = std::lower_bound(raw.positions.begin(), raw.positions.end(), position);
    return static_cast<size_t>(it - raw.positions.begin());
  }

  void Reject(NodeContext& ctx, const RawRecords& raw, size_t i, const std::string& reason) const {
    if (i >= raw.count()) return;
    rejections_->Add(raw.positions[i], reason);
    ctx.RejectRaw(raw, i, reason);
  }

  std::unique_ptr<Decoder> inner_;
  bool pubsub_;
  SchemaPtr schema_;
  std::shared_ptr<RejectionLog> rejections_;
};

class HttpSource : public SourceNode {
 public:
  HttpSource(const NodeConfig& node, HttpSourceConfig cfg)
      : node_(node), cfg_(std::move(cfg)), rejections_(std::make_shared<RejectionLog>()) {}

  Result<SchemaPtr> OutputSchema() override {
    auto schema = SourceSchema(cfg_.format, cfg_.schema_path);
    if (!schema.ok()) return node_.Error("schema", schema.status().message());
    schema_ = *schema;
    return schema_;
  }

  Result<std::unique_ptr<Decoder>> MakeDecoder() const override {
    return std::unique_ptr<Decoder>(std::make_unique<HttpDecoder>(
        MakeFormatDecoder(cfg_.format, schema_), cfg_.pubsub, schema_, rejections_));
  }

  Result<std::string> Probe(const ProbeOptions&) const override {
    auto free = CheckBindable(cfg_.server.host, cfg_.server.port);
    if (!free.ok()) return node_.Error("address", free.status().message());
    return free;
  }

  Result<std::unique_ptr<SourceReader>> OpenReader() const override {
    PushServerOptions options = cfg_.server;
    options.node = node_.Prefix();
    SLUICE_ASSIGN_OR_RETURN(auto server, PushServer::Start(std::move(options), rejections_));
    return std::unique_ptr<SourceReader>(std::move(server));
  }

 private:
  const NodeConfig& node_;
  HttpSourceConfig cfg_;
  SchemaPtr schema_;
  std::shared_ptr<RejectionLog> rejections_;  // shared by the decoder and the reader
};

Result<std::unique_ptr<SourceNode>> MakeHttpSource(const NodeConfig& node) {
  HttpSourceConfig cfg;
  PushServerOptions& s = cfg.server;
  Status st = ParseListenAddress(node.String("address"), &s.host, &s.port);
  if (!st.ok()) return node.Error("address", st.message());
  s.path = node.String("path");
  if (s.path.empty() || s.path.front() != '/') {
    return node.Error("path", fmt::format("'path' must be a URL path starting with '/', found "
                                          "'{}' (write '/{}')",
                                          s.path, s.path));
  }
  const std::string format = node.String("format");
  cfg.pubsub = format == "pubsub";
  cfg.format = cfg.pubsub ? Format::kJson : *ParseFormat(format);
  s.split_json_lines = !cfg.pubsub && cfg.format == Format::kJson;
  if (node.Has("schema")) cfg.schema_path = node.Path("schema");

  const int64_t max_body = node.Int("max_body_bytes");
  if (max_body < 1) {
    return node.Error("max_body_bytes",
                      fmt::format("'max_body_bytes' must be at least 1, found {}", max_body));
  }
  s.max_body_bytes = static_cast<size_t>(max_body);
  const int64_t ack = node.Int("ack_timeout_ms");
  if (ack < 1) {
    return node.Error("ack_timeout_ms",
                      fmt::format("'ack_timeout_ms' must be at least 1, found {}", ack));
  }
  s.ack_timeout = std::chrono::milliseconds(ack);
  const int64_t conns = node.Int("max_connections");
  if (conns < 1 || conns > kMaxConnections) {
    return node.Error(
        "max_connections",
        fmt::format("'max_connections' must be from 1 to {}, found {}", kMaxConnections, conns));
  }
  s.threads = static_cast<int>(conns);
  const int64_t linger = node.Int("batch_linger_ms");
  if (linger < 0 || linger > kMaxLingerMs) {
    return node.Error(
        "batch_linger_ms",
        fmt::format("'batch_linger_ms' must be from 0 to {}, found {}", kMaxLingerMs, linger));
  }
  s.linger = std::chrono::milliseconds(linger);
  return std::unique_ptr<SourceNode>(std::make_unique<HttpSource>(node, std::move(cfg)));
}

// csv is left out: a body would need its header line, and a CSV record is not a body.
std::vector<std::string> HttpFormats() {
  std::vector<std::string> out = {"pubsub"};
  for (const auto& f : FormatNames())
    if (f != "csv") out.push_back(f);
  return out;
}

}  // namespace

void RegisterHttpSource(Registry& registry) {
  OperatorSpec spec;
  spec.name = "http";
  spec.role = Role::kSource;
  spec.summary = "Receives records POSTed to an HTTP endpoint: Pub/Sub pushes or JSON.";
  spec.description =
      "Listens on `address` and takes POST requests to `path`. With `format: pubsub` the body "
      "is a Google Pub/Sub push delivery (the push subscription's JSON "
      "`{\"message\": {\"data\": \"<base64>\", ...}}` or a CloudEvent whose `data.message.data` "
      "holds it), and the base64 message data is the record, decoded as JSON into the fields of "
      "`schema`. With `format: json` the body is the record itself; several JSON objects on "
      "separate lines are several records. A request is answered once every record it carried "
      "is durably written by every sink downstream: 200 `{\"accepted\": n}`; 400 with the "
      "reasons when a record could not be decoded (it is in the dead-letter output, with the "
      "body as received); 503 when the records are not acknowledged within `ack_timeout_ms` "
      "(a sink is down: the pipeline pauses) or the pipeline is stopping, so the sender "
      "delivers again. Delivery is at least once: a redelivered request may be written twice. "
      "404 for another path, 405 for another method, 413 for a body over `max_body_bytes` "
      "(refused unread when its Content-Length says so). Plain HTTP: TLS and authentication "
      "belong to a reverse proxy in front.";
  spec.parallel = true;  // decoding; requests are served by the server's own threads
  spec.fields = {
      {"address",
       ConfigType::kString,
       false,
       "127.0.0.1:8080",
       "host:port to listen on; 0.0.0.0:PORT listens on every interface",
       {}},
      {"path", ConfigType::kString, false, "/", "URL path records are POSTed to", {}},
      {"format", ConfigType::kString, false, "json",
       "body format: pubsub (a Pub/Sub push; the base64 message data is a JSON record), json "
       "(JSON objects, one per line), connect-json (one Kafka Connect envelope), string (the "
       "body as one text field) or dataframe-split (a pandas DataFrame, to_json(orient=\"split\"): "
       "one body, many rows)",
       HttpFormats()},
      {"schema",
       ConfigType::kPath,
       false,
       "",
       "JSON Schema file describing the records (every format but string)",
       {}},
      {"max_body_bytes",
       ConfigType::kInt,
       false,
       "1048576",
       "largest request body accepted; larger ones are answered 413 unread",
       {}},
      {"ack_timeout_ms",
       ConfigType::kInt,
       false,
       "30000",
       "how long a request waits for its records to be written before it is answered 503",
       {}},
      {"max_connections",
       ConfigType::kInt,
       false,
       "64",
       "requests served at once (one thread each); more connections wait to be accepted",
       {}},
      {"batch_linger_ms",
       ConfigType::kInt,
       false,
       "5",
       "how long records of concurrent requests are gathered into one batch",
       {}},
  };
  spec.example =
      "{type: http, address: \"127.0.0.1:8080\", path: /push, format: pubsub, schema: "
      "../schemas/ride_event.json}";
  spec.make_source = MakeHttpSource;
  registry.Add(std::move(spec));
}

}  // namespace sluice
