// Process-wide logging to stderr: human text by default, one JSON object per line for services
// (`--log-format json`). Thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice {

enum class LogLevel { kDebug, kInfo, kWarn, kError };
enum class LogFormat { kText, kJson };

void SetLogFormat(LogFormat format);
// The running pipeline's name: every JSON line carries it as "pipeline" (unless the line names
// one itself), so lines of several processes can be told apart once collected.
void SetLogPipeline(std::string name);
void SetLogLevel(LogLevel level);
LogFormat GetLogFormat();

// A key/value pair of a log line: `key=value` in text, a member in JSON. Numbers and JSON values
// (`raw`) are written unquoted in JSON.
struct LogField {
  LogField(std::string k, std::string v) : key(std::move(k)), value(std::move(v)) {}
  LogField(std::string k, const char* v) : key(std::move(k)), value(v) {}
  LogField(std::string k, uint64_t v) : key(std::move(k)), value(std::to_string(v)), raw(true) {}
  LogField(std::string k, double v);
  static LogField Json(std::string k, std::string json) {
    LogField f(std::move(k), std::move(json));
    f.raw = true;
    return f;
  }
  std::string key;
  std::string value;
  bool raw = false;
};

void Log(LogLevel level, std::string_view message, const std::vector<LogField>& fields = {});

}  // namespace sluice
