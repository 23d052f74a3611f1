// http (sink): posts rows to a webhook — Slack or Discord incoming webhooks, or any endpoint
// that takes JSON — as alerts. Each row (or, with `batch`, each group of rows) is one POST of
// a message built by operators/sinks/webhook_message.h, paced by a token bucket.
//
// Answers are classified as chat services give them: 2xx is delivered; 429 waits for its
// Retry-After and tries again; 5xx, 408 and network errors are retried with doubling backoff up
// to `max_retries`; any other 4xx (a bad payload, an unknown or revoked hook) is final. A
// message that cannot be delivered sends its rows to the dead-letter output with the answer,
// and the pipeline goes on: alerts are a side output, and a chat service being down must not
// stall the database writes or the commits of the same source, so this sink never answers
// Unavailable. After a message has failed every retry, the sink calls the webhook again only
// once `outage_cooldown_ms` has passed, and dead-letters the rows in between at once (a circuit
// breaker): an outage then costs each row a dead letter, not `max_retries` waits. The dead
// letters keep each row's original record, so the alerts can be replayed.
//
// Every wait is bounded: one message blocks Write for at most
// (max_retries + 1) * timeout_ms + max_retries * kMaxWait, plus its share of the rate limit.
//
// Threading: Prepare (rendering the messages) runs on several batches at once; Write is serial
// and owns the client, the bucket and the breaker.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <thread>

#include <fmt/format.h>

#include "engine/log.h"
#include "operators/builtin.h"
#include "operators/http/client.h"
#include "operators/sinks/webhook_message.h"

namespace sluice {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// The longest single wait between attempts, whatever the backoff or Retry-After asks for.
constexpr milliseconds kMaxWait{60000};

// The URL without its path, query and user info: webhook URLs carry their secret there, and
// messages and logs must not. "https://user:token@host:8443/a/b?c" -> "https://...@host:8443/...".
std::string Redacted(const std::string& url) {
  const size_t scheme = url.find("://");
  const size_t start = scheme == std::string::npos ? 0 : scheme + 3;
  const size_t end = url.find_first_of("/?#", start);
  std::string authority = url.substr(start, end == std::string::npos ? end : end - start);
  if (const size_t at = authority.rfind('@'); at != std::string::npos)
    authority = "..." + authority.substr(at);
  return url.substr(0, start) + authority + (end == std::string::npos ? "" : "/...");
}

// Prepared messages: per message its first row, its row count and its body, each length-framed.
void PutU64(std::string& out, uint64_t v) {
  out.append(reinterpret_cast<const char*>(&v), 8);
}
uint64_t GetU64(const std::string& s, size_t& pos) {
  uint64_t v;
  std::memcpy(&v, s.data() + pos, 8);
  pos += 8;
  return v;
}

// Spaces POSTs at least 1/rate apart: a bucket of one token, which is what chat webhooks allow
// (Slack: about one message per second per hook).
class Pacer {
 public:
  explicit Pacer(double per_s)
      : interval_(per_s > 0 ? std::chrono::duration_cast<Clock::duration>(
                                  std::chrono::duration<double>(1.0 / per_s))
                            : Clock::duration::zero()) {}
  void Take() {
    const auto now = Clock::now();
    if (next_ > now) std::this_thread::sleep_for(next_ - now);
    next_ = std::max(next_, now) + interval_;
  }
  // No call before `t` (a Retry-After).
  void NotBefore(Clock::time_point t) { next_ = std::max(next_, t); }

 private:
  Clock::duration interval_;
  Clock::time_point next_{};
};

struct WebhookConfig {
  std::string url;                     ///< where to POST
  int64_t max_retries = 3;             ///< further attempts after a retryable failure
  int64_t retry_backoff_ms = 1000;     ///< first wait; doubles
  int64_t outage_cooldown_ms = 30000;  ///< breaker: no calls this long after a message failed
};

class HttpSinkRuntime : public SinkRuntime {
 public:
  HttpSinkRuntime(WebhookEncoder encoder, WebhookConfig cfg, HttpOptions http, double rate)
      : encoder_(std::move(encoder)),
        cfg_(std::move(cfg)),
        client_(std::move(http)),
        pacer_(rate) {}

