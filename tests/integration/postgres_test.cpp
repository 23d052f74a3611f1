// The postgres sink and source against a throwaway PostgreSQL 15 cluster started by each test
// (tests/integration/postgres.h): rows in and out, upserts, refused rows, start-up checks, the
// database going away mid-stream, and exactly-once delivery across kills.
#include <catch2/catch.hpp>

#include <atomic>
#include <fstream>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <pqxx/pqxx>

#include "operators/postgres/common.h"
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

// Two pipelines started together on one database both create the positions table. PostgreSQL's
// CREATE TABLE IF NOT EXISTS alone lets one of two concurrent creators fail on pg_type's unique
// index ("duplicate key value violates unique constraint pg_type_typname_nsp_index"), which
// stopped a pipeline at start-up.
TEST_CASE("postgres: concurrent creators of the positions table all succeed",
          "[integration][postgres]") {
  ThrowawayPostgres pg;
  constexpr int kTables = 15;
  constexpr int kCreators = 6;
  std::atomic<int> failures{0};
  std::string first_failure;
  std::mutex mu;
  for (int t = 0; t < kTables; ++t) {
    sluice::PgTable table{"public", "positions_" + std::to_string(t)};
    std::vector<std::unique_ptr<pqxx::connection>> conns;
    for (int c = 0; c < kCreators; ++c) conns.push_back(std::make_unique<pqxx::connection>(pg.url()));
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (int c = 0; c < kCreators; ++c) {
      threads.emplace_back([&, c] {
        sluice::PgPositionTable positions(table, "p", "n" + std::to_string(c));
        ready.fetch_add(1);
        while (ready.load() < kCreators) std::this_thread::yield();
        try {
          positions.Ensure(*conns[c]);
        } catch (const std::exception& e) {
          failures.fetch_add(1);
          std::lock_guard<std::mutex> lock(mu);
          if (first_failure.empty()) first_failure = e.what();
        }
      });
    }
    for (auto& th : threads) th.join();
  }
  INFO(first_failure);
  CHECK(failures.load() == 0);
  CHECK(pg.Value("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'positions_%'") ==
        std::to_string(kTables));
}
