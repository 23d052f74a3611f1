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
std::string g_pipeline;  // set before the pipeline's threads start

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

void SetLogFormat(LogFormat format) {
  g_format = format;
}
void SetLogPipeline(std::string name) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_pipeline = std::move(name);
}
void SetLogLevel(LogLevel level) {
  g_level = level;
}
LogFormat GetLogFormat() {
  return g_format;
}

LogField::LogField(std::string k, double v) : key(std::move(k)), raw(true) {
  AppendJsonDouble(value, v);
}

void Log(LogLevel level, std::string_view message, const std::vector<LogField>& fields) {
  if (level < g_level) return;
  std::string line;
  if (g_format == LogFormat::kJson) {
    auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    line = "{\"time\":\"" + FormatTimestamp(now) + "\",\"level\":\"" + LevelName(level) +
           "\",\"message\":";
    AppendJsonString(line, message);
    bool named = false;
    for (const auto& f : fields) named = named || f.key == "pipeline";
    if (!named && !g_pipeline.empty()) {
      line += ",\"pipeline\":";
      AppendJsonString(line, g_pipeline);
    }
    for (const auto& f : fields) {
      line.push_back(',');
      AppendJsonString(line, f.key);
      line.push_back(':');
      if (f.raw) {
        line += f.value;
      } else {
        AppendJsonString(line, f.value);
      }
    }
    line += "}\n";
  } else {
    line = fmt::format(
        "sluice: {}{}",
        level >= LogLevel::kWarn ? std::string(LevelName(level)) + ": " : std::string(), message);
    for (const auto& f : fields) line += fmt::format(" {}={}", f.key, f.value);
    line += "\n";
  }
  std::lock_guard<std::mutex> lock(g_mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace sluice
