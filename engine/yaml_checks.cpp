// Checks of a pipeline (or test) file's text and YAML tree that yaml-cpp does not make.
#include "engine/yaml_checks.h"

#include <map>
#include <set>
#include <sstream>
#include <utility>

#include <fmt/format.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>

namespace sluice {

namespace {

// yaml-cpp shares an aliased node rather than copying it, so a few lines can describe a tree far
// larger than the file (aliases of aliases) or, with an alias inside its own anchor, one without
// end. This walk runs before anything else recurses into the tree, and stops both. It also
// reports what yaml-cpp accepts silently: a key given twice in one mapping (lookups see only the
// first) and merge keys (`<<: *base`), which YAML 1.2 dropped and yaml-cpp keeps as a plain key.
class TreeCheck {
 public:
  TreeCheck(const std::string& file, Diagnostics& diags) : file_(file), diags_(diags) {}

  // False when the tree is too large or too deep to be walked further.
  bool Run(const YAML::Node& root) {
    Walk(root, 0);
    return !stopped_;
  }

 private:
  static constexpr int kMaxDepth = 1000;        // yaml-cpp parses 500 levels; aliases add more
  static constexpr size_t kMaxNodes = 1000000;  // far more than any pipeline holds

  void Walk(const YAML::Node& node, int depth) {
    if (stopped_) return;
    if (depth > kMaxDepth) {
      stopped_ = true;
      diags_.Error(Mark::Of(file_, node), "",
                   fmt::format("aliases nest mappings and lists more than {} levels deep (an "
                               "alias inside the anchor it names never ends)",
                               kMaxDepth));
      return;
    }
    if (++nodes_ > kMaxNodes) {
      stopped_ = true;
      diags_.Error(Mark::Of(file_, node), "",
                   fmt::format("aliases expand this file to more than {} values; a pipeline "
                               "needs far fewer (are aliases repeating aliases?)",
                               kMaxNodes));
      return;
    }
    if (node.IsSequence()) {
      for (const auto& item : node) Walk(item, depth + 1);
      return;
    }
    if (!node.IsMap()) return;
    std::map<std::string, Mark> keys;
    for (auto it = node.begin(); it != node.end(); ++it) {
      const YAML::Node key = it->first;  // a copy: `it->` yields a temporary
      Walk(key, depth + 1);
      if (!key.IsScalar()) {
        // `? [a, b] : c`: every key of a pipeline is a name; the loops below skip these.
        const Mark m = Mark::Of(file_, key);
        if (reported_.insert({m.line, m.column}).second) {
          diags_.Error(m, "", fmt::format("a key must be a name, found {}", KindName(key)));
        }
      } else {
        const Mark m = Mark::Of(file_, key);
        // Aliased mappings are walked once per alias: report each place once.
        const bool fresh = reported_.insert({m.line, m.column}).second;
        if (key.Scalar() == "<<" && key.Tag() == "?") {
          if (fresh) {
            diags_.Error(m, "",
                         "merge keys ('<<: *name') are not supported: write the keys out, or "
                         "let an alias stand for a whole value (node: *name)");
          }
        } else if (auto [first, inserted] = keys.emplace(key.Scalar(), m); !inserted && fresh) {
          diags_.Error(m, "",
                       fmt::format("key '{}' is given twice in this mapping (first at {}:{}); "
                                   "remove one",
                                   key.Scalar(), first->second.line, first->second.column));
        }
      }
      Walk(it->second, depth + 1);
    }
  }

  const std::string& file_;
  Diagnostics& diags_;
  size_t nodes_ = 0;
  bool stopped_ = false;
  std::set<std::pair<int, int>> reported_;
};

}  // namespace

// Pipeline files are UTF-8 text. The offset of the first byte that is not valid UTF-8 or is a
// control character YAML does not allow (below 0x20 other than tab, LF and CR; DEL), or npos.
// yaml-cpp takes such bytes into scalars, and node names and messages would carry them on.
size_t FirstNonTextByte(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) return i;
      ++i;
      continue;
    }
    // Lead byte: the sequence's length and the smallest code point it may encode (no overlong
    // forms), then continuation bytes; surrogates and code points past U+10FFFF are invalid.
    size_t len = 0;
    uint32_t cp = 0, min = 0;
    if ((c & 0xe0) == 0xc0)
      len = 2, cp = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0)
      len = 3, cp = c & 0x0f, min = 0x800;
    else if ((c & 0xf8) == 0xf0)
      len = 4, cp = c & 0x07, min = 0x10000;
    else
      return i;
    if (i + len > s.size()) return i;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return i;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += len;
  }
  return std::string_view::npos;
}

