// A local model registry in MLflow's spirit, and the `models:/` names that resolve against it:
//
//   <root>/<name>/<version>/          an MLflow model directory (MLmodel + model files);
//                                     versions are positive integers
//   <root>/<name>/aliases/<alias>     a text file holding the version the alias points at
//
//   models:/fraud/3          version 3
//   models:/fraud/latest     the highest version with an MLmodel file
//   models:/fraud@champion   the version aliases/champion names
//
// A version is published by renaming a complete directory into place, and an alias is moved by
// renaming a new file over the old one, so a reader never sees half of either.
//
// Threading: pure functions of the file system; safe from any thread.
#pragma once

#include <string>
#include <string_view>

#include "engine/status.h"

namespace sluice {

struct ModelUri {
  std::string name;
  enum class Kind { kVersion, kLatest, kAlias } kind = Kind::kLatest;
  int64_t version = 0;  // kVersion
  std::string alias;    // kAlias
  std::string ToString() const;  // "models:/fraud@champion"
};

inline constexpr std::string_view kModelUriPrefix = "models:/";
inline bool IsModelUri(std::string_view text) { return text.starts_with(kModelUriPrefix); }

// Parses "models:/name/version", "models:/name/latest" or "models:/name@alias".
Result<ModelUri> ParseModelUri(std::string_view text);

struct ResolvedModel {
  std::string dir;       // the version's model directory
  std::string name;
  int64_t version = 0;
};

// Where `uri` points in the registry at `root` now. Errors say what exists instead (the names,
// versions or aliases there).
Result<ResolvedModel> ResolveModelUri(const ModelUri& uri, const std::string& root);

}  // namespace sluice
