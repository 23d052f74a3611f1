#include "engine/metrics_server.h"

#include <cerrno>
#include <chrono>
#include <cstring>

#include <fmt/format.h>
#include <httplib.h>

#include "engine/log.h"

namespace sluice {

bool SplitHostPort(const std::string& address, std::string* host, int* port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return false;
  std::string h = address.substr(0, colon);
  const std::string p = address.substr(colon + 1);
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos)
    return false;
  const int n = std::stoi(p);
  if (n > 65535) return false;
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (h.find(':') != std::string::npos && address.front() != '[') return false;  // bare IPv6
  *host = h.empty() ? "0.0.0.0" : h;
  *port = n;
  return true;
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& address,
                                                            MetricsRegistry& registry,
                                                            const Readiness& readiness) {
  std::string host;
  int port = 0;
  if (!SplitHostPort(address, &host, &port)) {
    return Status::InvalidConfig(
        fmt::format("--metrics-addr '{}': expected HOST:PORT, e.g. 127.0.0.1:9464", address));
  }
  std::unique_ptr<MetricsServer> s(new MetricsServer());
  s->server_ = std::make_unique<httplib::Server>();
  httplib::Server& svr = *s->server_;
  // Scrapes are rare and small: two threads are plenty, and keep the pipeline's cores free.
  svr.new_task_queue = [] { return new httplib::ThreadPool(2); };
  svr.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  MetricsRegistry* reg = &registry;
  svr.Get("/metrics", [reg](const httplib::Request&, httplib::Response& res) {
    res.set_content(reg->Render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  svr.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  const Readiness* ready = &readiness;
  svr.Get("/readyz", [ready](const httplib::Request&, httplib::Response& res) {
    // 503 while the pipeline is being built (connecting, loading models), draining or done.
    res.status = ready->Ready() ? 200 : 503;
    res.set_content(std::string(ready->Describe()) + "\n", "text/plain");
  });
  svr.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("sluice: /metrics /healthz /readyz\n", "text/plain");
  });
  int bound = port;
  if (port == 0) {
    bound = svr.bind_to_any_port(host);
    if (bound < 0) bound = 0;
  } else if (!svr.bind_to_port(host, port)) {
    bound = 0;
  }
  if (bound == 0) {
    const int err = errno;
    return Status::Unavailable(fmt::format("--metrics-addr {}: cannot listen: {}", address,
                                           err ? std::strerror(err) : "cannot bind"));
  }
  s->address_ = host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, bound)
                                                     : fmt::format("{}:{}", host, bound);
  s->process_metrics_ = RegisterProcessMetrics(registry);
  s->thread_ = std::thread([srv = s->server_.get()] { srv->listen_after_bind(); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!svr.is_running() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (!svr.is_running()) return Status::Internal("the metrics server did not start");
  Log(LogLevel::kInfo, fmt::format("metrics on http://{}/metrics", s->address_));
  return s;
}

MetricsServer::~MetricsServer() {
  if (thread_.joinable()) {
    server_->stop();
    thread_.join();
  }
}

}  // namespace sluice
