// Process-wide metrics in Prometheus's data model (counters, gauges, histograms with labels) and
// their text exposition format (0.0.4), served by `sluice run --metrics-addr`.
//
// Threading: every metric is updated lock-free from any thread (relaxed atomics); getting or
// removing a series and rendering take the registry's mutex. Get* returns a pointer that stays
// valid for the life of the process, even after Remove: nodes look their series up once, when
// they are built, and update them on the hot path without a lookup.
//
// Debian has no C++ Prometheus client library (prometheus-cpp is not packaged), so this is
// Sluice's own: the format is small and stable.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void Inc(double v = 1) { value_.fetch_add(v, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Inc(double v = 1) { value_.fetch_add(v, std::memory_order_relaxed); }
  void Dec(double v = 1) { value_.fetch_sub(v, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Observations counted per bucket of upper bounds (`le`), with their sum and count.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v, uint64_t times = 1);
  const std::vector<double>& bounds() const { return bounds_; }
  // Cumulative counts per bound, then +Inf (== count).
  std::vector<uint64_t> Cumulative() const;
  double Sum() const { return sum_.load(std::memory_order_relaxed); }
  uint64_t Count() const { return count_.load(std::memory_order_relaxed); }

  // Observations gathered without atomics (one batch's rows), added in one go.
  class Local {
   public:
    explicit Local(const Histogram& h) : bounds_(&h.bounds_), counts_(h.bounds_.size() + 1) {}
    void Observe(double v);
    bool empty() const { return count_ == 0; }

   private:
    friend class Histogram;
    const std::vector<double>* bounds_;
    std::vector<uint64_t> counts_;
    double sum_ = 0;
    uint64_t count_ = 0;
  };
  void Add(const Local& local);

 private:
  size_t BucketOf(double v) const;
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket, not cumulative; last is +Inf
  std::atomic<double> sum_{0};
  std::atomic<uint64_t> count_{0};
};

// Bucket bounds for durations in seconds: 100 µs to ~100 s, about three per decade.
std::vector<double> DurationBuckets();
// `count` bounds from `start`, each `factor` times the one before.
std::vector<double> ExponentialBuckets(double start, double factor, int count);

class MetricsRegistry {
 public:
  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // The series of family `name` with these labels, created on first use. A family's type and
  // help are fixed by its first series; asking for it as another type is a programming error.
  Counter* GetCounter(std::string_view name, std::string_view help, const MetricLabels& labels);
  Gauge* GetGauge(std::string_view name, std::string_view help, const MetricLabels& labels);
  Histogram* GetHistogram(std::string_view name, std::string_view help,
                          const MetricLabels& labels, const std::vector<double>& bounds);
  // Stops exposing a series (an info metric whose value moved to other labels). Its pointer
  // stays valid; a later Get* with the same labels starts it again from zero.
  void Remove(std::string_view name, const MetricLabels& labels);

  // A function run before each rendering, to refresh gauges from elsewhere (consumer lag, the
  // process's memory), until the returned handle is destroyed.
  class Collector {
   public:
    Collector() = default;
    Collector(MetricsRegistry* registry, uint64_t id) : registry_(registry), id_(id) {}
    Collector(Collector&& o) noexcept : registry_(o.registry_), id_(o.id_) { o.registry_ = {}; }
    Collector& operator=(Collector&& o) noexcept;
    ~Collector();

   private:
    MetricsRegistry* registry_ = nullptr;
    uint64_t id_ = 0;
  };
  [[nodiscard]] Collector AddCollector(std::function<void()> refresh);

  // Runs the collectors, then writes every family in the text exposition format, families
  // sorted by name and series by labels.
  std::string Render();

 private:
  enum class Kind { kCounter, kGauge, kHistogram };
  struct Series {
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
  };
  struct Family {
    Kind kind;
    std::string help;
    std::map<std::string, std::unique_ptr<Series>> series;  // by rendered labels
  };
  Series* GetSeries(std::string_view name, std::string_view help, Kind kind,
                    const MetricLabels& labels, const std::vector<double>* bounds);

  std::mutex mu_;
  std::map<std::string, Family, std::less<>> families_;
  std::vector<std::unique_ptr<Series>> removed_;  // kept so pointers handed out stay valid
  std::mutex collectors_mu_;
  std::map<uint64_t, std::function<void()>> collectors_;
  uint64_t next_collector_ = 1;
};

// The process's registry.
MetricsRegistry& Metrics();

// `{a="x",b="y"}` with Prometheus's escaping of \, " and newlines; empty for no labels.
std::string RenderLabels(const MetricLabels& labels);

// Registers the standard process metrics (process_cpu_seconds_total,
// process_resident_memory_bytes, process_virtual_memory_bytes, process_start_time_seconds,
// process_open_fds) and sluice_build_info, read from /proc at each rendering.
[[nodiscard]] MetricsRegistry::Collector RegisterProcessMetrics(MetricsRegistry& registry);

}  // namespace sluice
