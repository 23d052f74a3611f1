// The postgres sink and source against a throwaway PostgreSQL 15 cluster started by each test
// (tests/integration/postgres.h): rows in and out, upserts, refused rows, start-up checks, the
// database going away mid-stream, and exactly-once delivery across kills.
#include <catch2/catch.hpp>

#include <fstream>

#include "tests/integration/postgres.h"

using namespace sluice::testing;

TEST_CASE("postgres: a throwaway cluster starts, answers and restarts", "[integration][postgres]") {
  ThrowawayPostgres pg;
  REQUIRE(pg.Value("SELECT 40 + 2") == "42");
  pg.Stop();
  REQUIRE(pg.TrySql("SELECT 1").exit_code != 0);
  pg.Start();
  REQUIRE(pg.Value("SELECT 1") == "1");
}
