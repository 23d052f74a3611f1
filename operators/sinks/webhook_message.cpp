#include "operators/sinks/webhook_message.h"

#include <fmt/format.h>

#include "engine/json.h"
#include "operators/transforms/field_check.h"

namespace sluice {
namespace {

constexpr std::string_view kEllipsis = "\xE2\x80\xA6";  // U+2026, marks a shortened line

// A cell as text: strings as they are, timestamps in ISO 8601, numbers and bools as JSON writes
// them; with a spec, formatted by {fmt}. Throws fmt::format_error for a spec that does not fit
// the type (checked at plan time, so never at run time).
void AppendCellText(std::string& out, const Column& c, size_t row, const std::string& spec) {
  if (c.IsNull(row)) {
    out.append("null");
    return;
  }
  if (spec.empty()) {
    if (c.type == TypeId::kString)
      out.append(c.strings[row]);
    else if (c.type == TypeId::kTimestamp)
      out.append(FormatTimestamp(c.ints[row]));
    else
      AppendJsonCell(out, c, row);
    return;
  }
  const std::string f = "{:" + spec + "}";
  switch (c.type) {
    case TypeId::kBool: out.append(fmt::format(fmt::runtime(f), c.ints[row] != 0)); break;
    case TypeId::kInt64: out.append(fmt::format(fmt::runtime(f), c.ints[row])); break;
    case TypeId::kFloat64: out.append(fmt::format(fmt::runtime(f), c.doubles[row])); break;
    case TypeId::kString: out.append(fmt::format(fmt::runtime(f), c.strings[row])); break;
    case TypeId::kTimestamp:
      out.append(fmt::format(fmt::runtime(f), FormatTimestamp(c.ints[row])));
      break;
  }
}

void AppendSlackEscaped(std::string& out, std::string_view s) {
  for (char ch : s) {
    if (ch == '&')
      out.append("&amp;");
    else if (ch == '<')
      out.append("&lt;");
    else if (ch == '>')
      out.append("&gt;");
    else
      out.push_back(ch);
  }
}

// Cuts `s` to at most `max` bytes on a UTF-8 character boundary, ending in an ellipsis.
void Shorten(std::string& s, size_t max) {
  if (s.size() <= max) return;
  size_t cut = max > kEllipsis.size() ? max - kEllipsis.size() : 0;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  // Nor inside a Slack entity (`&amp;`, `&lt;`, `&gt;`), which would show as a stray `&am`.
  const size_t amp = cut > 0 ? s.rfind('&', cut - 1) : std::string::npos;
  if (amp != std::string::npos && cut - amp < 5 && s.find(';', amp) >= cut) cut = amp;
  s.resize(cut);
  s.append(kEllipsis);
}

}  // namespace

Result<TextTemplate> TextTemplate::Parse(const NodeConfig& node, const std::string& key,
                                         const Schema& input) {
  const std::string text = node.String(key);
  auto error = [&](const std::string& message) { return node.Error(key, message); };
  TextTemplate t;
  t.parts_.push_back({});
  for (size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (ch == '}') {
      if (i + 1 < text.size() && text[i + 1] == '}') {
        t.parts_.back().text.push_back('}');
        ++i;
        continue;
      }
      return error(
          fmt::format("unmatched '}}' at character {} of the template (write }}}} for a "
                      "literal brace)",
                      i + 1));
    }
    if (ch != '{') {
      t.parts_.back().text.push_back(ch);
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == '{') {
      t.parts_.back().text.push_back('{');
      ++i;
      continue;
    }
    const size_t close = text.find('}', i);
    if (close == std::string::npos) {
      return error(
          fmt::format("unterminated '{{' at character {} of the template (write {{{{ "
                      "for a literal brace)",
                      i + 1));
    }
    std::string inner = text.substr(i + 1, close - i - 1);
    std::string spec;
    if (size_t colon = inner.find(':'); colon != std::string::npos) {
      spec = inner.substr(colon + 1);
      inner.resize(colon);
    }
    const int col = input.IndexOf(inner);
    if (inner.empty() || col < 0) {
      return error(fmt::format("template placeholder {{{}}}: {}", inner,
                               NotAFieldMessage(node, inner, input)));
    }
    if (!spec.empty()) {
      // Format a value of the field's type now, so a spec that does not fit fails here.
      Column probe(input.field(static_cast<size_t>(col)).type);
      probe.ints.push_back(0);
      probe.doubles.push_back(0);
      probe.strings.emplace_back();
      std::string scratch;
      try {
        AppendCellText(scratch, probe, 0, spec);
      } catch (const fmt::format_error& e) {
        return error(
            fmt::format("template placeholder {{{}:{}}}: '{}' is not a format for {} "
                        "field '{}' ({})",
                        inner, spec, spec, TypeName(probe.type), inner, e.what()));
      }
    }
    t.parts_.back().column = col;
    t.parts_.back().spec = std::move(spec);
    t.parts_.push_back({});
    i = close;
  }
  return t;
}

void TextTemplate::Render(const Batch& batch, size_t row, bool escape_slack,
                          std::string& out) const {
  std::string cell;
  for (const Part& p : parts_) {
    out.append(p.text);
    if (p.column < 0) continue;
    if (!escape_slack) {
      AppendCellText(out, batch.column(p.column), row, p.spec);
      continue;
    }
    cell.clear();
    AppendCellText(cell, batch.column(p.column), row, p.spec);
    AppendSlackEscaped(out, cell);
  }
}

Result<WebhookEncoder> WebhookEncoder::Parse(const NodeConfig& node, const Schema& input) {
  WebhookEncoder e;
  const std::string format = node.String("format");
  e.format_ = format == "discord" ? WebhookFormat::kDiscord
              : format == "json"  ? WebhookFormat::kJson
                                  : WebhookFormat::kSlack;
  if (node.Has("template")) {
    if (e.format_ == WebhookFormat::kJson) {
      return node.Error("template",
                        "format json posts the row as a JSON object and takes no "
                        "template (use format slack or discord for text)");
    }
    SLUICE_ASSIGN_OR_RETURN(e.text_, TextTemplate::Parse(node, "template", input));
    e.templated_ = true;
  }
  e.batch_ = node.Bool("batch");
  const int64_t max = node.Int("max_message_bytes");
  if (max < 16) {
    return node.Error("max_message_bytes", fmt::format("must be at least 16 bytes, not {}", max));
  }
  e.max_bytes_ = static_cast<size_t>(max);
  return e;
}

void WebhookEncoder::AppendLine(const Batch& batch, size_t row, std::string& out) const {
  if (templated_) {
    text_.Render(batch, row, format_ == WebhookFormat::kSlack, out);
    return;
  }
  AppendRowJson(out, batch, row);
}

std::string WebhookEncoder::Wrap(const std::string& text) const {
  std::string body;
  switch (format_) {
    case WebhookFormat::kSlack:
      body = "{\"text\":";
      AppendJsonString(body, text);
      body.push_back('}');
      break;
    case WebhookFormat::kDiscord:
      // No @everyone, role or user pings from the text: an alert's data must not notify people.
      body = "{\"content\":";
      AppendJsonString(body, text);
      body.append(",\"allowed_mentions\":{\"parse\":[]}}");
      break;
    case WebhookFormat::kJson: body = text; break;
  }
  return body;
}

std::vector<WebhookMessage> WebhookEncoder::Encode(const Batch& batch) const {
  std::vector<WebhookMessage> out;
  const size_t n = batch.num_rows();
  const bool json = format_ == WebhookFormat::kJson;
  std::string line;
  if (!batch_) {
    out.reserve(n);
    for (size_t r = 0; r < n; ++r) {
      line.clear();
      AppendLine(batch, r, line);
      if (!json) Shorten(line, max_bytes_);
      out.push_back({r, 1, Wrap(line)});
    }
    return out;
  }
  // Lines (text) or JSON objects (an array, for json) gathered until the next would not fit.
  std::string joined;
  size_t first = 0;
  auto end_message = [&](size_t end) {
    if (end == first) return;
    out.push_back({first, end - first, Wrap(json ? "[" + joined + "]" : joined)});
    joined.clear();
    first = end;
  };
  for (size_t r = 0; r < n; ++r) {
    line.clear();
    AppendLine(batch, r, line);
    if (!json) Shorten(line, max_bytes_);
    const size_t extra = (json ? 2 : 0) + (joined.empty() ? 0 : 1);
    if (!joined.empty() && joined.size() + extra + line.size() > max_bytes_) end_message(r);
    if (!joined.empty()) joined.push_back(json ? ',' : '\n');
    joined.append(line);
  }
  end_message(n);
  return out;
}

}  // namespace sluice
