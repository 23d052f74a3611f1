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

// An exactly-once sink checks the positions it stored last in the statement that moves them on
// (PgPositionTable::StoreIfAt): they move only when every one is where it was expected, and a
// writer that has to wait for another's lock sees what the other committed.
TEST_CASE("postgres: positions move on only from where they were expected",
          "[integration][postgres]") {
  ThrowawayPostgres pg;
  pqxx::connection conn(pg.url());
  sluice::PgPositionTable positions(sluice::PgTable{"public", "positions"}, "p", "n");
  positions.Ensure(conn);
  using Positions = sluice::PgPositions;
  auto load = [&] {
    pqxx::read_transaction tx(conn);
    return positions.Load(tx);
  };
  auto store_if_at = [&](pqxx::connection& c, const Positions& next, const Positions& expected) {
    pqxx::work tx(c);
    const bool moved = positions.StoreIfAt(tx, next, expected);
    if (moved) tx.commit(); else tx.abort();
    return moved;
  };
  {
    pqxx::work tx(conn);
    positions.Store(tx, {{{"a", 0}, 10}, {{"a", 1}, 20}, {{"b", 0}, 5}});
    tx.commit();
  }
  // Every position where it was expected: all move, across topics.
  CHECK(store_if_at(conn, {{{"a", 0}, 15}, {{"a", 1}, 25}, {{"b", 0}, 6}},
                    {{{"a", 0}, 10}, {{"a", 1}, 20}, {{"b", 0}, 5}}));
  const Positions moved = {{{"a", 0}, 15}, {{"a", 1}, 25}, {{"b", 0}, 6}};
  CHECK(load() == moved);
  // One elsewhere (another writer moved it), or a row missing, or a key not expected at all:
  // false, and after the rollback nothing has moved.
  CHECK_FALSE(store_if_at(conn, {{{"a", 0}, 30}, {{"a", 1}, 40}},
                          {{{"a", 0}, 15}, {{"a", 1}, 24}}));
  CHECK_FALSE(store_if_at(conn, {{{"a", 0}, 30}, {{"a", 2}, 7}},
                          {{{"a", 0}, 15}, {{"a", 2}, 0}}));
  CHECK_FALSE(store_if_at(conn, {{{"a", 0}, 30}, {{"b", 0}, 7}}, {{{"a", 0}, 15}}));
  CHECK(load() == moved);
  // A second writer expecting 15 waits for the first one's lock, then sees the 16 it committed.
  pqxx::connection other(pg.url());
  pqxx::work first(conn);
  REQUIRE(positions.StoreIfAt(first, {{{"a", 0}, 16}}, {{{"a", 0}, 15}}));
  std::atomic<bool> done{false};
  bool second_moved = true;
  std::thread second([&] {
    second_moved = store_if_at(other, {{{"a", 0}, 17}}, {{{"a", 0}, 15}});
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK_FALSE(done.load());  // waiting for the first writer's lock
  first.commit();
  second.join();
  CHECK_FALSE(second_moved);
  CHECK(load().at({"a", 0}) == 16);
}

// The positions statements run with every batch: each connection prepares them once. A server
// connection that does not know them (a pooler in transaction mode switched it) fails the
// statement with SQLSTATE 26000, a transient error: the batch is retried, and from then on the
// statements go unprepared.
TEST_CASE("postgres: the positions statements are prepared once per connection, and sent "
          "unprepared once the server does not know them",
          "[integration][postgres]") {
  ThrowawayPostgres pg;
  pqxx::connection conn(pg.url());
  sluice::PgPositionTable positions(sluice::PgTable{"public", "positions"}, "p", "n");
  positions.Ensure(conn);
  REQUIRE(sluice::PgPreparing());
  auto store_if_at = [&](int64_t from, int64_t to) {
    pqxx::work tx(conn);
    const bool moved = positions.StoreIfAt(tx, {{{"a", 0}, to}}, {{{"a", 0}, from}});
    tx.commit();
    return moved;
  };
  auto prepared = [&] {
    pqxx::nontransaction tx(conn);
    return tx.exec1("SELECT count(*) FROM pg_prepared_statements")[0].as<int>();
  };
  {
    pqxx::work tx(conn);
    positions.Store(tx, {{{"a", 0}, 1}});
    tx.commit();
  }
  for (int i = 1; i < 8; ++i) CHECK(store_if_at(i, i + 1));
  CHECK(prepared() == 2);  // Store's and StoreIfAt's, once each
  {
    pqxx::nontransaction tx(conn);
    tx.exec0("DEALLOCATE ALL");  // what a server connection that never saw them knows
  }
  std::string state;
  try {
    store_if_at(8, 9);
  } catch (const pqxx::sql_error& e) {
    state = sluice::PgSqlState(e);
  }
  CHECK(state == "26000");
  CHECK(sluice::IsPgTransient(state));
  CHECK_FALSE(sluice::PgPreparing());
  CHECK(store_if_at(8, 9));  // the retry, unprepared
  CHECK(prepared() == 0);
  pqxx::read_transaction tx(conn);
  CHECK(positions.Load(tx).at({"a", 0}) == 9);
  sluice::PgResumePreparing();
}
