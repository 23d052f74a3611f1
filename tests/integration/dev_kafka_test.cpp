// The development broker (`sluice dev-kafka`): other Kafka clients (kcat) produce to and consume
// from it on loopback, it warns when a partition drops messages, and it stops cleanly on SIGTERM.
#include <catch2/catch.hpp>

#include "tests/integration/process.h"

using namespace sluice::testing;

TEST_CASE("dev-kafka serves kcat, reports dropped messages and stops on SIGTERM",
          "[integration][kafka]") {
  TempDir dir;
  const std::string bs = dir / "bootstrap.txt";
  // One shell script so the broker's whole life is in one bounded command.
  const std::string script = Sluice() + " dev-kafka -t rides:3 -t small:1 --bootstrap-file " + bs +
                             " --watch-ms 200 --run-seconds 60 >" + (dir / "out") + " 2>" +
                             (dir / "err") + R"SH( &
pid=$!
for i in $(seq 1 100); do [ -s )SH" +
                             bs + R"SH( ] && break; sleep 0.1; done
b=$(cat )SH" + bs + R"SH()
seq 1 3000 | kcat -P -b "$b" -t rides
echo "consumed $(timeout 30 kcat -C -b "$b" -t rides -e -o beginning -q | wc -l)"
# 8 MiB into one partition: more than the 5 MiB the broker keeps.
head -c 8388608 /dev/zero | tr '\0' x | fold -w 1023 | kcat -P -b "$b" -t small -X batch.size=200000
sleep 1
kill -TERM $pid
wait $pid
echo "exit $?"
)SH";
  auto r = Run(script);
  INFO(r.out + r.err);
  const std::string out = Slurp(dir / "out");
  const std::string err = Slurp(dir / "err");
  INFO(out + err);
  CHECK(out.rfind("bootstrap: 127.0.0.1:", 0) == 0);
  CHECK(r.out.find("consumed 3000") != std::string::npos);
  CHECK(err.find("topic 'small' partition 0 dropped") != std::string::npos);
  CHECK(err.find("topic 'rides'") == std::string::npos);  // nothing dropped there
  CHECK(r.out.find("exit 0") != std::string::npos);
  CHECK(err.find("dev-kafka: stopped") != std::string::npos);
}

TEST_CASE("dev-kafka rejects a malformed topic", "[integration][kafka]") {
  auto r = Run(Sluice() + " dev-kafka -t rides:zero --run-seconds 1");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("--topic 'rides:zero': expected NAME or NAME:PARTITIONS") != std::string::npos);
}
