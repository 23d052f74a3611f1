// dev-kafka: a development Kafka broker for local runs and tests, built on librdkafka's mock
// cluster (rdkafka_mock.h). It speaks the real wire protocol on loopback ports, so any client
// (Sluice, kcat, kafka-python) can use it. It is not a production broker: each partition keeps
// only its newest 5 MiB (and 100,000 message sets) and silently drops older messages, so this
// command watches every partition's low watermark and warns as soon as it moves. `--fault`
// schedules the mock's fault injection (brokers down and up, request errors, leader moves,
// latency), so pipelines can be tried against a misbehaving cluster on one machine.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "engine/log.h"
#include "operators/builtin.h"
#include "operators/kafka/client.h"
#include "operators/kafka/dev_kafka.h"

namespace sluice {
namespace {

struct TopicSpec {
  std::string name;
  int partitions = 1;
};

struct DevKafkaOptions {
  int brokers = 1;
  std::vector<std::string> topics;  // NAME or NAME:PARTITIONS
  std::vector<std::string> faults;  // "SECONDS ACTION ARGS..."
  std::string bootstrap_file;
  int watch_ms = 1000;
  int run_seconds = 0;  // 0: until a signal
};

std::atomic<bool> g_dev_stop{false};
void OnDevSignal(int) {
  g_dev_stop = true;
}

Result<TopicSpec> ParseTopic(const std::string& text) {
  TopicSpec t;
  size_t colon = text.rfind(':');
  t.name = text.substr(0, colon);
  if (colon != std::string::npos) {
    try {
      t.partitions = std::stoi(text.substr(colon + 1));
    } catch (...) {
      t.partitions = 0;
    }
  }
  if (t.name.empty() || t.partitions < 1 || t.partitions > 10000) {
    return Status::InvalidConfig(fmt::format(
        "--topic '{}': expected NAME or NAME:PARTITIONS (1 to 10000 partitions)", text));
  }
  return t;
}

// A fault to inject `at` after start.
struct Fault {
  std::chrono::milliseconds at{0};
  std::string text;
  std::function<void(rd_kafka_mock_cluster_t*)> apply;
};

// Kafka protocol API keys the faults can name.
const std::map<std::string, int16_t>& ApiKeys() {
  static const std::map<std::string, int16_t> kKeys = {
      {"Produce", 0},         {"Fetch", 1},           {"ListOffsets", 2},
      {"Metadata", 3},        {"OffsetCommit", 8},    {"OffsetFetch", 9},
      {"FindCoordinator", 10}, {"JoinGroup", 11},     {"Heartbeat", 12},
      {"LeaveGroup", 13},     {"SyncGroup", 14},      {"InitProducerId", 22},
      {"AddPartitionsToTxn", 24}, {"AddOffsetsToTxn", 25}, {"EndTxn", 26},
      {"TxnOffsetCommit", 28},
  };
  return kKeys;
}

std::optional<rd_kafka_resp_err_t> ErrorByName(const std::string& name) {
  const rd_kafka_err_desc* descs = nullptr;
  size_t n = 0;
  rd_kafka_get_err_descs(&descs, &n);
  for (size_t i = 0; i < n; ++i) {
    if (descs[i].name && name == descs[i].name) return descs[i].code;
  }
  return std::nullopt;
}

Result<Fault> ParseFault(const std::string& text, int brokers) {
  std::istringstream in(text);
  double seconds = -1;
  std::string action;
  in >> seconds >> action;
  std::vector<std::string> args;
  for (std::string a; in >> a;) args.push_back(a);
  auto bad = [&](const std::string& why) {
    return Status::InvalidConfig(fmt::format(
        "--fault '{}': {}. Expected SECONDS ACTION ARGS: broker-down ID, broker-up ID, "
        "leader TOPIC PARTITION ID, rtt ID MS, request-errors API COUNT ERROR (e.g. "
        "'2 request-errors Fetch 5 NOT_LEADER_FOR_PARTITION')",
        text, why));
  };
  if (in.fail() && !in.eof()) return bad("cannot read it");
  if (seconds < 0) return bad("the time must be a number of seconds, 0 or more");
  auto int_arg = [&](size_t i, int lo, int hi, int* out) {
    try {
      size_t used = 0;
      *out = std::stoi(args.at(i), &used);
      return used == args[i].size() && *out >= lo && *out <= hi;
    } catch (...) {
      return false;
    }
  };
  Fault f;
  f.at = std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  f.text = text;
  int id = 0, n = 0;
  if ((action == "broker-down" || action == "broker-up") && args.size() == 1) {
    if (!int_arg(0, 1, brokers, &id)) return bad(fmt::format("no broker {}", args[0]));
    const bool down = action == "broker-down";
    f.apply = [id, down](rd_kafka_mock_cluster_t* c) {
      if (down) rd_kafka_mock_broker_set_down(c, id);
      else rd_kafka_mock_broker_set_up(c, id);
    };
  } else if (action == "leader" && args.size() == 3) {
    int partition = 0;
    if (!int_arg(1, 0, 10000, &partition) || !int_arg(2, 1, brokers, &id)) {
      return bad("expected leader TOPIC PARTITION BROKER");
    }
    std::string topic = args[0];
    f.apply = [topic, partition, id](rd_kafka_mock_cluster_t* c) {
      rd_kafka_mock_partition_set_leader(c, topic.c_str(), partition, id);
    };
  } else if (action == "rtt" && args.size() == 2) {
    if (!int_arg(0, 1, brokers, &id) || !int_arg(1, 0, 600000, &n)) {
      return bad("expected rtt BROKER MILLISECONDS");
    }
    f.apply = [id, n](rd_kafka_mock_cluster_t* c) { rd_kafka_mock_broker_set_rtt(c, id, n); };
  } else if (action == "request-errors" && args.size() == 3) {
    auto api = ApiKeys().find(args[0]);
    if (api == ApiKeys().end()) return bad(fmt::format("unknown API '{}'", args[0]));
    if (!int_arg(1, 1, 100000, &n)) return bad("the count must be 1 to 100000");
    auto err = ErrorByName(args[2]);
    if (!err) return bad(fmt::format("unknown error '{}'", args[2]));
    const int16_t key = api->second;
    const rd_kafka_resp_err_t code = *err;
    f.apply = [key, n, code](rd_kafka_mock_cluster_t* c) {
      std::vector<rd_kafka_resp_err_t> errors(static_cast<size_t>(n), code);
      rd_kafka_mock_push_request_errors_array(c, key, errors.size(), errors.data());
    };
  } else {
    return bad(fmt::format("unknown action '{}' or wrong number of arguments", action));
  }
  return f;
}

// The ports of a bootstrap list "host:port,host:port".
std::vector<int> BootstrapPorts(const std::string& bootstrap) {
  std::vector<int> ports;
  std::stringstream ss(bootstrap);
  for (std::string item; std::getline(ss, item, ',');) {
    const auto colon = item.rfind(':');
    if (colon != std::string::npos) ports.push_back(std::atoi(item.c_str() + colon + 1));
  }
  return ports;
}

int RunDevKafka(const DevKafkaOptions& opts) {
  std::vector<Fault> faults;
  for (const auto& text : opts.faults) {
    auto f = ParseFault(text, opts.brokers);
    if (!f.ok()) {
      Log(LogLevel::kError, f.status().message());
      return 2;
    }
    faults.push_back(std::move(*f));
  }
  std::sort(faults.begin(), faults.end(),
            [](const Fault& a, const Fault& b) { return a.at < b.at; });
  size_t next_fault = 0;
  std::vector<TopicSpec> topics;
  for (const auto& t : opts.topics) {
    auto parsed = ParseTopic(t);
    if (!parsed.ok()) {
      Log(LogLevel::kError, parsed.status().message());
      return 2;
    }
    topics.push_back(*parsed);
  }
  // The mock cluster needs a handle for its bookkeeping; it is never used to send anything.
  auto owner = NewKafkaClient(RD_KAFKA_PRODUCER, {{"log_level", "3"}});
  if (!owner.ok()) {
    Log(LogLevel::kError, owner.status().message());
    return 1;
  }
  rd_kafka_mock_cluster_t* cluster = rd_kafka_mock_cluster_new(*owner, opts.brokers);
  if (!cluster) {
    Log(LogLevel::kError, "dev-kafka: could not start the mock cluster");
    rd_kafka_destroy(*owner);
    return 1;
  }
  // There is no CreateTopics API in the mock cluster: topics are made here, up front.
  for (const auto& t : topics) {
    rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(cluster, t.name.c_str(), t.partitions,
                                                       std::min(opts.brokers, 3));
    if (e) {
      Log(LogLevel::kError, fmt::format("dev-kafka: topic '{}': {}", t.name, rd_kafka_err2str(e)));
    }
  }
  const std::string bootstrap = rd_kafka_mock_cluster_bootstraps(cluster);
  const std::vector<int> ports = BootstrapPorts(bootstrap);
  if (SetNoDelayOnListeners(ports) != static_cast<int>(ports.size())) {
    Log(LogLevel::kWarn, "dev-kafka: could not set TCP_NODELAY on every broker's port; "
                         "producers that wait for each batch may be slowed by delayed ACKs");
  }
  std::printf("bootstrap: %s\n", bootstrap.c_str());
  std::fflush(stdout);
  if (!opts.bootstrap_file.empty()) {
    // Written whole and renamed, so a reader never sees half an address.
    std::string tmp = opts.bootstrap_file + ".tmp";
    std::ofstream(tmp) << bootstrap << "\n";
    std::rename(tmp.c_str(), opts.bootstrap_file.c_str());
  }
  Log(LogLevel::kInfo,
      fmt::format("dev-kafka: {} broker(s) at {} — for development and tests only: each "
                  "partition keeps only its newest 5 MiB",
                  opts.brokers, bootstrap));

  std::signal(SIGINT, OnDevSignal);
  std::signal(SIGTERM, OnDevSignal);
  // A plain client of the cluster reads the watermarks, as any consumer would, on a thread of
  // its own: a query to a broker that a fault took down can take seconds, and must not delay
  // the next fault or the stop.
  auto watcher = NewKafkaClient(RD_KAFKA_CONSUMER, {{"bootstrap.servers", bootstrap},
                                                    {"group.id", "sluice-dev-kafka-watch"},
                                                    {"socket.timeout.ms", "2000"},
                                                    // a broker the faults took down is no news
                                                    {"log_level", "0"}});
  std::atomic<bool> done{false};
  std::thread watch_thread([&] {
    if (!watcher.ok()) return;
    std::map<std::pair<std::string, int>, int64_t> low_marks;
    while (!done.load()) {
      for (const auto& t : topics) {
        for (int p = 0; p < t.partitions && !done.load(); ++p) {
          int64_t low = 0, high = 0;
          if (rd_kafka_query_watermark_offsets(*watcher, t.name.c_str(), p, &low, &high, 1000)) {
            continue;
          }
          int64_t& seen = low_marks[{t.name, p}];
          if (low > seen) {
            Log(LogLevel::kWarn,
                fmt::format("dev-kafka: topic '{}' partition {} dropped {} message(s) (low "
                            "watermark {} -> {}, high {}): the development broker keeps only "
                            "the newest 5 MiB per partition; consumers that had not read them "
                            "lost them here, not in Sluice",
                            t.name, p, low - seen, seen, low, high),
                {{"topic", t.name},
                 {"partition", static_cast<uint64_t>(p)},
                 {"dropped", static_cast<uint64_t>(low - seen)},
                 {"low_watermark", static_cast<uint64_t>(low)}});
            seen = low;
          }
        }
      }
      for (int slept = 0; slept < opts.watch_ms && !done.load(); slept += 50) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
  });
  const auto start = std::chrono::steady_clock::now();
  while (!g_dev_stop.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const auto now = std::chrono::steady_clock::now();
    if (opts.run_seconds > 0 && now - start > std::chrono::seconds(opts.run_seconds)) break;
    while (next_fault < faults.size() && now - start >= faults[next_fault].at) {
      Log(LogLevel::kWarn, fmt::format("dev-kafka: injecting fault: {}", faults[next_fault].text));
      faults[next_fault].apply(cluster);
      SetNoDelayOnListeners(ports);  // a broker brought back up listens on a new socket
      ++next_fault;
    }
  }
  done = true;
  watch_thread.join();
  if (watcher.ok()) rd_kafka_destroy(*watcher);
  rd_kafka_mock_cluster_destroy(cluster);
  rd_kafka_destroy(*owner);
  Log(LogLevel::kInfo, "dev-kafka: stopped");
  return 0;
}

}  // namespace

// The mock cluster leaves Nagle's algorithm on, so a response written while the client had not
// yet acknowledged the previous one waited for the client's delayed ACK (40 ms on Linux): a
// producer that waits for each batch's delivery reports was held to about one batch per 45 ms.
// Real brokers set TCP_NODELAY.
int SetNoDelayOnListeners(const std::vector<int>& ports) {
  int set = 0;
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return 0;
  while (dirent* e = readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || fd == dirfd(dir)) continue;
    struct stat st;
    if (fstat(static_cast<int>(fd), &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    int listening = 0;
    socklen_t len = sizeof listening;
    if (getsockopt(static_cast<int>(fd), SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 ||
        !listening) {
      continue;
    }
    sockaddr_storage addr{};
    len = sizeof addr;
    if (getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&addr), &len) != 0) continue;
    int port = -1;
    if (addr.ss_family == AF_INET) port = ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
    if (addr.ss_family == AF_INET6) port = ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
    if (std::find(ports.begin(), ports.end(), port) == ports.end()) continue;
    const int one = 1;
    if (setsockopt(static_cast<int>(fd), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0) ++set;
  }
  closedir(dir);
  return set;
}

void RegisterDevKafka(Registry& registry) {
  CommandSpec command;
  command.name = "dev-kafka";
  command.summary =
      "run a development Kafka broker on loopback (librdkafka's mock cluster; not for "
      "production)";
  command.setup = [](CLI::App* app) -> std::function<int()> {
    auto opts = std::make_shared<DevKafkaOptions>();
    app->add_option("--brokers", opts->brokers, "number of brokers")
        ->check(CLI::Range(1, 16))
        ->capture_default_str();
    app->add_option("-t,--topic", opts->topics,
                    "topic to create, NAME or NAME:PARTITIONS (repeatable)");
    app->add_option("--bootstrap-file", opts->bootstrap_file,
                    "also write the bootstrap address to this file");
    app->add_option("--watch-ms", opts->watch_ms,
                    "how often to check partitions for dropped messages")
        ->check(CLI::Range(50, 60000))
        ->capture_default_str();
    app->add_option("--fault", opts->faults,
                    "inject a fault at a time after start (repeatable): 'SECONDS ACTION ARGS', "
                    "ACTION one of broker-down ID, broker-up ID, leader TOPIC PARTITION ID, "
                    "rtt ID MS, request-errors API COUNT ERROR");
    app->add_option("--run-seconds", opts->run_seconds,
                    "stop by itself after this long (0: on "
                    "SIGINT/SIGTERM only)")
        ->check(CLI::Range(0, 86400));
    return [opts] { return RunDevKafka(*opts); };
  };
  registry.AddCommand(std::move(command));
}

}  // namespace sluice
