#include "engine/config.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "engine/operator.h"

namespace sluice {

Mark Mark::Of(const std::string& file, const YAML::Node& node) {
  Mark m;
  m.file = file;
  if (node.IsDefined() && node.Mark().line >= 0) {
    m.line = node.Mark().line + 1;
    m.column = node.Mark().column + 1;
  }
  return m;
}

std::string Mark::ToString() const {
  if (line <= 0) return file;
  return fmt::format("{}:{}:{}", file, line, column);
}

const char* RoleName(Role role) {
  switch (role) {
    case Role::kSource: return "source";
    case Role::kTransform: return "transform";
    case Role::kSink: return "sink";
  }
  return "?";
}

const char* ConfigTypeName(ConfigType type) {
  switch (type) {
    case ConfigType::kString: return "string";
    case ConfigType::kInt: return "integer";
    case ConfigType::kFloat: return "number";
    case ConfigType::kBool: return "boolean";
    case ConfigType::kPath: return "path";
    case ConfigType::kStringList: return "list of strings";
    case ConfigType::kStringMap: return "map of strings";
    case ConfigType::kAny: return "object";
  }
  return "?";
}

std::string ResolvePath(const std::string& base_dir, const std::string& path) {
  if (path.empty() || path == "-") return path;
  std::filesystem::path p(path);
  if (p.is_absolute() || base_dir.empty()) return path;
  return (std::filesystem::path(base_dir) / p).lexically_normal().string();
}

Status EnsureParentDir(const std::string& path) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (parent.empty()) return Status::Ok();
  std::error_code ec;
  std::filesystem::create_directories(parent, ec);
  if (ec) {
    return Status::IoError(
        fmt::format("cannot create folder '{}' for '{}': {}", parent.string(), path, ec.message()));
  }
  return Status::Ok();
}

Result<std::string> CheckWritable(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path p = fs::absolute(path, ec);
  if (ec) p = path;
  if (fs::exists(p, ec)) {
    if (access(p.c_str(), W_OK) != 0) {
      return Status::IoError(
          fmt::format("'{}' exists and this user may not write it: {}", path, std::strerror(errno)));
    }
    return fmt::format("'{}' exists and is writable", path);
  }
  fs::path folder = p.parent_path();
  while (!folder.empty() && !fs::exists(folder, ec) && folder != folder.root_path())
    folder = folder.parent_path();
  if (!fs::is_directory(folder, ec)) {
    return Status::IoError(
        fmt::format("cannot create '{}': '{}' is not a folder", path, folder.string()));
  }
  if (access(folder.c_str(), W_OK | X_OK) != 0) {
    return Status::IoError(fmt::format("cannot create '{}': this user may not write in folder "
                                       "'{}': {}",
                                       path, folder.string(), std::strerror(errno)));
  }
  return fmt::format("'{}' can be created (folder '{}' is writable)", path, folder.string());
}

const ConfigField* NodeConfig::FieldSpec(const std::string& key) const {
  if (spec) {
    for (const auto& f : spec->fields)
      if (f.name == key) return &f;
  }
  for (const auto& f : CommonNodeFields(role))
    if (f.name == key) return &f;
  return nullptr;
}

bool NodeConfig::Has(const std::string& key) const {
  return node.IsMap() && node[key].IsDefined() && !node[key].IsNull();
}

namespace {
std::string DefaultOf(const ConfigField* f) {
  return f ? f->default_value : std::string();
}
}  // namespace

std::string NodeConfig::String(const std::string& key) const {
  if (Has(key) && node[key].IsScalar()) return node[key].Scalar();
  return DefaultOf(FieldSpec(key));
}

int64_t NodeConfig::Int(const std::string& key) const {
  std::string s = String(key);
  if (s.empty()) return 0;
  try {
    return std::stoll(s);
  } catch (...) {
    return 0;  // the loader rejected non-integers already
  }
}

double NodeConfig::Float(const std::string& key) const {
  std::string s = String(key);
  if (s.empty()) return 0;
  try {
    return std::stod(s);
  } catch (...) {
    return 0;
  }
}

bool NodeConfig::Bool(const std::string& key) const {
  std::string s = String(key);
  return s == "true" || s == "yes" || s == "on" || s == "True";
}

std::vector<std::string> NodeConfig::StringList(const std::string& key) const {
  std::vector<std::string> out;
  if (!Has(key)) return out;
  const YAML::Node& n = node[key];
  if (n.IsScalar()) {
    out.push_back(n.Scalar());
    return out;
  }
  for (const auto& item : n)
    if (item.IsScalar()) out.push_back(item.Scalar());
  return out;
}

std::vector<std::pair<std::string, std::string>> NodeConfig::StringMap(
    const std::string& key) const {
  std::vector<std::pair<std::string, std::string>> out;
  if (!Has(key) || !node[key].IsMap()) return out;
  for (auto it = node[key].begin(); it != node[key].end(); ++it) {
    out.emplace_back(it->first.Scalar(), it->second.IsScalar() ? it->second.Scalar() : "");
  }
  return out;
}

std::string NodeConfig::Path(const std::string& key) const {
  return ResolvePath(base_dir, String(key));
}

Mark NodeConfig::MarkOf(const std::string& key) const {
  if (node.IsMap() && node[key].IsDefined()) return Mark::Of(mark.file, node[key]);
  return mark;
}

std::string NodeConfig::Prefix() const {
  if (type.empty() || !spec) return fmt::format("node '{}'", name);
  return fmt::format("{} '{}'", type, name);
}

Status NodeConfig::Error(const std::string& key, const std::string& message) const {
  return Status::InvalidConfig(
      fmt::format("{}: {}: {}", MarkOf(key).ToString(), Prefix(), message));
}

}  // namespace sluice