  bool prepares() const override { return true; }
  Result<std::string> Prepare(const Batch& batch) const override {
    std::string out;
    for (const WebhookMessage& m : encoder_.Encode(batch)) {
      PutU64(out, m.first_row);
      PutU64(out, m.rows);
      PutU64(out, m.body.size());
      out.append(m.body);
    }
    return out;
  }

  // Never Unavailable: every row is posted or dead-lettered (see the file comment).
  Status Write(const Batch& batch, const std::string& prepared, NodeContext& ctx) override {
    size_t pos = 0;
    while (pos < prepared.size()) {
      const size_t first = GetU64(prepared, pos);
      const size_t rows = GetU64(prepared, pos);
      const size_t len = GetU64(prepared, pos);
      std::string body = prepared.substr(pos, len);
      pos += len;
      std::string reason;
      if (Clock::now() < open_until_) {
        reason = fmt::format(
            "webhook not called: a message failed for good {} ms ago ({}); "
            "calls resume after outage_cooldown_ms",
            std::chrono::duration_cast<milliseconds>(Clock::now() - opened_at_).count(),
            last_outage_);
      } else if (Deliver(std::move(body), reason)) {
        continue;
      }
      for (size_t r = first; r < first + rows; ++r) ctx.Reject(batch, r, reason);
    }
    return Status::Ok();
  }

 private:
  // Posts one message, retrying what may pass later. False with `reason` when it failed for good.
  bool Deliver(std::string body, std::string& reason) {
    std::vector<HttpRequest> request{{cfg_.url, std::move(body)}};
    milliseconds backoff{std::max<int64_t>(1, cfg_.retry_backoff_ms)};
    for (int64_t attempt = 1;; ++attempt) {
      pacer_.Take();
      const HttpResponse r = client_.PostOnce(request)[0];
      if (r.outcome == HttpResponse::Outcome::kOk) return true;
      if (r.outcome == HttpResponse::Outcome::kRejected) {
        reason =
            fmt::format("webhook refused the message with {}: {}", r.status, ServerMessage(r.body));
        return false;
      }
      const std::string what = r.status > 0
                                   ? fmt::format("webhook answered {}", r.status)
                                   : fmt::format("webhook {} unreachable", Redacted(cfg_.url));
      const std::string detail = r.status > 0 ? ServerMessage(r.body) : r.error;
      if (attempt > cfg_.max_retries) {
        reason = fmt::format("{} after {} attempt{}: {}", what, attempt, attempt == 1 ? "" : "s",
                             detail);
        last_outage_ = reason;
        opened_at_ = Clock::now();
        open_until_ = opened_at_ + milliseconds(cfg_.outage_cooldown_ms);
        return false;
      }
      // A Retry-After (429 from a rate limit, 503 from maintenance) says when, not our backoff.
      // Capped before converting: a peer's Retry-After of any size must not overflow.
      const int64_t retry_after_s =
          std::min<int64_t>(r.retry_after_s, std::chrono::duration_cast<std::chrono::seconds>(kMaxWait).count());
      milliseconds wait = r.retry_after_s >= 0 ? milliseconds(retry_after_s * 1000) : backoff;
      wait = std::min(wait, kMaxWait);
      Log(LogLevel::kWarn,
          fmt::format("{} ({}); posting to {} again in {} ms (attempt {} of {})", what, detail,
                      Redacted(cfg_.url), wait.count(), attempt + 1, cfg_.max_retries + 1));
      pacer_.NotBefore(Clock::now() + wait);
      backoff = std::min(backoff * 2, kMaxWait);
    }
  }

