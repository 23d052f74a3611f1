// Parsing pipeline YAML into declarations: environment expansion, key and type checks against
// each operator's spec, settings; and the diagnostics every phase reports into. Planning is in
// plan.cpp; the checks of the file's text and tree that yaml-cpp does not make are in
// yaml_checks.cpp.
#include "engine/pipeline.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string_view>
#include <tuple>

#include <fmt/format.h>

#include "engine/yaml_checks.h"

namespace sluice {

std::string Diagnostic::ToString() const {
  return fmt::format("{}: {}: {}", mark.ToString(),
                     severity == Severity::kError ? "error" : "warning", message);
}

void Diagnostics::Error(const Mark& mark, std::string node, std::string message) {
  items_.push_back({Severity::kError, mark, std::move(node), std::move(message)});
}

void Diagnostics::Warning(const Mark& mark, std::string node, std::string message) {
  items_.push_back({Severity::kWarning, mark, std::move(node), std::move(message)});
}

void Diagnostics::AddStatus(const Status& status, const Mark& fallback, std::string node) {
  // Messages built by NodeConfig::Error start with "file:line:col: "; split that off so the
  // structured output has the mark and the message apart. A status may carry several problems
  // of one node (every error of an expression), one per line, each with its own mark.
  const std::string prefix = fallback.file + ":";
  std::vector<std::string> parts;
  const std::string& all = status.message();
  size_t start = 0;
  while (true) {
    size_t nl = all.find('\n', start);
    // A line that does not start with a mark continues the previous problem's message.
    if (parts.empty() || fallback.file.empty() || all.compare(start, prefix.size(), prefix) == 0) {
      parts.push_back(all.substr(start, nl == std::string::npos ? nl : nl - start));
    } else {
      parts.back() += "\n" + all.substr(start, nl == std::string::npos ? nl : nl - start);
    }
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  for (std::string& msg : parts) {
    Mark mark = fallback;
    if (!fallback.file.empty() && msg.rfind(prefix, 0) == 0) {
      int line = 0, col = 0, consumed = 0;
      if (std::sscanf(msg.c_str() + prefix.size(), "%d:%d: %n", &line, &col, &consumed) == 2 &&
          consumed > 0) {
        mark.line = line;
        mark.column = col;
        msg = msg.substr(prefix.size() + consumed);
      }
    }
    Error(mark, node, std::move(msg));
  }
}

std::vector<Diagnostic> Diagnostics::Sorted() const {
  std::vector<Diagnostic> out = items_;
  std::stable_sort(out.begin(), out.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return std::tie(a.mark.file, a.mark.line, a.mark.column) <
           std::tie(b.mark.file, b.mark.line, b.mark.column);
  });
  return out;
}

bool Diagnostics::HasErrors() const {
  return ErrorCount() > 0;
}

size_t Diagnostics::ErrorCount() const {
  size_t n = 0;
  for (const auto& d : items_) n += d.severity == Severity::kError;
  return n;
}

int PipelineDecl::IndexOf(const std::string& name) const {
  for (size_t i = 0; i < nodes.size(); ++i)
    if (nodes[i].name == name) return static_cast<int>(i);
  return -1;
}

Result<std::string> ExpandEnv(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c != '$') {
      out.push_back(c);
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == '$') {
      out.push_back('$');
      ++i;
      continue;
    }
    if (i + 1 >= text.size() || text[i + 1] != '{') {
      out.push_back(c);
      continue;
    }
    size_t close = text.find('}', i + 2);
    if (close == std::string::npos) {
      return Status::InvalidConfig(
          fmt::format("unterminated '${{' in '{}' (write $$ for a literal $)", text));
    }
    std::string inner = text.substr(i + 2, close - i - 2);
    std::string name = inner;
    std::optional<std::string> fallback;
    size_t dash = inner.find(":-");
    if (dash != std::string::npos) {
      name = inner.substr(0, dash);
      fallback = inner.substr(dash + 2);
    }
    bool valid_name = !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0]));
    for (char ch : name)
      valid_name = valid_name && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_');
    if (!valid_name) {
      return Status::InvalidConfig(
          fmt::format("'${{{}}}' is not a valid environment reference (expected ${{NAME}} or "
                      "${{NAME:-default}})",
                      inner));
    }
    const char* value = std::getenv(name.c_str());
    if (value && (*value || !fallback)) {
      out += value;
    } else if (fallback) {
      out += *fallback;
    } else {
      return Status::InvalidConfig(fmt::format(
          "environment variable '{}' is not set (set it, or give a default: ${{{}:-value}})", name,
          name));
    }
    i = close;
  }
  return out;
}

