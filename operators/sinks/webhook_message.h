// The messages the http (webhook) sink posts: a text template with `{field}` placeholders
// rendered per row, wrapped in the body a chat service expects (Slack's `{"text": ...}`,
// Discord's `{"content": ...}`), or the row itself as a JSON object. With `batch`, consecutive
// rows are joined into one message, one line per row, up to a size limit.
//
// Threading: parsed once at plan time; Encode is const and safe from several threads.
#pragma once

#include <string>
#include <vector>

#include "engine/batch.h"
#include "engine/operator.h"

namespace sluice {

// Text with `{field}` placeholders; `{field:spec}` formats the value with a {fmt} spec
// (`{probability:.2f}`, `{amt:>8}`), `{{` and `}}` are literal braces.
class TextTemplate {
 public:
  // Parses the config value at `key`; errors point at it and name the placeholder.
  static Result<TextTemplate> Parse(const NodeConfig& node, const std::string& key,
                                    const Schema& input);
  // Appends the text for `row`. With `escape_slack`, `&`, `<` and `>` in field values are
  // written as Slack's entities, so data cannot inject links or @-mentions; the template's own
  // text is Slack markup and is kept as it is.
  void Render(const Batch& batch, size_t row, bool escape_slack, std::string& out) const;

 private:
  struct Part {
    std::string text;  // written before the field (if any)
    int column = -1;   // field, or -1
    std::string spec;  // {fmt} spec of the field, without braces and colon
  };
  std::vector<Part> parts_;
};

enum class WebhookFormat { kSlack, kDiscord, kJson };

// One POST: its body and the rows it carries (a contiguous range of the batch).
struct WebhookMessage {
  size_t first_row = 0;
  size_t rows = 0;
  std::string body;
};

class WebhookEncoder {
 public:
  // Reads `format`, `template`, `batch` and `max_message_bytes` of `node`.
  static Result<WebhookEncoder> Parse(const NodeConfig& node, const Schema& input);
  // Every message for the batch, in row order.
  std::vector<WebhookMessage> Encode(const Batch& batch) const;

 private:
  void AppendLine(const Batch& batch, size_t row, std::string& out) const;  // one row's text
  std::string Wrap(const std::string& text) const;                          // the JSON body

  WebhookFormat format_ = WebhookFormat::kSlack;
  TextTemplate text_;
  bool templated_ = false;  // false: the text is the row as JSON
  bool batch_ = false;
  size_t max_bytes_ = 0;
};

}  // namespace sluice
