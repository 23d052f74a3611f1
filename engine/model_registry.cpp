#include "engine/model_registry.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include <fmt/format.h>

#include "engine/types.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;

bool ValidName(std::string_view s) {
  if (s.empty() || s == "." || s == "..") return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

// A positive integer, nothing else.
bool ParseVersion(std::string_view s, int64_t* out) {
  if (s.empty() || s[0] == '0' || s.size() > 18) return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size() && *out > 0;
}

// The published versions of a model, ascending: integer directories holding an MLmodel file.
std::vector<int64_t> Versions(const fs::path& model) {
  std::vector<int64_t> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(model, ec)) {
    int64_t v = 0;
    if (e.is_directory(ec) && ParseVersion(e.path().filename().string(), &v) &&
        fs::exists(e.path() / "MLmodel", ec)) {
      out.push_back(v);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> Listing(const fs::path& dir, bool dirs_only) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (!dirs_only || e.is_directory(ec)) out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string Join(const std::vector<std::string>& items) {
  if (items.empty()) return "none";
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

std::string JoinVersions(const std::vector<int64_t>& versions) {
  std::vector<std::string> s;
  for (int64_t v : versions) s.push_back(std::to_string(v));
  return Join(s);
}

}  // namespace

std::string ModelUri::ToString() const {
  switch (kind) {
    case Kind::kVersion: return fmt::format("models:/{}/{}", name, version);
    case Kind::kLatest: return fmt::format("models:/{}/latest", name);
    case Kind::kAlias: return fmt::format("models:/{}@{}", name, alias);
  }
  return "";
}

Result<ModelUri> ParseModelUri(std::string_view text) {
  constexpr const char* kForms =
      "expected models:/<name>/<version>, models:/<name>/latest or models:/<name>@<alias>";
  if (!IsModelUri(text)) return Status::InvalidConfig(fmt::format("'{}': {}", text, kForms));
  std::string_view rest = text.substr(kModelUriPrefix.size());
  ModelUri uri;
  size_t at = rest.find('@');
  size_t slash = rest.find('/');
  if (at != std::string_view::npos && slash == std::string_view::npos) {
    uri.name = std::string(rest.substr(0, at));
    uri.alias = std::string(rest.substr(at + 1));
    uri.kind = ModelUri::Kind::kAlias;
    if (!ValidName(uri.alias)) {
      return Status::InvalidConfig(fmt::format("'{}': the alias '{}' is not a valid name ({})",
                                               text, uri.alias, kForms));
    }
  } else if (slash != std::string_view::npos && at == std::string_view::npos) {
    uri.name = std::string(rest.substr(0, slash));
    std::string_view v = rest.substr(slash + 1);
    if (v == "latest") {
      uri.kind = ModelUri::Kind::kLatest;
    } else if (ParseVersion(v, &uri.version)) {
      uri.kind = ModelUri::Kind::kVersion;
    } else {
      return Status::InvalidConfig(fmt::format(
          "'{}': '{}' is neither a version number nor 'latest' ({})", text, v, kForms));
    }
  } else {
    return Status::InvalidConfig(fmt::format("'{}': {}", text, kForms));
  }
  if (!ValidName(uri.name)) {
    return Status::InvalidConfig(
        fmt::format("'{}': the model name '{}' is not a valid name ({})", text, uri.name, kForms));
  }
  return uri;
}

Result<ResolvedModel> ResolveModelUri(const ModelUri& uri, const std::string& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    return Status::NotFound(fmt::format("{}: the model registry '{}' is not a directory",
                                        uri.ToString(), root));
  }
  const fs::path model = fs::path(root) / uri.name;
  if (!fs::is_directory(model, ec)) {
    std::vector<std::string> names = Listing(root, true);
    auto near = ClosestMatch(uri.name, names);
    return Status::NotFound(fmt::format("{}: no model '{}' in the registry '{}'{} (models: {})",
                                        uri.ToString(), uri.name, root,
                                        near ? fmt::format("; did you mean '{}'?", *near) : "",
                                        Join(names)));
  }
  const std::vector<int64_t> versions = Versions(model);
  ResolvedModel out;
  out.name = uri.name;
  switch (uri.kind) {
    case ModelUri::Kind::kVersion: out.version = uri.version; break;
    case ModelUri::Kind::kLatest:
      if (versions.empty()) {
        return Status::NotFound(fmt::format(
            "{}: model '{}' has no published version (a directory named by a positive integer "
            "holding an MLmodel file)",
            uri.ToString(), uri.name));
      }
      out.version = versions.back();
      break;
    case ModelUri::Kind::kAlias: {
      const fs::path file = model / "aliases" / uri.alias;
      std::ifstream in(file);
      if (!in) {
        return Status::NotFound(fmt::format("{}: model '{}' has no alias '{}' (aliases: {})",
                                            uri.ToString(), uri.name, uri.alias,
                                            Join(Listing(model / "aliases", false))));
      }
      std::stringstream ss;
      ss << in.rdbuf();
      std::string text = ss.str();
      while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
        text.pop_back();
      if (!ParseVersion(text, &out.version)) {
        return Status::InvalidConfig(fmt::format(
            "{}: the alias file '{}' holds '{}', not a version number", uri.ToString(),
            file.string(), text.substr(0, 40)));
      }
      break;
    }
  }
  if (!std::binary_search(versions.begin(), versions.end(), out.version)) {
    return Status::NotFound(fmt::format("{}: model '{}' has no version {} (versions: {})",
                                        uri.ToString(), uri.name, out.version,
                                        JoinVersions(versions)));
  }
  out.dir = (model / std::to_string(out.version)).string();
  return out;
}

}  // namespace sluice
