// The dead-letter outputs: what a rejected row carries (node, reason, bytes, position), the file
// format (one valid JSON object per line, whatever the bytes), and no file for a clean run.
#include <simdjson.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include <catch2/catch.hpp>

#include "engine/dead_letter.h"
#include "unit_helpers.h"

using namespace sluice;
using namespace sluice::test;

TEST_CASE("NodeContext::Reject carries the row's bytes and position", "[dead-letter]") {
  MemoryDeadLetter dl;
  NodeContext ctx("classify", &dl);
  auto raw = Raw({"first", "second", "third"});
  raw->origin = "iris.jsonl";
  auto col = std::make_shared<Column>(TypeId::kInt64);
  for (int i = 0; i < 3; ++i) col->AppendInt(i);
  Batch b(std::make_shared<const Schema>(std::vector<Field>{{"n", TypeId::kInt64, false}}), {col},
          3);
  b.SetRaw(raw, {});
  auto taken = b.Take({0, 2});
  ctx.Reject(*taken, 1, "feature 'x' is null");
  ctx.RejectRaw(*raw, 1, "malformed JSON: x");
  CHECK(ctx.rejected() == 2u);
  CHECK(dl.count() == 2u);
  auto records = dl.records();
  REQUIRE(records.size() == 2u);
  CHECK(records[0].node == "classify");
  CHECK(records[0].reason == "feature 'x' is null");
  CHECK(records[0].input == "third");
  CHECK(records[0].position == 3);
  CHECK(records[0].origin == "iris.jsonl");
  CHECK(records[1].input == "second");
  CHECK(records[1].position == 2);

  // Without a dead-letter output the rejection is still counted.
  NodeContext counting("n", nullptr);
  counting.RejectRaw(*raw, 0, "x");
  CHECK(counting.rejected() == 1u);
}

TEST_CASE("FileDeadLetter writes one JSON object per line", "[dead-letter]") {
  TempDir dir;
  const std::string path = dir.File("sub/dl.jsonl");
  {
    FileDeadLetter dl("iris", path);
    REQUIRE(dl.Flush().ok());
    // Opened lazily: a clean run leaves no file behind.
    CHECK_FALSE(std::filesystem::exists(path));
    dl.Write({"src", "malformed JSON: \"bad\"", "{\"id\": \xff\xfe", "in.jsonl", 12});
    dl.Write({"classify", "feature 'petal_width' is null", "line\nbreak", "in.jsonl", 13});
    CHECK(dl.count() == 2u);
    REQUIRE(dl.Flush().ok());
  }
  auto lines = Lines(ReadFile(path));
  REQUIRE(lines.size() == 2u);
  simdjson::dom::parser parser;
  for (const auto& line : lines) {
    INFO(line);
    simdjson::padded_string padded(line);
    simdjson::dom::element e;
    REQUIRE_FALSE(parser.parse(padded).get(e));
  }
  CHECK(lines[0] == R"({"pipeline":"iris","node":"src","reason":"malformed JSON: \"bad\"",)"
                    R"("origin":"in.jsonl","position":12,"input":"{\"id\": \u00ff\u00fe"})");
  CHECK(lines[1] ==
        R"({"pipeline":"iris","node":"classify","reason":"feature 'petal_width' is null",)"
        R"("origin":"in.jsonl","position":13,"input":"line\nbreak"})");

  SECTION("a second writer appends") {
    FileDeadLetter again("iris", path);
    again.Write({"src", "r", "x", "in.jsonl", 1});
    REQUIRE(again.Flush().ok());
    CHECK(Lines(ReadFile(path)).size() == 3u);
  }
}

TEST_CASE("FileDeadLetter pauses on a path it cannot write, and resumes once it can",
          "[dead-letter]") {
  TempDir dir;
  dir.Write("plain-file", "x");
  std::atomic<bool> stop{false};
  FileDeadLetter dl("p", dir.File("plain-file/dl.jsonl"), &stop);
  // The folder cannot be made while a file has its name: the write waits, then goes through.
  std::thread fix([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    std::filesystem::remove(dir.File("plain-file"));
  });
  const auto started = std::chrono::steady_clock::now();
  dl.Write({"n", "r", "i", "o", 1});
  fix.join();
  CHECK(std::chrono::steady_clock::now() - started >= std::chrono::milliseconds(400));
  CHECK(dl.count() == 1u);
  CHECK_FALSE(dl.failed());
  CHECK(dl.Flush().ok());
  CHECK(Lines(ReadFile(dir.File("plain-file/dl.jsonl"))).size() == 1u);
}

TEST_CASE("FileDeadLetter gives a record up only when a stop is asked for, and says so",
          "[dead-letter]") {
  TempDir dir;
  dir.Write("plain-file", "x");
  std::atomic<bool> stop{false};
  FileDeadLetter dl("p", dir.File("plain-file/dl.jsonl"), &stop);
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    stop = true;
  });
  dl.Write({"n", "r", "i", "o", 1});
  stopper.join();
  CHECK(dl.count() == 0u);
  CHECK(dl.failed());
  dl.Write({"n", "r", "i", "o", 2});  // once failed, at once
  Status st = dl.Flush();
  REQUIRE_FALSE(st.ok());
  CHECK(st.code() == StatusCode::kIoError);
  CHECK_THAT(st.message(), Catch::Contains(dir.File("plain-file")));
  CHECK_THAT(st.message(), Catch::Contains("will be read again"));
}

TEST_CASE("FileDeadLetter on a device: written, and flushing does not fail", "[dead-letter]") {
  FileDeadLetter dl("p", "/dev/null");
  dl.Write({"n", "r", "i", "o", 1});
  CHECK(dl.count() == 1u);
  CHECK(dl.Flush().ok());
}