namespace {

// The first `$NAME` in `text` that ExpandEnv keeps as it is (outside `${...}` and `$$`), or
// empty: most likely meant as an environment reference.
std::string BareEnvReference(const std::string& text) {
  auto name_char = [](char ch, bool first) {
    return std::isalpha(static_cast<unsigned char>(ch)) || ch == '_' ||
           (!first && std::isdigit(static_cast<unsigned char>(ch)));
  };
  for (size_t i = 0; i + 1 < text.size(); ++i) {
    if (text[i] != '$') continue;
    if (text[i + 1] == '$') {
      ++i;
    } else if (text[i + 1] == '{') {
      const size_t close = text.find('}', i + 2);
      if (close == std::string::npos) return "";
      i = close;
    } else if (name_char(text[i + 1], true)) {
      size_t end = i + 2;
      while (end < text.size() && name_char(text[end], false)) ++end;
      return text.substr(i + 1, end - i - 1);
    }
  }
  return "";
}

// Expands every scalar in place; yaml-cpp keeps the marks of assigned nodes.
void ExpandTree(YAML::Node node, const std::string& file, Diagnostics& diags) {
  if (node.IsScalar()) {
    const std::string& s = node.Scalar();
    if (s.find('$') == std::string::npos) return;
    if (const std::string bare = BareEnvReference(s); !bare.empty()) {
      diags.Warning(Mark::Of(file, node), "",
                    fmt::format("'${0}' is kept as it is: only ${{{0}}} reads the environment "
                                "variable (write $${0} for a literal '${0}')",
                                bare));
    }
    auto r = ExpandEnv(s);
    if (!r.ok()) {
      diags.Error(Mark::Of(file, node), "", r.status().message());
      return;
    }
    if (*r != s) node = *r;
  } else if (node.IsMap()) {
    for (auto it = node.begin(); it != node.end(); ++it) ExpandTree(it->second, file, diags);
  } else if (node.IsSequence()) {
    for (auto item : node) ExpandTree(item, file, diags);
  }
}

bool ParseInt64(const std::string& s, int64_t* out) {
  const char* b = s.data();
  if (!s.empty() && s[0] == '+') ++b;
  auto r = std::from_chars(b, s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size() && b != s.data() + s.size();
}

// An integer that fits int64: larger ones are rejected here, not turned into garbage later.
bool IsInt(const std::string& s) {
  int64_t v;
  return ParseInt64(s, &v);
}

bool IsNumber(const std::string& s) {
  if (s.empty()) return false;
  char* end = nullptr;
  std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}

bool IsBool(const std::string& s) {
  static const std::set<std::string> kBools = {"true", "false", "True", "False", "yes",
                                               "no",   "on",    "off",  "TRUE",  "FALSE"};
  return kBools.count(s) > 0;
}

// Checks one key's value against its declared type; returns the problem, or empty. `where` is set
// to the offending item of a list or mapping, when that is what is wrong.
std::string CheckValue(const ConfigField& f, const YAML::Node& v, YAML::Node* where) {
  auto expected = [&](const char* what) {
    return fmt::format("'{}' must be {}, found {}", f.name, what, KindName(v));
  };
  switch (f.type) {
    case ConfigType::kString:
    case ConfigType::kPath:
      if (!v.IsScalar()) return expected("a string");
      if (!f.choices.empty()) {
        bool found = false;
        std::string all;
        for (const auto& c : f.choices) {
          found = found || c == v.Scalar();
          all += (all.empty() ? "" : ", ") + c;
        }
        if (!found) {
          auto near = ClosestMatch(v.Scalar(), f.choices);
          return fmt::format("'{}' must be one of {}, found '{}'{}", f.name, all, v.Scalar(),
                             near ? fmt::format(" (did you mean '{}'?)", *near) : "");
        }
      }
      return "";
    case ConfigType::kInt:
      if (!v.IsScalar() || !IsInt(v.Scalar()))
        return fmt::format("'{}' must be an integer, found '{}'", f.name,
                           v.IsScalar() ? v.Scalar() : KindName(v));
      return "";
    case ConfigType::kFloat:
      if (!v.IsScalar() || !IsNumber(v.Scalar()))
        return fmt::format("'{}' must be a number, found '{}'", f.name,
                           v.IsScalar() ? v.Scalar() : KindName(v));
      return "";
    case ConfigType::kBool:
      if (!v.IsScalar() || !IsBool(v.Scalar()))
        return fmt::format("'{}' must be true or false, found '{}'", f.name,
                           v.IsScalar() ? v.Scalar() : KindName(v));
      return "";
    case ConfigType::kStringList:
      if (v.IsScalar()) return "";  // a single string is a list of one
      if (!v.IsSequence()) return expected("a list of strings");
      for (size_t i = 0; i < v.size(); ++i) {
        if (v[i].IsScalar()) continue;
        where->reset(v[i]);
        return fmt::format("'{}' must be a list of strings, but item {} is {}", f.name, i + 1,
                           KindName(v[i]));
      }
      return "";
    case ConfigType::kStringMap:
      if (!v.IsMap()) return expected("a mapping of strings");
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (it->second.IsScalar()) continue;
        where->reset(it->second);
        return fmt::format("'{}' must be a mapping of strings, but the value of '{}' is {}", f.name,
                           it->first.Scalar(), KindName(it->second));
      }
      return "";
    case ConfigType::kAny: return "";
  }
  return "";
}

struct Section {
  const char* key;
  Role role;
};
constexpr Section kSections[] = {
    {"sources", Role::kSource}, {"transforms", Role::kTransform}, {"sinks", Role::kSink}};

void ParseNode(const std::string& name, const YAML::Node& key_node, const YAML::Node& body,
               Role role, PipelineDecl& decl, const Registry& registry, Diagnostics& diags) {
  NodeConfig cfg;
  cfg.name = name;
  cfg.role = role;
  cfg.mark = Mark::Of(decl.file, body.IsDefined() ? body : key_node);
  cfg.base_dir = decl.base_dir;
  cfg.pipeline = decl.name;
  cfg.node = body;
  cfg.source_text = decl.text;
  if (!body.IsMap()) {
    diags.Error(cfg.mark, name,
                fmt::format("node '{}' must be a mapping with a 'type' key, found {}", name,
                            KindName(body)));
    decl.nodes.push_back(std::move(cfg));
    return;
  }
  if (body["<<"].IsDefined()) {
    // A merge key, reported by CheckTree: the keys it was meant to bring in are missing, and
    // reporting each of them would only repeat that.
    decl.nodes.push_back(std::move(cfg));
    return;
  }
  if (body["type"].IsDefined() && body["type"].IsScalar()) {
    cfg.type = body["type"].Scalar();
    cfg.spec = registry.Find(role, cfg.type);  // for messages; checked again below
  }
  if (role != Role::kSource && cfg.Has("inputs") &&
      (cfg.node["inputs"].IsSequence() || cfg.node["inputs"].IsScalar())) {
    const YAML::Node& in = cfg.node["inputs"];
    if (in.IsScalar()) {
      cfg.inputs.push_back(in.Scalar());
      cfg.input_marks.push_back(Mark::Of(decl.file, in));
    } else {
      for (const auto& item : in) {
        if (!item.IsScalar()) continue;
        cfg.inputs.push_back(item.Scalar());
        cfg.input_marks.push_back(Mark::Of(decl.file, item));
      }
    }
    if (cfg.inputs.empty() && in.size() == 0) {
      diags.Error(cfg.MarkOf("inputs"), name,
                  fmt::format("{}: 'inputs' is empty; name the nodes it reads from", cfg.Prefix()));
    }
  }
  if (!body["type"].IsDefined() || !body["type"].IsScalar()) {
    diags.Error(cfg.mark, name,
                fmt::format("node '{}' has no 'type' (one of: {})", name,
                            fmt::join(registry.Names(role), ", ")));
    decl.nodes.push_back(std::move(cfg));
    return;
  }
  cfg.type = body["type"].Scalar();
  cfg.spec = registry.Find(role, cfg.type);
  if (!cfg.spec) {
    auto names = registry.Names(role);
    auto near = ClosestMatch(cfg.type, names);
    auto roles = registry.RolesOf(cfg.type);
    std::vector<std::string> role_names;
    for (Role r : roles) role_names.push_back(RoleName(r));
    std::string why = roles.empty() ? fmt::format("unknown {} type '{}'", RoleName(role), cfg.type)
                                    : fmt::format("'{}' is a {}, not a {}", cfg.type,
                                                  fmt::join(role_names, " or a "), RoleName(role));
    diags.Error(Mark::Of(decl.file, body["type"]), name,
                fmt::format("node '{}': {}{} (known {}s: {})", name, why,
                            near ? fmt::format(", did you mean '{}'?", *near) : "", RoleName(role),
                            fmt::join(names, ", ")));
    // Kept without a spec so that nodes reading from it report no second, misleading error.
    decl.nodes.push_back(std::move(cfg));
    return;
  }
  // Keys: the operator's own plus the common ones for its role.
  std::vector<const ConfigField*> fields;
  for (const auto& f : cfg.spec->fields) fields.push_back(&f);
  for (const auto& f : CommonNodeFields(role)) fields.push_back(&f);
  std::vector<std::string> names;
  for (const auto* f : fields) names.push_back(f->name);
  bool ok = true;
  for (auto it = body.begin(); it != body.end(); ++it) {
    if (!it->first.IsScalar()) continue;  // reported by CheckTree
    std::string key = it->first.Scalar();
    const ConfigField* f = nullptr;
    for (const auto* cand : fields)
      if (cand->name == key) f = cand;
    if (!f) {
      auto near = ClosestMatch(key, names);
      diags.Error(Mark::Of(decl.file, it->first), name,
                  fmt::format("{}: unknown key '{}'{} (keys: {})", cfg.Prefix(), key,
                              near ? fmt::format(" (did you mean '{}'?)", *near) : "",
                              fmt::join(names, ", ")));
      ok = false;
      continue;
    }
    YAML::Node where = it->second;
    std::string problem = CheckValue(*f, it->second, &where);
    if (!problem.empty()) {
      diags.Error(Mark::Of(decl.file, where), name, fmt::format("{}: {}", cfg.Prefix(), problem));
      ok = false;
    }
  }
  for (const auto* f : fields) {
    if (f->required && !cfg.Has(f->name)) {
      diags.Error(
          cfg.mark, name,
          fmt::format("{}: missing required key '{}' ({})", cfg.Prefix(), f->name, f->description));
      ok = false;
    }
  }
  // A node with bad keys is still wired (so its neighbours report nothing misleading) but not
  // planned: its operator would only repeat the problem.
  cfg.keys_ok = ok;
  decl.nodes.push_back(std::move(cfg));
}

void ParseSettings(const YAML::Node& root, PipelineDecl& decl, Diagnostics& diags) {
  const YAML::Node s = root["settings"];
  if (s.IsDefined() && !s.IsNull()) {
    if (!s.IsMap()) {
      diags.Error(Mark::Of(decl.file, s), "",
                  fmt::format("'settings' must be a mapping, found {}", KindName(s)));
    } else {
      for (auto it = s.begin(); it != s.end(); ++it) {
        if (!it->first.IsScalar()) continue;  // reported by CheckTree
        std::string key = it->first.Scalar();
        const YAML::Node v = it->second;  // a copy: `it->` yields a temporary
        int64_t* target = nullptr;
        if (key == "batch_size") target = &decl.settings.batch_size;
        if (key == "max_in_flight") target = &decl.settings.max_in_flight;
        if (!target) {
          auto near = ClosestMatch(key, {"batch_size", "max_in_flight"});
          diags.Error(Mark::Of(decl.file, it->first), "",
                      fmt::format("settings: unknown key '{}'{} (keys: batch_size, max_in_flight)",
                                  key, near ? fmt::format(" (did you mean '{}'?)", *near) : ""));
          continue;
        }
        int64_t value = 0;
        if (!v.IsScalar() || !ParseInt64(v.Scalar(), &value) || value < 1 || value > 1000000) {
          diags.Error(Mark::Of(decl.file, v), "",
                      fmt::format("settings: '{}' must be an integer from 1 to 1000000, found {}",
                                  key, v.IsScalar() ? "'" + v.Scalar() + "'" : KindName(v)));
          continue;
        }
        *target = value;
      }
    }
  }
  decl.settings.dead_letter_path = decl.name + ".dead-letter.jsonl";
  decl.settings.dead_letter_mark = Mark{decl.file, 0, 0};
  const YAML::Node d = root["dead_letter"];
  if (d.IsDefined() && !d.IsNull()) {
    if (!d.IsMap()) {
      diags.Error(Mark::Of(decl.file, d), "",
                  d.IsScalar() ? fmt::format("'dead_letter' must be a mapping: write "
                                             "'dead_letter: {{path: {}}}'",
                                             d.Scalar())
                               : fmt::format("'dead_letter' must be a mapping: {{path: FILE}}, "
                                             "found {}",
                                             KindName(d)));
      return;
    }
    for (auto it = d.begin(); it != d.end(); ++it) {
      if (!it->first.IsScalar()) continue;  // reported by CheckTree
      std::string key = it->first.Scalar();
      if (key != "path") {
        diags.Error(Mark::Of(decl.file, it->first), "",
                    fmt::format("dead_letter: unknown key '{}' (keys: path)", key));
      } else if (!it->second.IsScalar() || it->second.Scalar().empty()) {
        diags.Error(Mark::Of(decl.file, it->second), "",
                    fmt::format("dead_letter: 'path' must be a file name, found {}",
                                it->second.IsScalar() ? "''" : KindName(it->second)));
      } else if (std::filesystem::is_directory(ResolvePath(decl.base_dir, it->second.Scalar()))) {
        diags.Error(Mark::Of(decl.file, it->second), "",
                    fmt::format("dead_letter: 'path' is the folder '{}'; name a file in it, e.g. "
                                "{}/{}.dead-letter.jsonl",
                                it->second.Scalar(), it->second.Scalar(), decl.name));
      } else {
        decl.settings.dead_letter_path = ResolvePath(decl.base_dir, it->second.Scalar());
        decl.settings.dead_letter_mark = Mark::Of(decl.file, it->second);
      }
    }
  }
}

}  // namespace

