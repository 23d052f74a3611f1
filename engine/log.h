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
void SetLogLevel(LogLevel level);
LogFormat GetLogFormat();

// Extra key/value pairs appear as `key=value` in text and as members in JSON.
void Log(LogLevel level, std::string_view message,
         const std::vector<std::pair<std::string, std::string>>& fields = {});

}  // namespace sluice
