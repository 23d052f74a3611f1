// A throwaway PostgreSQL cluster for integration tests: Debian's PostgreSQL 15 binaries, initdb
// into a temporary folder, the server on a free loopback port with its socket in that folder,
// stopped and removed when the object goes. Run as root, the server runs as the `postgres` user
// (PostgreSQL refuses to run as root).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "tests/integration/process.h"

namespace sluice::testing {

// A TCP port on 127.0.0.1 that nothing listens on right now.
inline int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  if (port < 0) throw std::runtime_error("no free loopback port");
  return port;
}

inline std::string PgBin(const std::string& program) {
  return "/usr/lib/postgresql/15/bin/" + program;
}

class ThrowawayPostgres {
 public:
  ThrowawayPostgres() : port_(FreeLoopbackPort()) {
    as_ = geteuid() == 0 ? "runuser -u postgres -- " : "";
    if (geteuid() == 0) Must("chown postgres " + dir_.path().string());
    Must(as_ + PgBin("initdb") + " -D " + data() + " -A trust -U sluice --no-sync -E UTF8");
    Start();
  }
  ~ThrowawayPostgres() {
    if (running_) Run(as_ + PgBin("pg_ctl") + " -D " + data() + " -m immediate -w stop");
  }
  ThrowawayPostgres(const ThrowawayPostgres&) = delete;
  ThrowawayPostgres& operator=(const ThrowawayPostgres&) = delete;

  // Starts the server (again) on the same port; waits until it takes connections.
  void Start() {
    Must(StartCommand());
    running_ = true;
  }
  // Stops the server: `fast` rolls back open transactions and closes connections.
  void Stop(const std::string& mode = "fast") {
    Must(StopCommand(mode));
    running_ = false;
  }

  int port() const { return port_; }
  std::string url() const {
    return "postgresql://sluice@127.0.0.1:" + std::to_string(port_) + "/postgres";
  }
  // Shell text that starts or stops the server, for test scripts that act while Sluice runs.
  std::string StartCommand() const {
    return as_ + PgBin("pg_ctl") + " -D " + data() + " -l " + (dir_ / "server.log") +
           " -o \"-p " + std::to_string(port_) + " -k " + dir_.path().string() +
           " -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50\" -w -t 60 start";
  }
  std::string StopCommand(const std::string& mode = "fast") const {
    return as_ + PgBin("pg_ctl") + " -D " + data() + " -m " + mode + " -w -t 60 stop";
  }
  // The server was started or stopped by a script: keeps the destructor right.
  void SetRunning(bool running) { running_ = running; }

  // Runs SQL with psql (unaligned, tuples only) and returns its output; throws on failure.
  std::string Sql(const std::string& sql) const {
    CommandResult r = TrySql(sql);
    if (r.exit_code != 0) throw std::runtime_error("psql failed: " + r.err + "\nSQL: " + sql);
    return r.out;
  }
  CommandResult TrySql(const std::string& sql) const {
    TempDir tmp;
    std::ofstream(tmp / "q.sql") << sql;
    return Run("psql -X -q -At -v ON_ERROR_STOP=1 -d '" + url() + "' -f " + (tmp / "q.sql"));
  }
  // Creates database `name` in `encoding` (with the C locale, which takes any encoding) and
  // returns its url.
  std::string CreateDatabase(const std::string& name, const std::string& encoding) const {
    Sql("CREATE DATABASE " + name + " TEMPLATE template0 ENCODING '" + encoding +
        "' LC_COLLATE 'C' LC_CTYPE 'C'");
    return url().substr(0, url().rfind('/')) + "/" + name;
  }
  // A single value (first line of the output).
  std::string Value(const std::string& sql) const {
    std::string out = Sql(sql);
    return out.substr(0, out.find('\n'));
  }

  std::string data() const { return dir_ / "data"; }
  const TempDir& dir() const { return dir_; }

 private:
  static void Must(const std::string& command) {
    CommandResult r = Run(command);
    if (r.exit_code != 0) {
      throw std::runtime_error("`" + command + "` failed (" + std::to_string(r.exit_code) +
                               "): " + r.err + r.out);
    }
  }

  TempDir dir_;
  int port_;
  std::string as_;
  bool running_ = false;
};

}  // namespace sluice::testing
