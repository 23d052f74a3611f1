// What the postgres sink's suites share (postgres_sink_test.cpp, postgres_upsert_test.cpp,
// postgres_sink_failure_test.cpp): a pipeline of one file source and one postgres sink, run
// against a throwaway cluster (tests/integration/postgres.h) with every run bounded.
#pragma once

#include <fstream>
#include <string>

#include "tests/integration/postgres.h"

namespace sluice::testing {

inline void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

inline bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// `text` with its double quotes escaped, as it appears inside a JSON string.
inline std::string JsonQuotes(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '"') out += '\\';
    out += c;
  }
  return out;
}

// 12,345
inline std::string Commas(size_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// `sluice run DIR/p.yaml` with DATABASE_URL set, killed after `seconds` (exit 124 then).
inline CommandResult RunPipeline(const std::string& url, const TempDir& dir, int seconds = 60) {
  return Run("DATABASE_URL='" + url + "' timeout -k 5 " + std::to_string(seconds) + " " + Sluice() +
             " run " + (dir / "p.yaml"));
}
inline CommandResult RunPipeline(const ThrowawayPostgres& pg, const TempDir& dir,
                                 int seconds = 60) {
  return RunPipeline(pg.url(), dir, seconds);
}

// A pipeline of one file source `in` (json lines in.jsonl, schema.json) and one postgres sink
// `db` with the given extra keys; dead letters to dead.jsonl.
inline std::string Pipeline(const std::string& sink_keys, int batch_size = 1024) {
  return "name: pgsink\nsettings: {batch_size: " + std::to_string(batch_size) +
         "}\nsources:\n  in: {type: file, path: in.jsonl, schema: schema.json}\n"
         "sinks:\n  db: {type: postgres, inputs: [in], url: \"${DATABASE_URL}\", " +
         sink_keys + "}\ndead_letter: {path: dead.jsonl}\n";
}

}  // namespace sluice::testing
