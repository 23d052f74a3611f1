#include "engine/log.h"

#include <chrono>
#include <cstdio>
#include <mutex>

#include <fmt/format.h>

#include "engine/json.h"
#include "engine/types.h"

namespace sluice {
namespace {
std::mutex g_mu;
LogFormat g_format = LogFormat::kText;
LogLevel g_level = LogLevel::kInfo;

const char* LevelName(LogLevel l) {
  switch (l) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
  }
  return "?";
}
}  // namespace

void SetLogFormat(LogFormat format) { g_format = format; }
void SetLogLevel(LogLevel level) { g_level = level; }
LogFormat GetLogFormat() { return g_format; }

void Log(LogLevel level, std::string_view message,
         const std::vector<std::pair<std::string, std::string>>& fields) {
  if (level < g_level) return;
  std::string line;
  if (g_format == LogFormat::kJson) {
    auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    line = "{\"time\":\"" + FormatTimestamp(now) + "\",\"level\":\"" + LevelName(level) +
           "\",\"message\":";
    AppendJsonString(line, message);
    for (const auto& [k, v] : fields) {
      line.push_back(',');
      AppendJsonString(line, k);
      line.push_back(':');
      AppendJsonString(line, v);
    }
    line += "}\n";
  } else {
    line = fmt::format("sluice: {}{}", level >= LogLevel::kWarn
                                           ? std::string(LevelName(level)) + ": "
                                           : std::string(),
                       message);
    for (const auto& [k, v] : fields) line += fmt::format(" {}={}", k, v);
    line += "\n";
  }
  std::lock_guard<std::mutex> lock(g_mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace sluice
