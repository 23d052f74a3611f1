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

}  // namespace sluice::testing
