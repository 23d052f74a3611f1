#include "operators/http/client.h"

#include <curl/curl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <thread>

#include <fmt/format.h>
#include <simdjson.h>

namespace sluice {
namespace {

constexpr size_t kMaxMessage = 300;  // characters of an error body kept in a message
constexpr int kPollMs = 100;         // curl_multi_poll wakes at least this often

std::string Shorten(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  if (s.size() > kMaxMessage) s = s.substr(0, kMaxMessage) + "...";
  return s;
}

size_t WriteBody(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

// The sockets of a session's connections, kept by libcurl's open and close callbacks.
//
// Why: servers that write a response's head and its body separately, without TCP_NODELAY (uvicorn
// 0.17, which serves the seed's FastAPI model API, does), send the body only once the head is
// acknowledged, and on a kept-alive connection Linux delays that acknowledgement by up to 40 ms:
// every request took ~44 ms, so a `json` predict with `concurrency: 16` managed ~360 records/s.
// Asking for immediate acknowledgements (TCP_QUICKACK) on each connection before every wait for
// answers removes the stall. The kernel leaves that mode by itself, hence again before each wait.
struct SocketSet {
  std::vector<curl_socket_t> fds;

  void AckPromptly() const {
#ifdef TCP_QUICKACK
    const int one = 1;
    for (curl_socket_t fd : fds) setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
#endif
  }
};

curl_socket_t OpenSocket(void* user, curlsocktype, curl_sockaddr* address) {
  curl_socket_t fd = socket(address->family, address->socktype, address->protocol);
  if (fd != CURL_SOCKET_BAD) static_cast<SocketSet*>(user)->fds.push_back(fd);
  return fd;
}

int CloseSocket(void* user, curl_socket_t fd) {
  auto& fds = static_cast<SocketSet*>(user)->fds;
  fds.erase(std::remove(fds.begin(), fds.end(), fd), fds.end());
  return close(fd);
}

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

std::string ServerMessage(const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::padded_string padded(body);
  if (!parser.parse(padded).get(doc) && doc.is_object()) {
    for (const char* key : {"detail", "error", "message"}) {
      simdjson::dom::element v;
      if (doc[key].get(v)) continue;
      std::string_view s;
      if (!v.get_string().get(s)) return Shorten(std::string(s));
      return Shorten(simdjson::minify(v));
    }
  }
  return Shorten(body);
}

struct HttpClient::Session {
  CURLM* multi = nullptr;
  std::vector<CURL*> easies;  // idle easy handles of this session
  SocketSet sockets;          // its open connections; outlives the cleanups, which close them

  Session() : multi(curl_multi_init()) {}
  ~Session() {
    for (CURL* e : easies) curl_easy_cleanup(e);
    if (multi) curl_multi_cleanup(multi);
  }
  CURL* Easy() {
    if (easies.empty()) {
      CURL* e = curl_easy_init();
      curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, OpenSocket);
      curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, &sockets);
      curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, CloseSocket);
      curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, &sockets);
      return e;
    }
    CURL* e = easies.back();
    easies.pop_back();
    return e;
  }
};

HttpClient::HttpClient(HttpOptions options)
    : options_(std::move(options)), slots_free_(std::max<int64_t>(1, options_.concurrency)) {
  GlobalInit();
  bool content_type = false;
  for (const auto& [name, value] : options_.headers) {
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
    content_type = content_type || lower == "content-type";
    header_list_ = curl_slist_append(header_list_, (name + ": " + value).c_str());
  }
  if (!content_type)
    header_list_ = curl_slist_append(header_list_, "Content-Type: application/json");
  header_list_ = curl_slist_append(header_list_, "Accept: application/json");
  // No "Expect: 100-continue" round trip before large bodies.
  header_list_ = curl_slist_append(header_list_, "Expect:");
  if (options_.metric_labels.empty()) return;
  MetricsRegistry& reg = Metrics();
  auto outcome = [&](const char* what) {
    MetricLabels l = options_.metric_labels;
    l.emplace_back("outcome", what);
    return reg.GetCounter("sluice_http_requests_total",
                          "HTTP requests a node made, each attempt counted, by outcome", l);
  };
  answered_ok_ = outcome("ok");
  refused_ = outcome("refused");
  failed_ = outcome("failed");
  duration_ = reg.GetHistogram("sluice_http_request_duration_seconds",
                               "time of one HTTP attempt, connecting included, until its answer "
                               "or its failure",
                               options_.metric_labels, DurationBuckets());
  circuit_open_ = reg.GetGauge("sluice_http_circuit_open",
                               "1 while the node's circuit breaker refuses calls",
                               options_.metric_labels);
  circuit_open_->Set(0);
  breaker_collector_ = reg.AddCollector([this] {
    std::lock_guard<std::mutex> lock(breaker_mu_);
    circuit_open_->Set(std::chrono::steady_clock::now() < open_until_ ? 1 : 0);
  });
}

