#include "engine/metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace sluice {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      counts_(std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1)) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

size_t Histogram::BucketOf(double v) const {
  // Buckets are upper bounds, inclusive: the first bound >= v.
  return static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) -
                             bounds_.begin());
}

void Histogram::Observe(double v, uint64_t times) {
  if (times == 0) return;
  counts_[BucketOf(v)].fetch_add(times, std::memory_order_relaxed);
  sum_.fetch_add(v * static_cast<double>(times), std::memory_order_relaxed);
  count_.fetch_add(times, std::memory_order_relaxed);
}

void Histogram::Local::Observe(double v) {
  ++counts_[static_cast<size_t>(std::lower_bound(bounds_->begin(), bounds_->end(), v) -
                                bounds_->begin())];
  sum_ += v;
  ++count_;
}

void Histogram::Add(const Local& local) {
  if (local.count_ == 0) return;
  for (size_t i = 0; i < local.counts_.size(); ++i) {
    if (local.counts_[i]) counts_[i].fetch_add(local.counts_[i], std::memory_order_relaxed);
  }
  sum_.fetch_add(local.sum_, std::memory_order_relaxed);
  count_.fetch_add(local.count_, std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::Cumulative() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    total += counts_[i].load(std::memory_order_relaxed);
    out[i] = total;
  }
  return out;
}

std::vector<double> DurationBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
          0.1,    0.25,    0.5,    1,     2.5,    5,     10,   25,    50,   100};
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  std::vector<double> out;
  for (int i = 0; i < count; ++i, start *= factor) out.push_back(start);
  return out;
}

namespace {

void AppendEscaped(std::string& out, std::string_view s, bool quote_escapes) {
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote_escapes) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{}", static_cast<int64_t>(v));
  return fmt::format("{}", v);
}

// Labels plus one more (`le` of a histogram bucket), rendered.
std::string WithLabel(const std::string& rendered, std::string_view key, std::string_view value) {
  std::string extra = fmt::format("{}=\"{}\"", key, value);
  if (rendered.empty()) return "{" + extra + "}";
  return rendered.substr(0, rendered.size() - 1) + "," + extra + "}";
}

const char* KindName(int kind) {
  switch (kind) {
    case 0: return "counter";
    case 1: return "gauge";
    default: return "histogram";
  }
}

}  // namespace

std::string RenderLabels(const MetricLabels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) out += ',';
    out += labels[i].first;
    out += "=\"";
    AppendEscaped(out, labels[i].second, true);
    out += '"';
  }
  return out + "}";
}

MetricsRegistry::Series* MetricsRegistry::GetSeries(std::string_view name, std::string_view help,
                                                    Kind kind, const MetricLabels& labels,
                                                    const std::vector<double>* bounds) {
  std::lock_guard<std::mutex> lock(mu_);
  auto fam = families_.find(name);
  if (fam == families_.end()) {
    fam = families_.emplace(std::string(name), Family{kind, std::string(help), {}}).first;
  }
  Family& f = fam->second;
  const std::string key = RenderLabels(labels);
  auto it = f.series.find(key);
  if (it != f.series.end()) return it->second.get();
  auto s = std::make_unique<Series>();
  switch (f.kind) {
    case Kind::kCounter: s->counter = std::make_unique<Counter>(); break;
    case Kind::kGauge: s->gauge = std::make_unique<Gauge>(); break;
    case Kind::kHistogram:
      s->histogram = std::make_unique<Histogram>(bounds ? *bounds : DurationBuckets());
      break;
  }
  return f.series.emplace(key, std::move(s)).first->second.get();
}

Counter* MetricsRegistry::GetCounter(std::string_view name, std::string_view help,
                                     const MetricLabels& labels) {
  Series* s = GetSeries(name, help, Kind::kCounter, labels, nullptr);
  return s->counter.get();
}

Gauge* MetricsRegistry::GetGauge(std::string_view name, std::string_view help,
                                 const MetricLabels& labels) {
  Series* s = GetSeries(name, help, Kind::kGauge, labels, nullptr);
  return s->gauge.get();
}

Histogram* MetricsRegistry::GetHistogram(std::string_view name, std::string_view help,
                                         const MetricLabels& labels,
                                         const std::vector<double>& bounds) {
  Series* s = GetSeries(name, help, Kind::kHistogram, labels, &bounds);
  return s->histogram.get();
}

void MetricsRegistry::Remove(std::string_view name, const MetricLabels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  auto fam = families_.find(name);
  if (fam == families_.end()) return;
  auto it = fam->second.series.find(RenderLabels(labels));
  if (it == fam->second.series.end()) return;
  removed_.push_back(std::move(it->second));
  fam->second.series.erase(it);
}

