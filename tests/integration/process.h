// Helpers for tests that run the `sluice` binary and other programs: run a shell command and
// capture its exit code and output, make and remove temporary folders.
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace sluice::testing {

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

inline std::string Slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("sluice-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// Runs `command` with /bin/sh; stdout and stderr are captured through files.
inline CommandResult Run(const std::string& command) {
  TempDir tmp;
  std::string full = "(" + command + ") >" + (tmp / "out") + " 2>" + (tmp / "err") + " </dev/null";
  int status = std::system(full.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = Slurp(tmp / "out");
  r.err = Slurp(tmp / "err");
  return r;
}

inline std::string Sluice() {
  return SLUICE_BINARY;
}
inline std::string Source(const std::string& rel) {
  return std::string(SLUICE_SOURCE_DIR) + "/" + rel;
}

// The non-empty lines of `text`.
inline std::vector<std::string> LinesOf(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(l);
  return out;
}

// Shell text that starts `sluice dev-kafka ARGS` in the background (pid in $broker, log in
// DIR/broker.err), waits for its address and exports it as KAFKA_BROKERS.
inline std::string StartBroker(const TempDir& dir, const std::string& args) {
  const std::string bs = dir / "bootstrap.txt";
  return Sluice() + " dev-kafka " + args + " --bootstrap-file " + bs + " >/dev/null 2>" +
         (dir / "broker.err") + " &\nbroker=$!\nfor i in $(seq 1 100); do [ -s " + bs +
         " ] && break; sleep 0.1; done\nexport KAFKA_BROKERS=$(cat " + bs + ")\n";
}

// Shell text that starts tests/integration/model_server.py on MODEL in the background (pid in
// $server, log in DIR/server.log), waits until it answers and exports its port as PORT. The
// EXIT trap kills it whatever happens next.
inline std::string StartModelServer(const TempDir& dir, const std::string& model,
                                    const std::string& args) {
  const std::string port_file = dir / "port.txt";
  return "rm -f " + port_file + "\n/usr/bin/python3 " +
         Source("tests/integration/model_server.py") + " --model " + model + " --port-file " +
         port_file + " " + args + " >>" + (dir / "server.log") +
         " 2>&1 &\nserver=$!\ntrap 'kill -9 $server 2>/dev/null' EXIT\n"
         "for i in $(seq 1 150); do [ -s " + port_file + " ] && break; sleep 0.1; done\n"
         "export PORT=$(cat " + port_file + ")\n" +
         // Listening is not serving yet: wait for the app's first answer.
         "for i in $(seq 1 100); do curl -sf http://127.0.0.1:$PORT/health >/dev/null && break; "
         "sleep 0.1; done\n";
}

// Shell: waits for the log line of `sluice run --metrics-addr HOST:0` naming the address it
// bound, and sets MADDR to it.
inline std::string WaitMetricsAddr(const std::string& log) {
  return "for i in $(seq 1 150); do MADDR=$(grep -o 'metrics on http://[0-9.:]*' " + log +
         " | head -1 | sed 's|metrics on http://||'); [ -n \"$MADDR\" ] && break; sleep 0.1; "
         "done\necho \"metrics at $MADDR\"\n";
}

}  // namespace sluice::testing