void HttpClient::Observe(const HttpResponse& r, double seconds) {
  if (!duration_) return;
  duration_->Observe(seconds);
  switch (r.outcome) {
    case HttpResponse::Outcome::kOk: answered_ok_->Inc(); break;
    case HttpResponse::Outcome::kRejected: refused_->Inc(); break;
    case HttpResponse::Outcome::kUnavailable: failed_->Inc(); break;
  }
}

HttpClient::~HttpClient() {
  idle_.clear();
  curl_slist_free_all(header_list_);
}

std::unique_ptr<HttpClient::Session> HttpClient::TakeSession() {
  std::lock_guard<std::mutex> lock(sessions_mu_);
  if (idle_.empty()) return std::make_unique<Session>();
  auto s = std::move(idle_.back());
  idle_.pop_back();
  return s;
}

void HttpClient::ReturnSession(std::unique_ptr<Session> s) {
  std::lock_guard<std::mutex> lock(sessions_mu_);
  idle_.push_back(std::move(s));
}

Status HttpClient::BreakerAllows() {
  std::lock_guard<std::mutex> lock(breaker_mu_);
  const auto now = std::chrono::steady_clock::now();
  if (now >= open_until_) return Status::Ok();
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(open_until_ - now);
  return Status::Unavailable(fmt::format(
      "circuit open after {} consecutive failures (last: {}); calling again in {} ms",
      consecutive_failures_, last_failure_, left.count()));
}

void HttpClient::RecordAttempt(bool failed, const std::string& error) {
  std::lock_guard<std::mutex> lock(breaker_mu_);
  if (!failed) {
    consecutive_failures_ = 0;
    return;
  }
  last_failure_ = error;
  // Past the threshold (also the first failure after a cool-down): open, or stay open.
  if (++consecutive_failures_ >= std::max<int64_t>(1, options_.breaker_failures)) {
    open_until_ = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(options_.breaker_cooldown_ms);
  }
}

void HttpClient::Attempt(Session& s, const std::vector<HttpRequest>& requests,
                         const std::vector<size_t>& todo, std::vector<HttpResponse>& out) {
  struct Transfer {
    size_t index = 0;
    std::string body;
    char error[CURL_ERROR_SIZE] = {0};
  };
  std::vector<Transfer> transfers(todo.size());
  size_t next = 0;
  int64_t running = 0;
  auto release = [&] {
    {
      std::lock_guard<std::mutex> lock(slots_mu_);
      ++slots_free_;
    }
    slots_cv_.notify_one();
  };
  while (next < todo.size() || running > 0) {
    // Start as many transfers as there are free slots; wait for one only when none runs here.
    while (next < todo.size()) {
      {
        std::unique_lock<std::mutex> lock(slots_mu_);
        if (slots_free_ == 0 && running > 0) break;
        // Other calls hold every slot; each of their transfers ends within timeout_ms.
        slots_cv_.wait(lock, [&] { return slots_free_ > 0; });
        --slots_free_;
      }
      Transfer& t = transfers[next];
      t.index = todo[next];
      const HttpRequest& req = requests[t.index];
      CURL* e = s.Easy();
      curl_easy_setopt(e, CURLOPT_URL, req.url.c_str());
      curl_easy_setopt(e, CURLOPT_POST, 1L);
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, req.body.data());
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
      curl_easy_setopt(e, CURLOPT_HTTPHEADER, header_list_);
      curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, WriteBody);
      curl_easy_setopt(e, CURLOPT_WRITEDATA, &t.body);
      curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t.error);
      curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout_ms));
      curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
      curl_easy_setopt(e, CURLOPT_PRIVATE, &t);
      curl_multi_add_handle(s.multi, e);
      ++running;
      ++next;
    }
    int still = 0;
    curl_multi_perform(s.multi, &still);
    int queued = 0;
    bool finished_any = false;
    while (CURLMsg* msg = curl_multi_info_read(s.multi, &queued)) {
      if (msg->msg != CURLMSG_DONE) continue;
      CURL* e = msg->easy_handle;
      Transfer* t = nullptr;
      curl_easy_getinfo(e, CURLINFO_PRIVATE, &t);
      HttpResponse& r = out[t->index];
      r = HttpResponse{};
      long status = 0;
      curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
      r.status = status;
      curl_off_t retry_after = -1;
      if (curl_easy_getinfo(e, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK && retry_after > 0)
        r.retry_after_s = static_cast<int64_t>(retry_after);
      if (msg->data.result != CURLE_OK) {
        r.outcome = HttpResponse::Outcome::kUnavailable;
        r.error = t->error[0] ? t->error : curl_easy_strerror(msg->data.result);
      } else if (status >= 200 && status < 300) {
        r.outcome = HttpResponse::Outcome::kOk;
      } else if (status == 408 || status == 429 || status >= 500) {
        r.outcome = HttpResponse::Outcome::kUnavailable;
        r.error = fmt::format("HTTP {}: {}", status, ServerMessage(t->body));
      } else {
        r.outcome = HttpResponse::Outcome::kRejected;
        r.error = fmt::format("HTTP {}: {}", status, ServerMessage(t->body));
      }
      r.body = std::move(t->body);
      curl_off_t micros = 0;
      curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &micros);
      Observe(r, static_cast<double>(micros) / 1e6);
      RecordAttempt(r.outcome == HttpResponse::Outcome::kUnavailable, r.error);
      curl_multi_remove_handle(s.multi, e);
      s.easies.push_back(e);
      --running;
      release();
      finished_any = true;
    }
    if (!finished_any && running > 0) {
      s.sockets.AckPromptly();
      curl_multi_poll(s.multi, nullptr, 0, kPollMs, nullptr);
    }
  }
}

