// The HTTP endpoint of `sluice run --metrics-addr HOST:PORT`: /metrics (Prometheus text format),
// /healthz (the process answers) and /readyz (the pipeline runs: built, not draining). Runs on
// its own threads; never touches the pipeline's.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "engine/metrics.h"
#include "engine/runner.h"
#include "engine/status.h"

namespace httplib {
class Server;
}

namespace sluice {

class MetricsServer {
 public:
  // Binds `address` (`host:port`, `[v6]:port` or `:port` for every interface) and serves in the
  // background. An address that cannot be bound is an error here, not later.
  static Result<std::unique_ptr<MetricsServer>> Start(const std::string& address,
                                                      MetricsRegistry& registry,
                                                      const Readiness& readiness);
  ~MetricsServer();
  // The address actually bound (the port chosen when :0 was asked for).
  const std::string& address() const { return address_; }

 private:
  MetricsServer() = default;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::string address_;
  MetricsRegistry::Collector process_metrics_;
};

// Splits `host:port` ("[::1]:9464", ":9464" meaning 0.0.0.0); false when malformed.
bool SplitHostPort(const std::string& address, std::string* host, int* port);

}  // namespace sluice
