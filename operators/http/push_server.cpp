#include "operators/http/push_server.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <httplib.h>

#include "engine/json.h"
#include "engine/log.h"

namespace sluice {

namespace {

// Idle keep-alive connections hold a handler thread, and the server waits for them when it
// stops: short enough to bound both, long enough for a steady sender to reuse connections.
constexpr time_t kKeepAliveSeconds = 2;
constexpr size_t kKeepAliveRequests = 1000;
constexpr auto kStartWait = std::chrono::seconds(5);
constexpr size_t kJsonPadding = 64;  // room after the last record for in-place JSON parsing
// httplib listens with a backlog of 5: a burst of new connections (Pub/Sub opening many at once)
// would have its SYNs dropped and retried a second later.
constexpr int kListenBacklog = 1024;

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

// httplib::Server with access to its listening socket, to widen the backlog.
class PushServer::Server : public httplib::Server {
 public:
  bool WidenBacklog() { return ::listen(svr_sock_, kListenBacklog) == 0; }
};

struct PushServer::Request {
  std::string body;
  std::vector<std::string_view> records;  // parts of `body`
  int64_t first = 0;                      // position of records[0]
  size_t read = 0;                        // records handed to Read
  size_t acknowledged = 0;
  std::vector<std::pair<size_t, std::string>> rejected;  // record index, reason
  bool done = false;
  std::condition_variable cv;
};

void RejectionLog::Add(int64_t position, std::string reason) {
  std::lock_guard<std::mutex> lock(mu_);
  // A record of several rows (dataframe-split) may have several bad ones: keep every reason.
  std::string& reasons = reasons_[position];
  if (!reasons.empty()) reasons += "; ";
  reasons += reason;
}

std::optional<std::string> RejectionLog::Take(int64_t position) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = reasons_.find(position);
  if (it == reasons_.end()) return std::nullopt;
  std::string reason = std::move(it->second);
  reasons_.erase(it);
  return reason;
}

Status ParseListenAddress(std::string_view address, std::string* host, int* port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string_view::npos) {
    return Status::InvalidConfig(
        fmt::format("'{}' is not host:port (e.g. 127.0.0.1:8080)", address));
  }
  std::string_view h = address.substr(0, colon);
  std::string_view p = address.substr(colon + 1);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (h.empty()) {
    return Status::InvalidConfig(fmt::format(
        "'{}' names no host (0.0.0.0 listens on every interface, 127.0.0.1 on loopback only)",
        address));
  }
  int value = 0;
  bool digits = !p.empty() && p.size() <= 5;
  for (char c : p) {
    if (c < '0' || c > '9')
      digits = false;
    else if (digits)  // at most 5 digits: no overflow
      value = value * 10 + (c - '0');
  }
  if (!digits || value < 1 || value > 65535) {
    return Status::InvalidConfig(
        fmt::format("'{}': the port '{}' is not a number from 1 to 65535", address, p));
  }
  *host = std::string(h);
  *port = value;
  return Status::Ok();
}

std::vector<std::string_view> SplitJsonRecords(std::string_view body) {
  std::vector<std::string_view> out;
  size_t start = 0;
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
      continue;
    }
    switch (c) {
      case '"': in_string = true; break;
      case '{':
      case '[': ++depth; break;
      case '}':
      case ']':
        if (depth > 0) --depth;
        break;
      case '\n':
        if (depth == 0) {
          std::string_view rec = Trim(body.substr(start, i - start));
          if (!rec.empty()) out.push_back(rec);
          start = i + 1;
        }
        break;
      default: break;
    }
  }
  // An unterminated value runs to the end: one record, which the decoder rejects.
  std::string_view rec = Trim(body.substr(std::min(start, body.size())));
  if (!rec.empty()) out.push_back(rec);
  return out;
}

PushServer::PushServer(PushServerOptions options, std::shared_ptr<RejectionLog> rejections)
    : options_(std::move(options)),
      origin_(fmt::format("http://{}:{}{}", options_.host, options_.port, options_.path)),
      rejections_(std::move(rejections)),
      server_(std::make_unique<Server>()) {}

Result<std::string> CheckBindable(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  const int gai = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
  if (gai != 0) return Status::InvalidConfig(fmt::format("{}: {}", host, gai_strerror(gai)));
  int error = 0;
  bool bound = false;
  for (addrinfo* a = found; a && !bound; a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) continue;
    int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    if (bind(fd, a->ai_addr, a->ai_addrlen) == 0) {
      bound = true;
    } else {
      error = errno;
    }
    close(fd);
  }
  freeaddrinfo(found);
  if (!bound) {
    return Status::Unavailable(fmt::format(
        "cannot listen on {}:{}: {}{}", host, port, std::strerror(error),
        error == EADDRINUSE ? " (another process listens there, or a pipeline already runs)"
                            : ""));
  }
  return fmt::format("{}:{} is free to listen on", host, port);
}