std::vector<HttpResponse> HttpClient::PostOnce(const std::vector<HttpRequest>& requests) {
  std::vector<HttpResponse> out(requests.size());
  std::vector<size_t> todo(requests.size());
  for (size_t i = 0; i < todo.size(); ++i) todo[i] = i;
  std::unique_ptr<Session> session = TakeSession();
  Attempt(*session, requests, todo, out);
  ReturnSession(std::move(session));
  return out;
}

Result<std::vector<HttpResponse>> HttpClient::PostAll(const std::vector<HttpRequest>& requests) {
  SLUICE_RETURN_IF_ERROR(BreakerAllows());
  std::vector<HttpResponse> out(requests.size());
  std::vector<size_t> todo(requests.size());
  for (size_t i = 0; i < todo.size(); ++i) todo[i] = i;
  auto backoff = std::chrono::milliseconds(std::max<int64_t>(1, options_.retry_backoff_ms));
  std::unique_ptr<Session> session = TakeSession();
  for (int64_t attempt = 0;; ++attempt) {
    Attempt(*session, requests, todo, out);
    std::vector<size_t> failed;
    for (size_t i : todo)
      if (out[i].outcome == HttpResponse::Outcome::kUnavailable) failed.push_back(i);
    todo = std::move(failed);
    if (todo.empty() || attempt >= options_.retries || !BreakerAllows().ok()) break;
    std::this_thread::sleep_for(backoff);
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, kMaxRetryBackoff);
  }
  ReturnSession(std::move(session));
  if (!todo.empty()) {
    const HttpResponse& r = out[todo.front()];
    return Status::Unavailable(fmt::format("{} of {} requests to {} failed: {}", todo.size(),
                                           requests.size(), requests[todo.front()].url, r.error));
  }
  return out;
}

namespace {

// A handle for one check of `url` within `timeout_ms`, its errors written to `error`; null, with
// r.error set, when libcurl cannot make one.
CURL* CheckHandle(const std::string& url, int64_t timeout_ms, char* error, HttpResponse& r) {
  GlobalInit();
  CURL* e = curl_easy_init();
  if (!e) {
    r.error = "cannot make a libcurl handle";
    return nullptr;
  }
  curl_easy_setopt(e, CURLOPT_URL, url.c_str());
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms));
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  return e;
}

}  // namespace

HttpResponse HttpGet(const std::string& url,
                     const std::vector<std::pair<std::string, std::string>>& headers,
                     int64_t timeout_ms) {
  HttpResponse r;
  char error[CURL_ERROR_SIZE] = "";
  CURL* e = CheckHandle(url, timeout_ms, error, r);
  if (!e) return r;
  curl_slist* list = nullptr;
  for (const auto& [name, value] : headers)
    list = curl_slist_append(list, (name + ": " + value).c_str());
  list = curl_slist_append(list, "Accept: application/json");
  curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, WriteBody);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &r.body);
  const CURLcode code = curl_easy_perform(e);
  if (code == CURLE_OK) {
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r.status);
    r.outcome = r.status >= 200 && r.status < 300 ? HttpResponse::Outcome::kOk
                                                  : HttpResponse::Outcome::kRejected;
    if (r.outcome != HttpResponse::Outcome::kOk)
      r.error = fmt::format("HTTP {}: {}", r.status, ServerMessage(r.body));
  } else {
    r.error = Shorten(error[0] ? error : curl_easy_strerror(code));
  }
  curl_slist_free_all(list);
  curl_easy_cleanup(e);
  return r;
}

HttpResponse HttpConnectOnly(const std::string& url, int64_t timeout_ms) {
  HttpResponse r;
  char error[CURL_ERROR_SIZE] = "";
  CURL* e = CheckHandle(url, timeout_ms, error, r);
  if (!e) return r;
  curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
  const CURLcode code = curl_easy_perform(e);
  if (code == CURLE_OK) {
    char* ip = nullptr;
    long port = 0;
    curl_easy_getinfo(e, CURLINFO_PRIMARY_IP, &ip);
    curl_easy_getinfo(e, CURLINFO_PRIMARY_PORT, &port);
    r.outcome = HttpResponse::Outcome::kOk;
    const std::string host = ip ? ip : "";
    r.body = host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port)
                                                 : fmt::format("{}:{}", host, port);
  } else {
    r.error = Shorten(error[0] ? error : curl_easy_strerror(code));
  }
  curl_easy_cleanup(e);
  return r;
}

}  // namespace sluice