  const WebhookEncoder encoder_;
  const WebhookConfig cfg_;
  HttpClient client_;
  Pacer pacer_;
  // The breaker: open until `open_until_` after a message failed every retry.
  Clock::time_point open_until_{};
  Clock::time_point opened_at_{};
  std::string last_outage_;
};

class HttpSink : public SinkNode {
 public:
  explicit HttpSink(const NodeConfig& node) : node_(node) {}

  Status CheckInput(const SchemaPtr& input) override {
    const std::string url = node_.String("url");
    if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
      return node_.Error(
          "url", fmt::format("expected an http:// or https:// URL, not '{}'", Redacted(url)));
    }
    for (const char* key :
         {"timeout_ms", "max_retries", "retry_backoff_ms", "outage_cooldown_ms"}) {
      if (node_.Int(key) < 0) {
        return node_.Error(key,
                           fmt::format("'{}' must not be negative, found {}", key, node_.Int(key)));
      }
    }
    if (node_.Int("timeout_ms") == 0) {
      return node_.Error("timeout_ms", "'timeout_ms' must be at least 1, found 0");
    }
    if (node_.Float("rate_limit_per_s") < 0) {
      return node_.Error("rate_limit_per_s",
                         fmt::format("'rate_limit_per_s' must not be negative (0 sends without a "
                                     "limit), found {}",
                                     node_.String("rate_limit_per_s")));
    }
    auto encoder = WebhookEncoder::Parse(node_, *input);
    if (!encoder.ok()) return encoder.status();
    encoder_ = std::make_shared<const WebhookEncoder>(std::move(*encoder));
    return Status::Ok();
  }

  // `validate --connect`: the host takes a connection (and, for https, completes the TLS
  // handshake); nothing is sent, since any request would post an alert. The url's path, which
  // holds a chat webhook's secret, is left out of what is printed.
  Result<std::string> Probe(const ProbeOptions& options) const override {
    const std::string url = node_.String("url");
    HttpResponse r = HttpConnectOnly(url, options.timeout_ms);
    if (r.outcome != HttpResponse::Outcome::kOk) {
      return node_.Error("url", fmt::format("cannot connect to {}: {}", Redacted(url), r.error));
    }
    return fmt::format("{} takes connections (at {}; nothing was sent)", Redacted(url), r.body);
  }

  Result<std::unique_ptr<SinkRuntime>> Open(const SchemaPtr& input) const override {
    std::shared_ptr<const WebhookEncoder> encoder = encoder_;
    if (!encoder) {
      auto parsed = WebhookEncoder::Parse(node_, *input);
      if (!parsed.ok()) return parsed.status();
      encoder = std::make_shared<const WebhookEncoder>(std::move(*parsed));
    }
    WebhookConfig cfg;
    cfg.url = node_.String("url");
    cfg.max_retries = node_.Int("max_retries");
    cfg.retry_backoff_ms = node_.Int("retry_backoff_ms");
    cfg.outage_cooldown_ms = node_.Int("outage_cooldown_ms");
    HttpOptions http;
    http.headers = node_.StringMap("headers");
    http.timeout_ms = node_.Int("timeout_ms");
    http.concurrency = 1;  // one message at a time keeps alerts in order and under the limit
    http.retries = 0;      // the sink retries itself, honouring Retry-After
    http.metric_labels = {{"pipeline", node_.pipeline}, {"node", node_.name}};
    return std::unique_ptr<SinkRuntime>(std::make_unique<HttpSinkRuntime>(
        *encoder, std::move(cfg), std::move(http), node_.Float("rate_limit_per_s")));
  }

 private:
  NodeConfig node_;
  std::shared_ptr<const WebhookEncoder> encoder_;  // parsed by CheckInput
};

}  // namespace

