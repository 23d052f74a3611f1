// dev-kafka: a development Kafka broker for local runs and tests, built on librdkafka's mock
// cluster (rdkafka_mock.h). It speaks the real wire protocol on loopback ports, so any client
// (Sluice, kcat, kafka-python) can use it. It is not a production broker: each partition keeps
// only its newest 5 MiB (and 100,000 message sets) and silently drops older messages, so this
// command watches every partition's low watermark and warns as soon as it moves.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>
#include <thread>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "engine/log.h"
#include "operators/builtin.h"
#include "operators/kafka/client.h"

namespace sluice {
namespace {

struct TopicSpec {
  std::string name;
  int partitions = 1;
};

struct DevKafkaOptions {
  int brokers = 1;
  std::vector<std::string> topics;  // NAME or NAME:PARTITIONS
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

int RunDevKafka(const DevKafkaOptions& opts) {
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
    rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(cluster, t.name.c_str(), t.partitions, 1);
    if (e) {
      Log(LogLevel::kError, fmt::format("dev-kafka: topic '{}': {}", t.name, rd_kafka_err2str(e)));
    }
  }
  const std::string bootstrap = rd_kafka_mock_cluster_bootstraps(cluster);
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
  // A plain client of the cluster reads the watermarks, as any consumer would.
  auto watcher = NewKafkaClient(RD_KAFKA_CONSUMER, {{"bootstrap.servers", bootstrap},
                                                    {"group.id", "sluice-dev-kafka-watch"},
                                                    {"log_level", "3"}});
  std::map<std::pair<std::string, int>, int64_t> low_marks;
  const auto start = std::chrono::steady_clock::now();
  while (!g_dev_stop.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(opts.watch_ms));
    if (opts.run_seconds > 0 &&
        std::chrono::steady_clock::now() - start > std::chrono::seconds(opts.run_seconds)) {
      break;
    }
    if (!watcher.ok()) continue;
    for (const auto& t : topics) {
      for (int p = 0; p < t.partitions && !g_dev_stop.load(); ++p) {
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
  }
  if (watcher.ok()) rd_kafka_destroy(*watcher);
  rd_kafka_mock_cluster_destroy(cluster);
  rd_kafka_destroy(*owner);
  Log(LogLevel::kInfo, "dev-kafka: stopped");
  return 0;
}

}  // namespace

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
    app->add_option("--run-seconds", opts->run_seconds,
                    "stop by itself after this long (0: on "
                    "SIGINT/SIGTERM only)")
        ->check(CLI::Range(0, 86400));
    return [opts] { return RunDevKafka(*opts); };
  };
  registry.AddCommand(std::move(command));
}

}  // namespace sluice
