// Backpressure from a slow sink: `sluice run` consumes a Kafka backlog much larger than its
// memory bound while its stdout sink writes into a pipe that the test drains slowly. The sink
// blocks on the full pipe, the source stops taking records, the consumer group's committed
// position follows what the sink wrote, and the process's resident memory stays flat and well
// under half the backlog's size. Then the reader speeds up, every record arrives exactly once, and
// the run stops on SIGTERM with exit 0.
//
// Everything uses the defaults (settings.batch_size 1024, settings.max_in_flight 8, librdkafka's
// prefetch and fetch sizes; only the session timeout is shortened, as in the other Kafka tests):
// what is measured is what an operator gets.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "operators/kafka/client.h"
#include "tests/integration/process.h"

extern char** environ;

using namespace sluice::testing;
using Clock = std::chrono::steady_clock;

namespace {

// A child process started with execve (no shell, so its pid is the program's own, whose memory
// is measured). It is killed with SIGKILL when the test does not stop it itself, and also when
// the test process dies (PR_SET_PDEATHSIG).
class Child {
 public:
  // stdout goes to `stdout_fd` when it is not -1, otherwise to the file `stdout_path`; stderr
  // goes to the file `stderr_path`; `env` is added to the test's environment.
  Child(const std::vector<std::string>& argv, const std::vector<std::string>& env, int stdout_fd,
        const std::string& stdout_path, const std::string& stderr_path) {
    // Everything is prepared before fork: the child only calls async-signal-safe functions.
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    std::vector<char*> envp;
    for (char** e = environ; *e; ++e) envp.push_back(*e);
    for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    const int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    const int out = stdout_fd != -1
                        ? stdout_fd
                        : open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const int err = open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      if (in < 0 || out < 0 || err < 0) _exit(127);
      dup2(in, 0);
      dup2(out, 1);
      dup2(err, 2);
      execve(args[0], args.data(), envp.data());
      _exit(127);
    }
    if (in >= 0) close(in);
    if (stdout_fd == -1 && out >= 0) close(out);
    if (err >= 0) close(err);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() { Kill(); }

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }

  // Waits up to `limit` for the child to exit; its exit code (128 + signal when killed), or -1
  // when it is still running.
  int Wait(Clock::duration limit) {
    const auto deadline = Clock::now() + limit;
    while (pid_ > 0) {
      int status = 0;
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      if (r < 0 || Clock::now() > deadline) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }
  void Signal(int sig) {
    if (pid_ > 0) kill(pid_, sig);
  }
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

// Resident memory of a process in KiB (VmRSS), or -1 when it cannot be read.
long RssKib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// The group's committed offsets summed over the topic's partitions (each partition starts at
// offset 0, so this is the number of records committed), or -1 on error. Asking for committed
// offsets (OffsetFetch) does not join the group.
int64_t CommittedRecords(rd_kafka_t* rk, const std::string& topic, int partitions) {
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p) rd_kafka_topic_partition_list_add(list, topic.c_str(), p);
  int64_t total = -1;
  if (rd_kafka_committed(rk, list, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    total = 0;
    for (int i = 0; i < list->cnt; ++i) total += std::max<int64_t>(0, list->elems[i].offset);
  }
  rd_kafka_topic_partition_list_destroy(list);
  return total;
}

// Reads `{"id":N}` lines as they come and counts each id.
class IdLines {
 public:
  explicit IdLines(size_t n) : seen_(n + 1, 0) {}
  void Feed(const char* data, size_t len) {
    pending_.append(data, len);
    size_t start = 0;
    for (size_t nl; (nl = pending_.find('\n', start)) != std::string::npos; start = nl + 1) {
      Line(std::string_view(pending_).substr(start, nl - start));
    }
    pending_.erase(0, start);
  }
  uint64_t lines() const { return lines_; }
  uint64_t bad() const { return bad_; }
  uint64_t missing() const { return std::count(seen_.begin() + 1, seen_.end(), 0); }
  uint64_t repeated() const {
    uint64_t r = 0;
    for (size_t i = 1; i < seen_.size(); ++i) r += seen_[i] > 1 ? seen_[i] - 1 : 0;
    return r;
  }
  const std::string& first_bad() const { return first_bad_; }

 private:
  void Line(std::string_view line) {
    ++lines_;
    constexpr std::string_view kPrefix = "{\"id\":";
    uint64_t id = 0;
    bool ok = line.size() > kPrefix.size() + 1 && line.substr(0, kPrefix.size()) == kPrefix &&
              line.back() == '}';
    if (ok) {
      auto [end, ec] =
          std::from_chars(line.data() + kPrefix.size(), line.data() + line.size() - 1, id);
      ok =
          ec == std::errc() && end == line.data() + line.size() - 1 && id >= 1 && id < seen_.size();
    }
    if (!ok) {
      if (bad_++ == 0) first_bad_ = std::string(line.substr(0, 200));
      return;
    }
    if (seen_[id] < 255) ++seen_[id];
  }

  std::vector<uint8_t> seen_;
  std::string pending_;
  uint64_t lines_ = 0;
  uint64_t bad_ = 0;
  std::string first_bad_;
};

struct Sample {
  double t;          // seconds since the first output line
  long rss_kib;      // sluice's VmRSS
  uint64_t lines;    // lines the test had read
  int unread_bytes;  // bytes waiting in the pipe (a full pipe: the sink is blocked)
};

long Median(std::vector<long> v) {
  if (v.empty()) return -1;
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

// Theil-Sen estimate of resident memory's growth per byte of records passed through: the median
// of the slopes between every two samples. A step (one fetch response more held, the allocator
// keeping a buffer) moves fewer than half of the pairs and leaves it near 0; memory that grows
// with the records passed moves every pair alike.
double GrowthPerRecordByte(const std::vector<Sample>& samples, double record_bytes) {
  std::vector<double> slopes;
  for (size_t i = 0; i < samples.size(); ++i) {
    for (size_t j = i + 1; j < samples.size(); ++j) {
      if (samples[j].lines == samples[i].lines) continue;
      const double dx = (static_cast<double>(samples[j].lines) - samples[i].lines) * record_bytes;
      slopes.push_back((samples[j].rss_kib - samples[i].rss_kib) * 1024.0 / dx);
    }
  }
  if (slopes.empty()) return 0;
  std::nth_element(slopes.begin(), slopes.begin() + slopes.size() / 2, slopes.end());
  return slopes[slopes.size() / 2];
}

}  // namespace

TEST_CASE("a slow sink pauses Kafka consumption and memory stays flat and bounded",
          "[integration][kafka]") {
  // 300,000 records of about 2 KiB: a 577 MiB backlog. 256 partitions keep each one near
  // 2.3 MiB, under the 5 MiB the development broker keeps (it drops older messages silently;
  // its low-watermark warning is checked below).
  constexpr uint64_t kRecords = 300000;
  constexpr int kPartitions = 256;
  constexpr int kPad = 2000;
  // A record is `{"id":N,"pad":"x…x"}`: at least 17 bytes besides the padding.
  constexpr uint64_t kBacklogBytes = kRecords * (kPad + 17);
  // What Sluice may hold: 8 batches of 1,024 records in flight (raw bytes, decoded columns and
  // encoded output), librdkafka's prefetch (queued.max.messages.kbytes, 16 MiB, plus a fetch
  // response, which librdkafka caps at the same 16 MiB) and the process itself. Measured here:
  // a resident peak of 84-105 MiB, flat for as long as the sink is slow (with librdkafka's own 64
  // MiB read-ahead, a live heap of about 110 MiB, 86 MiB of it librdkafka's, and 120-190 MiB
  // resident). Holding the backlog would take more than its 577 MiB; the bound is half of that.
  constexpr long kPeakBoundKib = 288 * 1024;
  static_assert(static_cast<uint64_t>(kPeakBoundKib) * 1024 * 2 <= kBacklogBytes,
                "the bound must be at most half the backlog");
  // How long the reader is slow, from the first output line; its first 3 s are the warm-up (the
  // prefetch filling), then an early and a late window are compared.
  constexpr double kSlowSeconds = 14, kWarmupSeconds = 3, kLateFrom = 8.5;
  // The slow reader takes at most 512 bytes every 10 ms (about 3,500 lines a second).
  constexpr size_t kSlowChunk = 512;

  TempDir dir;
  const std::string bs_file = dir / "bootstrap.txt";
  Child broker({Sluice(), "dev-kafka", "-t", "backlog:" + std::to_string(kPartitions),
                "--bootstrap-file", bs_file, "--watch-ms", "200", "--run-seconds", "150"},
               {}, -1, dir / "broker.out", dir / "broker.err");
  for (auto until = Clock::now() + std::chrono::seconds(10);
       Clock::now() < until && Slurp(bs_file).empty();) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::string bs = Slurp(bs_file);
  while (!bs.empty() && std::isspace(static_cast<unsigned char>(bs.back()))) bs.pop_back();
  INFO("broker: " << Slurp(dir / "broker.err"));
  REQUIRE(bs.rfind("127.0.0.1:", 0) == 0);

  // One message a partition at random (sticky.partitioning.linger.ms=0), batched (linger.ms).
  const auto produce_start = Clock::now();
  auto produced =
      Run("seq 1 " + std::to_string(kRecords) + " | awk 'BEGIN { p = \"\"; for (i = 0; i < " +
          std::to_string(kPad) +
          "; i++) p = p \"x\" } { printf \"{\\\"id\\\":%d,\\\"pad\\\":\\\"%s\\\"}\\n\", "
          "$1, p }' | timeout 60 kcat -P -b " +
          bs + " -t backlog -X linger.ms=20 -X sticky.partitioning.linger.ms=0");
  const double produce_s = std::chrono::duration<double>(Clock::now() - produce_start).count();
  INFO("kcat: exit " << produced.exit_code << " " << produced.err);
  REQUIRE(produced.exit_code == 0);

  std::ofstream(dir / "record.json") << R"({"type": "object",
  "properties": {"id": {"type": "integer"}, "pad": {"type": "string"}}, "required": ["id", "pad"]}
)";
  std::ofstream(dir / "p.yaml") << R"(
name: backpressure
sources:
  backlog: {type: kafka, brokers: "${KAFKA_BROKERS}", topic: backlog, group: backpressure,
            properties: {session.timeout.ms: "6000", heartbeat.interval.ms: "500"},
            format: json, schema: record.json}
transforms:
  ids: {type: select, inputs: [backlog], fields: [id]}
sinks:
  out: {type: stdout, inputs: [ids]}
dead_letter: {path: dead.jsonl}
)";

  int fds[2];
  REQUIRE(pipe2(fds, O_CLOEXEC) == 0);
  const int rd = fds[0];
  const int pipe_bytes = fcntl(rd, F_GETPIPE_SZ);
  REQUIRE(pipe_bytes > 0);
  Child run({Sluice(), "--log-format", "json", "run", dir / "p.yaml"}, {"KAFKA_BROKERS=" + bs},
            fds[1], "", dir / "run.err");
  close(fds[1]);
  struct CloseFd {
    int fd;
    ~CloseFd() { close(fd); }
  } close_rd{rd};
  REQUIRE(run.running());

  auto group = sluice::NewKafkaClient(RD_KAFKA_CONSUMER, {{"bootstrap.servers", bs},
                                                          {"group.id", "backpressure"},
                                                          {"enable.auto.commit", "false"},
                                                          {"log_level", "3"}});
  REQUIRE(group.ok());
  std::unique_ptr<rd_kafka_t, void (*)(rd_kafka_t*)> group_rk(*group, rd_kafka_destroy);

  IdLines ids(kRecords);
  std::vector<Sample> samples;
  std::vector<char> buf(1 << 20);
  bool eof = false;
  Clock::time_point first_line{};
  auto last_sample = Clock::now() - std::chrono::seconds(1);
  auto since_first = [&] {
    return first_line == Clock::time_point{}
               ? -1.0
               : std::chrono::duration<double>(Clock::now() - first_line).count();
  };
  // Reads at most `max` bytes (waiting up to 100 ms for some) and samples every 200 ms.
  auto read_some = [&](size_t max) {
    pollfd p{rd, POLLIN, 0};
    if (poll(&p, 1, 100) > 0) {
      ssize_t n = read(rd, buf.data(), std::min(max, buf.size()));
      if (n > 0) {
        ids.Feed(buf.data(), static_cast<size_t>(n));
        if (first_line == Clock::time_point{} && ids.lines() > 0) first_line = Clock::now();
      } else if (n == 0) {
        eof = true;
      }
    }
    if (Clock::now() - last_sample >= std::chrono::milliseconds(200)) {
      last_sample = Clock::now();
      int unread = 0;
      ioctl(rd, FIONREAD, &unread);
      samples.push_back({since_first(), RssKib(run.pid()), ids.lines(), unread});
    }
  };

  // Slow: the first line comes once the group has its assignment (about 3 s), then 14 s.
  const auto slow_deadline = Clock::now() + std::chrono::seconds(30);
  while (!eof && Clock::now() < slow_deadline && since_first() < kSlowSeconds) {
    read_some(kSlowChunk);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // The group's position, then what is left in the pipe: the pipe only fills meanwhile.
  const uint64_t lines_slow = ids.lines();
  const int64_t committed_slow = CommittedRecords(group_rk.get(), "backlog", kPartitions);
  int unread_slow = 0;
  ioctl(rd, FIONREAD, &unread_slow);
  const double slow_s = since_first();

  // Fast: everything else.
  const auto fast_start = Clock::now();
  const auto fast_deadline = fast_start + std::chrono::seconds(30);
  while (!eof && ids.lines() < kRecords && Clock::now() < fast_deadline) read_some(buf.size());
  const double fast_s = std::chrono::duration<double>(Clock::now() - fast_start).count();

  // Stop: SIGTERM drains and exits 0; whatever it still writes is read meanwhile.
  run.Signal(SIGTERM);
  const auto stop_deadline = Clock::now() + std::chrono::seconds(20);
  while (!eof && Clock::now() < stop_deadline) read_some(buf.size());
  const int run_exit = run.Wait(std::chrono::seconds(5));
  group_rk.reset();
  broker.Signal(SIGTERM);
  const int broker_exit = broker.Wait(std::chrono::seconds(10));

  // Memory: all samples (peak), and the slow phase after the warm-up, early against late.
  long peak = 0;
  std::vector<long> early, late;
  std::vector<long> unread_during_slow;
  std::vector<Sample> slow;
  for (const auto& s : samples) {
    peak = std::max(peak, s.rss_kib);
    if (s.t >= kWarmupSeconds && s.t < kSlowSeconds) {
      (s.t < kLateFrom ? early : late).push_back(s.rss_kib);
      unread_during_slow.push_back(s.unread_bytes);
      slow.push_back(s);
    }
  }
  const double growth = GrowthPerRecordByte(slow, kPad + 17);
  const long early_max = early.empty() ? -1 : *std::max_element(early.begin(), early.end());
  const long late_max = late.empty() ? -1 : *std::max_element(late.begin(), late.end());
  const long early_median = Median(early), late_median = Median(late);

  std::string trace;
  for (const auto& s : samples) {
    trace +=
        fmt::format("{:.1f}s {}MiB {}lines {}B; ", s.t, s.rss_kib / 1024, s.lines, s.unread_bytes);
  }
  const std::string run_err = Slurp(dir / "run.err");
  const std::string broker_err = Slurp(dir / "broker.err");
  INFO("samples (since the first line; RSS, lines read, unread pipe bytes): " << trace);
  INFO("run.err: " << run_err.substr(run_err.size() > 4000 ? run_err.size() - 4000 : 0));
  INFO("broker.err: " << broker_err);
  INFO("produced in " << produce_s << " s; slow phase " << slow_s << " s; fast phase " << fast_s
                      << " s; pipe " << pipe_bytes << " B");
  INFO("RSS KiB: peak " << peak << ", early max " << early_max << " median " << early_median
                        << ", late max " << late_max << " median " << late_median
                        << "; growth " << growth << " B per record byte");
  INFO("slow phase: " << lines_slow << " lines read, " << committed_slow << " records committed, "
                      << unread_slow << " B unread in the pipe");

  // Nothing was lost by the broker: no partition's low watermark moved.
  CHECK(broker_err.find("dropped") == std::string::npos);

  // (a) Bounded: the peak is under half of what holding the backlog would take.
  CHECK(peak > 0);
  CHECK(peak <= kPeakBoundKib);
  // (b) Flat: after the warm-up, resident memory does not grow with the records the slow sink
  // lets through (about 38,000 records, 75 MiB). Memory that kept each record, even just its
  // raw bytes, would grow by at least 1 byte per record byte; the growth measured here is about
  // 0. One step, such as a 16 MiB fetch response more held for the rest of the phase, moves
  // fewer than half of the pairs the estimate takes the median of. The late window's peak
  // absorbs the allocator: its cached buffers move resident memory by up to about 30 MiB.
  REQUIRE(early.size() >= 10);
  REQUIRE(late.size() >= 10);
  CHECK(growth < 0.5);
  CHECK(late_max <= early_max + 48 * 1024);
  // (c) Paced by the sink: the sink was blocked on a full pipe most of the time; the reader had
  // taken a small part of the backlog; the group's committed position advanced with what the
  // sink had written (at least half of what was read, never more than read plus what the pipe
  // holds: `{"id":1}` is the shortest line, 9 bytes).
  CHECK(Median(unread_during_slow) >= pipe_bytes / 2);
  CHECK(lines_slow > 0);
  CHECK(lines_slow < kRecords / 4);
  CHECK(committed_slow >= static_cast<int64_t>(lines_slow / 2));
  CHECK(committed_slow <= static_cast<int64_t>(lines_slow + unread_slow / 9 + 1));

  // Then every record arrives, exactly once, and the run drains and exits 0.
  INFO("first malformed line: " << ids.first_bad());
  CHECK(ids.bad() == 0);
  CHECK(ids.lines() == kRecords);
  CHECK(ids.missing() == 0);
  CHECK(ids.repeated() == 0);
  CHECK(run_exit == 0);
  CHECK(run_err.find("\"records_read\":" + std::to_string(kRecords)) != std::string::npos);
  CHECK(Slurp(dir / "dead.jsonl").empty());
  CHECK(broker_exit == 0);
  WARN("backpressure: RSS peak " << peak / 1024 << " MiB (bound " << kPeakBoundKib / 1024
                                 << " MiB, backlog " << kBacklogBytes / (1024 * 1024)
                                 << " MiB); slow phase early max " << early_max / 1024 << " median "
                                 << early_median / 1024 << " MiB, late max " << late_max / 1024
                                 << " median " << late_median / 1024 << " MiB, growth "
                                 << growth << " B per record byte; " << lines_slow
                                 << " lines read, " << committed_slow
                                 << " committed in the slow phase");
}