void RegisterHttpSink(Registry& registry) {
  OperatorSpec spec;
  spec.name = "http";
  spec.role = Role::kSink;
  spec.summary = "Posts rows to a webhook as alerts: Slack, Discord or JSON.";
  spec.description =
      "Each row becomes one POST to `url` (with `batch: true`, consecutive rows of a batch are "
      "joined into one message, one line per row, up to `max_message_bytes`). `format: slack` "
      "posts `{\"text\": ...}`, `discord` posts `{\"content\": ...}` (mentions do not notify), "
      "both with the text of `template`, whose `{field}` placeholders are the row's values "
      "(`{field:.2f}` formats them; `{{` and `}}` are braces; default the row as JSON; a line "
      "longer than `max_message_bytes` is shortened with an ellipsis); in Slack text, `&`, `<` "
      "and `>` of the values are escaped so data cannot add links or mentions. `format: json` "
      "posts the row as a JSON object (an array of them with `batch`). POSTs are spaced by "
      "`rate_limit_per_s` (Slack allows about one message per second per hook). A 2xx answer "
      "delivers the message; 429 is retried after its Retry-After; 5xx, 408 and network "
      "errors are retried after `retry_backoff_ms`, doubling; after `max_retries` retries, or "
      "at once for another 4xx (a bad payload, a revoked hook), the message's rows go to the "
      "dead-letter output with the webhook's answer, and the pipeline goes on. Alerts are a side "
      "output: a chat service that is down must not pause the pipeline's other sinks, so rows "
      "are dead-lettered (with their original record, for replay) rather than the pipeline "
      "paused; and once a message has failed every retry, rows are dead-lettered without a call "
      "for `outage_cooldown_ms`, so an outage does not slow the pipeline down either. One "
      "message blocks the sink for at most (max_retries + 1) × timeout_ms + max_retries × 60 s "
      "(waits are capped at 60 s). Put the URL in the environment: webhook URLs are secrets; "
      "messages and logs show only the host.";
  spec.fields = {
      {"url",
       ConfigType::kString,
       true,
       "",
       "webhook URL, from the environment: \"${SLACK_WEBHOOK_URL}\"",
       {}},
      {"format",
       ConfigType::kString,
       false,
       "slack",
       "slack ({\"text\": ...}), discord ({\"content\": ...}) or json (the row)",
       {"slack", "discord", "json"}},
      {"template",
       ConfigType::kString,
       false,
       "",
       "message text with {field} placeholders, e.g. \"Fraud: {amt} at {merchant}\"; default "
       "the row as JSON",
       {}},
      {"headers",
       ConfigType::kStringMap,
       false,
       "",
       "extra request headers, e.g. Authorization",
       {}},
      {"timeout_ms", ConfigType::kInt, false, "5000", "per attempt, connecting included", {}},
      {"rate_limit_per_s",
       ConfigType::kFloat,
       false,
       "1",
       "most POSTs per second, retries included; 0 for no limit",
       {}},
      {"max_retries",
       ConfigType::kInt,
       false,
       "3",
       "further attempts after a 429, 5xx, 408 or network error",
       {}},
      {"retry_backoff_ms",
       ConfigType::kInt,
       false,
       "1000",
       "wait before the first retry; doubles up to 60 s; a Retry-After answer replaces it",
       {}},
      {"outage_cooldown_ms",
       ConfigType::kInt,
       false,
       "30000",
       "after a message failed every retry, rows are dead-lettered without a call this long",
       {}},
      {"batch",
       ConfigType::kBool,
       false,
       "false",
       "join the rows of a batch into messages of one line per row",
       {}},
      {"max_message_bytes",
       ConfigType::kInt,
       false,
       "2000",
       "longest message text (Discord takes 2,000 characters; Slack advises 4,000)",
       {}},
  };
  spec.example =
      "{type: http, inputs: [classify], url: \"${SLACK_WEBHOOK_URL:-https://hooks.slack.com/"
      "services/T000/B000/XXXX}\", format: slack, template: \"Iris {iris_class} (petal width "
      "{petal_width:.1f} cm)\", rate_limit_per_s: 1}";
  spec.make_sink = [](const NodeConfig& node) -> Result<std::unique_ptr<SinkNode>> {
    return std::unique_ptr<SinkNode>(std::make_unique<HttpSink>(node));
  };
  registry.Add(std::move(spec));
}

}  // namespace sluice