Result<std::unique_ptr<PushServer>> PushServer::Start(PushServerOptions options,
                                                      std::shared_ptr<RejectionLog> rejections) {
  const std::string address = fmt::format("{}:{}", options.host, options.port);
  const std::string where = fmt::format("{}: cannot listen on {}", options.node, address);
  // httplib reports a failed bind as `false`; resolving first tells a bad host from a busy port.
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const int gai =
      getaddrinfo(options.host.c_str(), std::to_string(options.port).c_str(), &hints, &found);
  if (gai != 0) return Status::InvalidConfig(fmt::format("{}: {}", where, gai_strerror(gai)));
  freeaddrinfo(found);

  std::unique_ptr<PushServer> s(new PushServer(std::move(options), std::move(rejections)));
  Server& svr = *s->server_;
  const PushServerOptions& o = s->options_;
  PushServer* self = s.get();
  const int threads = o.threads;
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which would let a second process
  // bind the same port silently and take part of the pushes.
  svr.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  // An answer is written in several pieces; with Nagle's algorithm the last one waits for the
  // client's delayed ACK (40 ms) on every reused connection.
  svr.set_tcp_nodelay(true);
  svr.set_keep_alive_timeout(kKeepAliveSeconds);
  svr.set_keep_alive_max_count(kKeepAliveRequests);
  // A chunked body without Content-Length is cut off at the limit (413) by httplib itself.
  svr.set_payload_max_length(o.max_body_bytes);
  const size_t max_body = o.max_body_bytes;
  auto too_large = [max_body](const httplib::Request& req, httplib::Response& res) {
    if (!req.has_header("Content-Length")) return false;
    const std::string len = req.get_header_value("Content-Length");
    char* end = nullptr;
    errno = 0;
    const unsigned long long n = std::strtoull(len.c_str(), &end, 10);
    if (errno == 0 && end && *end == '\0' && n <= max_body) return false;
    res.status = 413;
    res.set_header("Connection", "close");
    res.set_content(
        fmt::format("{{\"error\":\"the body is larger than max_body_bytes ({})\"}}", max_body),
        "application/json");
    return true;
  };
  // A sender that asks first (Expect: 100-continue) never sends an oversized body.
  svr.set_expect_100_continue_handler(
      [too_large](const httplib::Request& req, httplib::Response& res) {
        return too_large(req, res) ? 413 : 100;
      });
  // Decided from the request line and headers, before any of the body is read.
  svr.set_pre_routing_handler(
      [self, too_large](const httplib::Request& req, httplib::Response& res) {
        using R = httplib::Server::HandlerResponse;
        auto answer = [&](int status, std::string_view message) {
          res.status = status;
          std::string body = "{\"error\":";
          AppendJsonString(body, message);
          body += "}";
          res.set_content(body, "application/json");
          return R::Handled;
        };
        {
          std::lock_guard<std::mutex> lock(self->mu_);
          if (self->stopping_) {
            res.set_header("Connection", "close");
            return answer(503, "the pipeline is shutting down; send again later");
          }
        }
        if (req.path != self->options_.path) {
          return answer(404, fmt::format("records are POSTed to {}", self->options_.path));
        }
        if (req.method != "POST") {
          res.set_header("Allow", "POST");
          return answer(405, "records are sent with POST");
        }
        if (too_large(req, res)) return R::Handled;
        return R::Unhandled;
      });
  svr.Post(".*", [self](const httplib::Request& req, httplib::Response& res) {
    int status = 500;
    std::string answer;
    self->Handle(req.body, &status, &answer);
    res.status = status;
    res.set_content(answer, "application/json");
  });
  svr.set_exception_handler([](const httplib::Request&, httplib::Response& res,
                               std::exception_ptr) { res.status = 500; });

  if (!svr.bind_to_port(o.host, o.port)) {
    const int err = errno;
    return Status::Unavailable(
        fmt::format("{}: {}", where, err ? std::strerror(err) : "the address cannot be bound"));
  }
  if (!svr.WidenBacklog()) {
    Log(LogLevel::kWarn,
        fmt::format("{}: could not widen the listen backlog: {}", o.node, std::strerror(errno)));
  }
  s->listener_ = std::thread([self] {
    const bool ok = self->server_->listen_after_bind();
    std::lock_guard<std::mutex> lock(self->mu_);
    if (!self->stopping_) {
      self->failed_ = ok ? "the server stopped" : "the server stopped accepting connections";
      self->stopping_ = true;
      for (auto& [first, r] : self->pending_) r->cv.notify_all();
      self->readable_.notify_all();
    }
  });
  // stop() only stops a server that is running: wait for it, so the destructor cannot miss it.
  const auto deadline = std::chrono::steady_clock::now() + kStartWait;
  while (!svr.is_running() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (!svr.is_running())
    return Status::Internal(fmt::format("{}: the server did not start", where));
  Log(LogLevel::kInfo, fmt::format("{}: listening on {}", o.node, s->origin_));
  return s;
}

PushServer::~PushServer() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    for (auto& [first, r] : pending_) r->cv.notify_all();
  }
  readable_.notify_all();
  if (listener_.joinable()) {
    server_->stop();
    listener_.join();  // after every handler thread has answered
  }
}