MetricsRegistry::Collector& MetricsRegistry::Collector::operator=(Collector&& o) noexcept {
  if (this != &o) {
    this->~Collector();
    registry_ = o.registry_;
    id_ = o.id_;
    o.registry_ = nullptr;
  }
  return *this;
}

MetricsRegistry::Collector::~Collector() {
  if (!registry_) return;
  std::lock_guard<std::mutex> lock(registry_->collectors_mu_);
  registry_->collectors_.erase(id_);
  registry_ = nullptr;
}

MetricsRegistry::Collector MetricsRegistry::AddCollector(std::function<void()> refresh) {
  std::lock_guard<std::mutex> lock(collectors_mu_);
  const uint64_t id = next_collector_++;
  collectors_.emplace(id, std::move(refresh));
  return Collector(this, id);
}

std::string MetricsRegistry::Render() {
  {
    // Held while collectors run, so a collector's owner cannot go away under it: its
    // destructor waits for the rendering to end.
    std::lock_guard<std::mutex> lock(collectors_mu_);
    for (auto& [id, refresh] : collectors_) refresh();
  }
  std::string out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [name, f] : families_) {
    if (f.series.empty()) continue;
    out += "# HELP " + name + " ";
    AppendEscaped(out, f.help, false);
    out += "\n# TYPE " + name + " " + KindName(static_cast<int>(f.kind)) + "\n";
    for (const auto& [labels, s] : f.series) {
      switch (f.kind) {
        case Kind::kCounter:
          out += name + labels + " " + FormatValue(s->counter->Value()) + "\n";
          break;
        case Kind::kGauge:
          out += name + labels + " " + FormatValue(s->gauge->Value()) + "\n";
          break;
        case Kind::kHistogram: {
          const Histogram& h = *s->histogram;
          std::vector<uint64_t> cum = h.Cumulative();
          for (size_t i = 0; i < h.bounds().size(); ++i) {
            out += name + "_bucket" + WithLabel(labels, "le", FormatValue(h.bounds()[i])) + " " +
                   std::to_string(cum[i]) + "\n";
          }
          out += name + "_bucket" + WithLabel(labels, "le", "+Inf") + " " +
                 std::to_string(cum.back()) + "\n";
          out += name + "_sum" + labels + " " + FormatValue(h.Sum()) + "\n";
          // The count as the buckets saw it, so _count always equals the +Inf bucket.
          out += name + "_count" + labels + " " + std::to_string(cum.back()) + "\n";
          break;
        }
      }
    }
  }
  return out;
}

MetricsRegistry& Metrics() {
  static MetricsRegistry* registry = new MetricsRegistry();  // never destroyed: used at exit
  return *registry;
}

MetricsRegistry::Collector RegisterProcessMetrics(MetricsRegistry& registry) {
  registry.GetGauge("sluice_build_info", "Sluice's version; always 1",
                    {{"version", SLUICE_VERSION}})
      ->Set(1);
  Counter* cpu = registry.GetCounter("process_cpu_seconds_total",
                                     "user and system CPU time of the process, in seconds", {});
  Gauge* rss = registry.GetGauge("process_resident_memory_bytes", "resident memory, in bytes", {});
  Gauge* vms = registry.GetGauge("process_virtual_memory_bytes", "virtual memory, in bytes", {});
  Gauge* start = registry.GetGauge("process_start_time_seconds",
                                   "start time of the process since the Unix epoch, in seconds", {});
  Gauge* fds = registry.GetGauge("process_open_fds", "open file descriptors", {});
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  double boot_time = 0;
  {
    std::ifstream stat("/proc/stat");
    for (std::string line; std::getline(stat, line);) {
      if (line.rfind("btime ", 0) == 0) boot_time = std::stod(line.substr(6));
    }
  }
  return registry.AddCollector([=] {
    std::ifstream in("/proc/self/stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // Fields after the command name, which is in parentheses and may hold spaces.
    const size_t close = text.rfind(')');
    if (close == std::string::npos) return;
    std::istringstream fields(text.substr(close + 2));
    std::vector<std::string> f;
    for (std::string s; fields >> s;) f.push_back(s);
    // f[0] is field 3 (state): utime is field 14, stime 15, starttime 22, vsize 23, rss 24.
    if (f.size() < 22) return;
    const double cpu_now = (std::stod(f[11]) + std::stod(f[12])) / ticks;
    cpu->Inc(std::max(0.0, cpu_now - cpu->Value()));
    start->Set(boot_time + std::stod(f[19]) / ticks);
    vms->Set(std::stod(f[20]));
    rss->Set(std::stod(f[21]) * page);
    int open = 0;
    if (DIR* d = opendir("/proc/self/fd")) {
      while (dirent* e = readdir(d)) {
        if (e->d_name[0] != '.') ++open;
      }
      closedir(d);
      --open;  // the directory stream itself
    }
    fds->Set(open);
  });
}

}  // namespace sluice