// The 1-based line and column (in characters) of byte `offset` of valid UTF-8 `text`.
Mark MarkAtOffset(const std::string& file, std::string_view text, size_t offset) {
  Mark m{file, 1, 1};
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++m.line;
      m.column = 1;
    } else if ((static_cast<unsigned char>(text[i]) & 0xc0) != 0x80) {
      ++m.column;
    }
  }
  return m;
}

// A hint for a YAML syntax error at 1-based `line`: the last line up to it indented with a tab,
// the usual cause of "illegal map value" and friends.
std::string TabHint(std::string_view text, int line) {
  int at = 1, tab_line = 0;
  size_t start = 0;
  while (start <= text.size() && at <= line) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view l = text.substr(start, end - start);
    const size_t indent_end = l.find_first_not_of(" \t");
    if (l.substr(0, indent_end).find('\t') != std::string_view::npos) tab_line = at;
    start = end + 1;
    ++at;
  }
  if (tab_line == 0) return "";
  return fmt::format(" (line {} is indented with a tab; YAML indents with spaces only)", tab_line);
}

// Where each of the first documents of `text` starts, from parsing events alone (no tree). The
// loop stops at a document that starts where the one before did: yaml-cpp's parser then makes
// empty documents without end (a ',' outside a flow collection does it), which is how
// YAML::LoadAll never returns on such input.
std::vector<YAML::Mark> DocumentStarts(const std::string& text) {
  class Starts : public YAML::EventHandler {
   public:
    std::vector<YAML::Mark> marks;
    void OnDocumentStart(const YAML::Mark& m) override { marks.push_back(m); }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
    void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  const std::string&) override {}
    void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                         YAML::EmitterStyle::value) override {}
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                    YAML::EmitterStyle::value) override {}
    void OnMapEnd() override {}
  };
  std::istringstream in(text);
  YAML::Parser parser(in);
  Starts starts;
  while (parser.HandleNextDocument(starts)) {
    const auto& m = starts.marks;
    if (m.size() > 2 || (m.size() == 2 && m[0].pos == m[1].pos)) break;
  }
  return starts.marks;
}

std::optional<YAML::Node> LoadYamlText(const std::string& text, const std::string& file,
                                       const YamlFileKind& kind, Diagnostics& diags) {
  if (size_t bad = FirstNonTextByte(text); bad != std::string::npos) {
    const auto byte = static_cast<unsigned char>(text[bad]);
    diags.Error(MarkAtOffset(file, text, bad), "",
                byte < 0x80 ? fmt::format("control character 0x{:02X} in the file; {} is UTF-8 "
                                          "text",
                                          byte, kind.name)
                            : fmt::format("byte 0x{:02X} is not valid UTF-8; {} is UTF-8 text "
                                          "(save it as UTF-8)",
                                          byte, kind.name));
    return std::nullopt;
  }
  try {
    // YAML::Load reads the first document only: a second one would be ignored silently.
    const std::vector<YAML::Mark> starts = DocumentStarts(text);
    if (starts.size() > 1 && starts.back().pos == starts[starts.size() - 2].pos) {
      const YAML::Mark& m = starts.back();
      diags.Error(
          Mark{file, m.line + 1, m.column + 1}, "",
          fmt::format("invalid YAML: unexpected '{}'",
                      m.pos >= 0 && static_cast<size_t>(m.pos) < text.size() ? text.substr(m.pos, 1)
                                                                             : std::string()));
      return std::nullopt;
    }
    if (starts.size() > 1) {
      const YAML::Mark& m = starts[1];
      diags.Error(Mark{file, m.line + 1, m.column + 1}, "",
                  fmt::format("a second YAML document starts here; {}", kind.one_document));
      return std::nullopt;
    }
    return YAML::Load(text);
  } catch (const YAML::DeepRecursion& e) {
    diags.Error(Mark{file, e.mark.line + 1, e.mark.column + 1}, "",
                fmt::format("invalid YAML: mappings and lists nested {} levels deep, more than "
                            "can be read; {}",
                            e.depth(), kind.nesting));
    return std::nullopt;
  } catch (const YAML::Exception& e) {
    Mark m{file, e.mark.line + 1, e.mark.column + 1};
    diags.Error(m, "", fmt::format("invalid YAML: {}{}", e.msg, TabHint(text, m.line)));
    return std::nullopt;
  }
}

bool CheckTree(const YAML::Node& root, const std::string& file, Diagnostics& diags) {
  return TreeCheck(file, diags).Run(root);
}

const char* KindName(const YAML::Node& n) {
  if (n.IsMap()) return "a mapping";
  if (n.IsSequence()) return "a list";
  if (n.IsNull()) return "null";
  return "a scalar";
}

}  // namespace sluice
