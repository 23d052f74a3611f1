// Checks of a pipeline (or test) file's text and YAML tree that yaml-cpp does not make: bytes that are not
// UTF-8 text, documents after the first, aliases that never end or expand without bound, keys
// given twice, merge keys; and the small helpers their messages use.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "engine/pipeline.h"

namespace sluice {

// The offset of the first byte of `s` that is not valid UTF-8 or is a control character YAML
// does not allow (below 0x20 other than tab, LF and CR; DEL), or npos.
size_t FirstNonTextByte(std::string_view s);

// The 1-based line and column (in characters) of byte `offset` of valid UTF-8 `text`.
Mark MarkAtOffset(const std::string& file, std::string_view text, size_t offset);

// " (line N is indented with a tab; ...)" when a line up to 1-based `line` is, else "".
std::string TabHint(std::string_view text, int line);

// Where each of the first documents of `text` starts (at most three), from parsing events alone.
std::vector<YAML::Mark> DocumentStarts(const std::string& text);

// What a YAML file holds, for the messages of LoadYamlText.
struct YamlFileKind {
  const char* name;          // "a pipeline file"
  const char* one_document;  // why a second document is refused
  const char* nesting;       // how deep this kind of file nests
};
inline constexpr YamlFileKind kPipelineFileKind = {
    "a pipeline file", "a pipeline file holds one pipeline: put each in a file of its own",
    "a pipeline needs a few"};
inline constexpr YamlFileKind kTestFileKind = {
    "a test file", "a test file holds one list of test cases: put them all in it",
    "test cases need a few"};

// Parses the one YAML document of `text`, or reports why it cannot (bytes that are not UTF-8
// text, a second document, nesting too deep, invalid YAML) and returns nullopt. The tree is not
// walked yet: CheckTree does that.
std::optional<YAML::Node> LoadYamlText(const std::string& text, const std::string& file,
                                       const YamlFileKind& kind, Diagnostics& diags);

// Walks the tree before anything else recurses into it: reports keys given twice, merge keys and
// keys that are not names, and stops (false) at aliases nested too deep or expanding too far.
bool CheckTree(const YAML::Node& root, const std::string& file, Diagnostics& diags);

// "a mapping", "a list", "null" or "a scalar".
const char* KindName(const YAML::Node& n);

}  // namespace sluice
