// An HTTP/1.1 JSON client for calls to remote services (model servers): libcurl with connection
// reuse, a bound on requests in flight, per-request timeouts, retries with backoff for outages,
// and a circuit breaker that stops calling a server that keeps failing.
//
// Threading contract: one HttpClient is shared by every thread of a node. PostAll may be called
// from several threads at once (TBB workers running a parallel transform); each call blocks its
// thread until every request has an answer, has failed for good, or the breaker is open. Every
// wait is bounded: a request takes at most `timeout_ms` per attempt, and at most `retries` + 1
// attempts separated by the backoff, so one call lasts at most
// (retries + 1) * timeout_ms + the backoff sum. At most `concurrency` requests are in flight for
// the whole client, across threads. Connections are kept alive in a pool of curl multi handles,
// one taken per call, so a steady stream of calls reuses its connections.
//
// Metrics (with `metric_labels`): every attempt's outcome (sluice_http_requests_total) and time
// (sluice_http_request_duration_seconds), and whether the breaker is open
// (sluice_http_circuit_open, read at each scrape).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "engine/metrics.h"
#include "engine/status.h"

struct curl_slist;

namespace sluice {

struct HttpOptions {
  std::vector<std::pair<std::string, std::string>> headers;  // sent with every request
  int64_t timeout_ms = 10000;                                // per attempt, connect included
  int64_t concurrency = 8;                                   // requests in flight, per client
  int64_t retries = 3;             // further attempts after an outage-like failure
  int64_t retry_backoff_ms = 100;  // before the first retry; doubles, up to kMaxRetryBackoff
  int64_t breaker_failures = 5;    // consecutive failed attempts that open the breaker
  int64_t breaker_cooldown_ms = 5000;  // how long an open breaker refuses calls
  MetricLabels metric_labels;  // pipeline and node of the client's metrics; empty: none
};

struct HttpRequest {
  std::string url;
  std::string body;  // POSTed as is
};

// What became of one request.
struct HttpResponse {
  enum class Outcome {
    kOk,           // a 2xx answer: `body` holds it
    kRejected,     // the server refused this request (4xx other than 408/429): not retried
    kUnavailable,  // connection failure, timeout or 5xx, after every retry
  };
  Outcome outcome = Outcome::kUnavailable;
  long status = 0;    // HTTP status; 0 when no answer came
  std::string body;   // the answer's body
  std::string error;  // kRejected / kUnavailable: what went wrong, for messages
  // The answer's Retry-After (429, 503), in seconds; -1 when none.
  int64_t retry_after_s = -1;
};

// The human part of an error answer: FastAPI's `detail`, KServe's `error`, MLflow's `message`,
// else the body itself, shortened.
std::string ServerMessage(const std::string& body);

// One GET with `headers`, no retries, bounded by `timeout_ms`: for checks such as `sluice
// validate --connect`. kOk for a 2xx answer, kRejected for any other answer (`status` says which),
// kUnavailable with `error` when none came.
HttpResponse HttpGet(const std::string& url,
                     const std::vector<std::pair<std::string, std::string>>& headers,
                     int64_t timeout_ms);

// Opens a connection to the URL's host, with the TLS handshake for https://, and closes it
// without sending a request, bounded by `timeout_ms`: for `sluice validate --connect` of an
// endpoint that any request would act on (a webhook posts an alert). kOk with `body` set to the
// address connected to ("127.0.0.1:8080"), or kUnavailable with `error`.
HttpResponse HttpConnectOnly(const std::string& url, int64_t timeout_ms);

class HttpClient {
 public:
  static constexpr auto kMaxRetryBackoff = std::chrono::milliseconds(5000);

  explicit HttpClient(HttpOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // POSTs every request (concurrently, up to the client's bound) and returns one response per
  // request, in order. Returns Unavailable without calling when the breaker is open.
  Result<std::vector<HttpResponse>> PostAll(const std::vector<HttpRequest>& requests);

  // One attempt at each request (concurrently, up to the client's bound), no retries and no
  // breaker: for callers that classify answers themselves (the webhook sink honours Retry-After
  // and dead-letters what keeps failing). One response per request, in order.
  std::vector<HttpResponse> PostOnce(const std::vector<HttpRequest>& requests);

  const HttpOptions& options() const { return options_; }

 private:
  struct Session;  // a curl multi handle and its easy handles: connections kept alive
  std::unique_ptr<Session> TakeSession();
  void ReturnSession(std::unique_ptr<Session> s);
  // One attempt at each of `todo` (indices into requests); fills `out`.
  void Attempt(Session& s, const std::vector<HttpRequest>& requests,
               const std::vector<size_t>& todo, std::vector<HttpResponse>& out);
  Status BreakerAllows();
  void RecordAttempt(bool failed, const std::string& error);
  void Observe(const HttpResponse& r, double seconds);

  HttpOptions options_;
  struct curl_slist* header_list_ = nullptr;
  std::mutex sessions_mu_;
  std::vector<std::unique_ptr<Session>> idle_;
  // Slots for requests in flight, across sessions.
  std::mutex slots_mu_;
  std::condition_variable slots_cv_;
  int64_t slots_free_;
  // The breaker.
  std::mutex breaker_mu_;
  int64_t consecutive_failures_ = 0;
  std::string last_failure_;
  std::chrono::steady_clock::time_point open_until_{};
  // Metrics, when the options name labels.
  Counter* answered_ok_ = nullptr;
  Counter* refused_ = nullptr;
  Counter* failed_ = nullptr;
  Histogram* duration_ = nullptr;
  Gauge* circuit_open_ = nullptr;
  MetricsRegistry::Collector breaker_collector_;
};

}  // namespace sluice