void PushServer::Handle(std::string body, int* status, std::string* answer) {
  auto r = std::make_shared<Request>();
  r->body = std::move(body);
  if (options_.split_json_lines) {
    r->records = SplitJsonRecords(r->body);
  } else {
    r->records.push_back(r->body);
  }
  if (r->records.empty()) {
    *status = 400;
    *answer = "{\"error\":\"the body holds no record\"}";
    return;
  }
  const size_t n = r->records.size();
  std::unique_lock<std::mutex> lock(mu_);
  if (stopping_) {
    *status = 503;
    *answer = "{\"error\":\"the pipeline is shutting down; send again later\"}";
    return;
  }
  r->first = next_position_;
  next_position_ += static_cast<int64_t>(n);
  queue_.push_back(r);
  pending_.emplace(r->first, r);
  queued_records_ += n;
  readable_.notify_one();

  const auto deadline = std::chrono::steady_clock::now() + options_.ack_timeout;
  r->cv.wait_until(lock, deadline, [&] { return r->done || stopping_; });
  if (!r->done) {
    if (r->read == 0) {
      // Never read: take it back, so a redelivery is not a duplicate of it.
      for (auto it = queue_.begin(); it != queue_.end(); ++it) {
        if (*it == r) {
          queue_.erase(it);
          queued_records_ -= n;
          break;
        }
      }
      pending_.erase(r->first);
    }
    *status = 503;
    *answer = stopping_ ? "{\"error\":\"the pipeline is shutting down; send again later\"}"
                        : fmt::format(
                              "{{\"error\":\"not acknowledged within {} ms (a sink is "
                              "unavailable or slow); send again later\"}}",
                              options_.ack_timeout.count());
    return;
  }
  if (r->rejected.empty()) {
    *status = 200;
    *answer = fmt::format("{{\"accepted\":{}}}", n);
    return;
  }
  *status = 400;
  std::string out = "{\"error\":";
  AppendJsonString(out, r->rejected.front().second);
  out += fmt::format(",\"accepted\":{},\"rejected\":[", n - r->rejected.size());
  for (size_t k = 0; k < r->rejected.size(); ++k) {
    if (k) out += ',';
    out += fmt::format("{{\"record\":{},\"reason\":", r->rejected[k].first);
    AppendJsonString(out, r->rejected[k].second);
    out += '}';
  }
  out += "]}";
  *answer = std::move(out);
}

Result<std::shared_ptr<RawRecords>> PushServer::Read(size_t max_records) {
  std::unique_lock<std::mutex> lock(mu_);
  readable_.wait_for(lock, kIdleWait, [&] { return queued_records_ > 0 || stopping_; });
  if (queued_records_ == 0) {
    if (!failed_.empty()) return Status::IoError(fmt::format("{}: {}", origin_, failed_));
    if (stopping_) return std::shared_ptr<RawRecords>();
    // An idle endpoint is not the end of input: an empty chunk, and the runner asks again.
    auto empty = std::make_shared<RawRecords>();
    empty->offsets.push_back(0);
    return empty;
  }
  // Gathering the records of concurrent requests into one batch amortises the graph's per-batch
  // work; the wait is short, as every sender is waiting for its answer.
  if (queued_records_ < max_records && options_.linger.count() > 0) {
    readable_.wait_for(lock, options_.linger,
                       [&] { return queued_records_ >= max_records || stopping_; });
  }
  auto out = std::make_shared<RawRecords>();
  out->origin = origin_;
  out->offsets.push_back(0);
  size_t bytes = 0, count = 0;
  for (const auto& r : queue_) {
    for (size_t k = r->read; k < r->records.size() && count < max_records; ++k, ++count)
      bytes += r->records[k].size();
    if (count >= max_records) break;
  }
  out->data.reserve(bytes + kJsonPadding);
  out->offsets.reserve(count + 1);
  out->positions.reserve(count);
  while (!queue_.empty() && out->count() < max_records) {
    Request& r = *queue_.front();
    while (r.read < r.records.size() && out->count() < max_records) {
      out->Add(r.records[r.read], r.first + static_cast<int64_t>(r.read));
      ++r.read;
      --queued_records_;
    }
    if (r.read == r.records.size()) queue_.pop_front();
  }
  return out;
}

void PushServer::Acknowledge(const RawRecords& raw) {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < raw.count(); ++i) {
    const int64_t p = raw.positions[i];
    auto it = pending_.upper_bound(p);
    if (it == pending_.begin()) continue;
    --it;
    Request& r = *it->second;
    const size_t k = static_cast<size_t>(p - r.first);
    if (k >= r.records.size()) continue;
    if (auto reason = rejections_->Take(p)) r.rejected.emplace_back(k, std::move(*reason));
    if (++r.acknowledged == r.records.size()) {
      r.done = true;
      r.cv.notify_all();
      pending_.erase(it);
    }
  }
}

}  // namespace sluice