std::optional<PipelineDecl> ParsePipelineText(const std::string& text, const std::string& file,
                                              const std::string& base_dir, const Registry& registry,
                                              Diagnostics& diags) {
  std::optional<YAML::Node> loaded = LoadYamlText(text, file, kPipelineFileKind, diags);
  if (!loaded) return std::nullopt;
  YAML::Node root = *loaded;
  if (!root.IsMap()) {
    constexpr const char* kShape =
        "a pipeline file is a mapping with 'sources', 'transforms' and 'sinks'";
    if (root.IsNull()) {
      diags.Error(
          Mark{file, 1, 1}, "",
          fmt::format("the file holds no pipeline (it is empty, or only comments); {}", kShape));
    } else if (root.IsSequence()) {
      diags.Error(Mark::Of(file, root), "", fmt::format("found a list; {}", kShape));
    } else {
      constexpr size_t kShown = 40;
      std::string shown = root.Scalar().substr(0, kShown);
      if (root.Scalar().size() > kShown) shown += "...";
      diags.Error(Mark::Of(file, root), "", fmt::format("found the text '{}'; {}", shown, kShape));
    }
    return std::nullopt;
  }
  PipelineDecl decl;
  decl.file = file;
  decl.base_dir = base_dir;
  decl.text = std::make_shared<const std::string>(text);
  try {
    if (!CheckTree(root, file, diags)) return std::nullopt;
    ExpandTree(root, file, diags);
    static const std::vector<std::string> kTopKeys = {"name",        "description", "sources",
                                                      "transforms",  "sinks",       "settings",
                                                      "dead_letter", "tests"};
    for (auto it = root.begin(); it != root.end(); ++it) {
      if (!it->first.IsScalar()) continue;  // reported by CheckTree
      std::string key = it->first.Scalar();
      if (std::find(kTopKeys.begin(), kTopKeys.end(), key) == kTopKeys.end()) {
        auto near = ClosestMatch(key, kTopKeys);
        diags.Error(Mark::Of(file, it->first), "",
                    fmt::format("unknown top-level key '{}'{} (keys: {})", key,
                                near ? fmt::format(" (did you mean '{}'?)", *near) : "",
                                fmt::join(kTopKeys, ", ")));
      }
    }
    for (const char* key : {"name", "description"}) {
      const YAML::Node v = root[key];
      if (v.IsDefined() && !v.IsNull() && !v.IsScalar()) {
        diags.Error(Mark::Of(file, v), "",
                    fmt::format("'{}' must be a string, found {}", key, KindName(v)));
      }
    }
    if (root["name"].IsDefined() && root["name"].IsScalar()) {
      decl.name = root["name"].Scalar();
    } else {
      decl.name = std::filesystem::path(file).stem().string();
    }
    if (root["description"].IsDefined() && root["description"].IsScalar())
      decl.description = root["description"].Scalar();
    ParseSettings(root, decl, diags);
    std::map<std::string, const char*> seen;  // node name: its section
    for (const auto& section : kSections) {
      const YAML::Node sec = root[section.key];
      if (!sec.IsDefined() || sec.IsNull()) {
        if (section.role != Role::kTransform) {
          diags.Error(Mark{file, 1, 1}, "",
                      fmt::format("missing '{}': a pipeline needs at least one {}", section.key,
                                  RoleName(section.role)));
        }
        continue;
      }
      if (!sec.IsMap()) {
        diags.Error(Mark::Of(file, sec), "",
                    fmt::format("'{}' must be a mapping of node names to nodes, found {}",
                                section.key, KindName(sec)));
        continue;
      }
      for (auto it = sec.begin(); it != sec.end(); ++it) {
        if (!it->first.IsScalar()) continue;  // reported by CheckTree
        std::string name = it->first.Scalar();
        if (name.empty()) {
          diags.Error(Mark::Of(file, it->first), "",
                      fmt::format("a node of '{}' has an empty name; name it", section.key));
          continue;
        }
        if (auto [first, inserted] = seen.emplace(name, section.key); !inserted) {
          // Twice in one section is a key given twice, which CheckTree reported.
          if (first->second == section.key) continue;
          diags.Error(Mark::Of(file, it->first), name,
                      fmt::format("node name '{}' is used twice; names are unique across "
                                  "sources, transforms and sinks",
                                  name));
          continue;
        }
        ParseNode(name, it->first, it->second, section.role, decl, registry, diags);
      }
    }
    decl.tests = root["tests"];
  } catch (const YAML::Exception& e) {
    diags.Error(Mark{file, e.mark.line + 1, e.mark.column + 1}, "",
                fmt::format("invalid pipeline: {}", e.msg));
    return std::nullopt;
  }
  return decl;
}

std::optional<PipelineDecl> ParsePipelineFile(const std::string& path, const Registry& registry,
                                              Diagnostics& diags) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    std::string dir = path;
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    diags.Error(Mark{path, 0, 0}, "",
                fmt::format("'{}' is a folder; give pipeline files (e.g. {}/*.yaml)", path, dir));
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    diags.Error(Mark{path, 0, 0}, "",
                fmt::format("cannot read pipeline file '{}': {}", path, std::strerror(errno)));
    return std::nullopt;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string base = std::filesystem::path(path).parent_path().string();
  return ParsePipelineText(ss.str(), path, base, registry, diags);
}

}  // namespace sluice
