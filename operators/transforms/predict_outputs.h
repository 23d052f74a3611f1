// What the predict operator adds to a row, shared by its backends (in-process XGBoost and the
// remote model servers of predict_http.h): the output specs, the rows that cannot be scored, and
// turning one row's scores into output values.
#pragma once

#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "engine/batch.h"
#include "engine/model.h"
#include "engine/operator.h"

namespace sluice {

// What one output field holds.
struct OutputSpec {
  enum Kind {
    kLabel,
    kClass,
    kProbability,
    kClassProbability,
    kValue,
    kModelName,
    kModelVersion,
    kResponseKey,  // json backend: a key of the server's answer
  };
  std::string field;
  Kind kind = kLabel;
  std::string class_ref;  // kClassProbability: class index or name, as written
  int class_index = -1;   // resolved against the model when planning
  std::string key;        // kResponseKey: the key in the answer
  TypeId type = TypeId::kFloat64;  // kResponseKey: the field's type
  bool typed = false;              // kResponseKey: the type was written in the config
};

inline TypeId OutputType(const OutputSpec& o) {
  switch (o.kind) {
    case OutputSpec::kLabel: return TypeId::kInt64;
    case OutputSpec::kClass:
    case OutputSpec::kModelName:
    case OutputSpec::kModelVersion: return TypeId::kString;
    case OutputSpec::kResponseKey: return o.type;
    default: return TypeId::kFloat64;
  }
}

inline bool NeedsProbabilities(const OutputSpec& o) {
  return o.kind == OutputSpec::kProbability || o.kind == OutputSpec::kClassProbability;
}

// Rows with a null or non-finite feature cannot be scored faithfully. Any string is a valid
// categorical value (an unseen one is a missing value, not an error); only floats can be
// non-finite.
struct Unscorable {
  std::vector<uint32_t> good;                        // the rows that can be scored
  std::vector<std::pair<size_t, std::string>> rows;  // the others, with the reason
  // The batch of the good rows (the input itself when every row is fine).
  BatchPtr Scorable(const BatchPtr& in) const {
    return rows.empty() ? in : BatchPtr(in->Take(good));
  }
  void Reject(const Batch& in, NodeContext& ctx) const {
    for (const auto& [row, why] : rows) ctx.Reject(in, row, why);
  }
};

inline Unscorable FindUnscorable(const Batch& in, const std::vector<size_t>& features) {
  Unscorable out;
  for (size_t r = 0; r < in.num_rows(); ++r) {
    std::string bad;
    for (size_t j = 0; j < features.size() && bad.empty(); ++j) {
      const Column& c = in.column(features[j]);
      if (c.IsNull(r)) {
        bad = fmt::format("feature '{}' is null", in.schema()->field(features[j]).name);
      } else if (c.type == TypeId::kFloat64 && !std::isfinite(c.doubles[r])) {
        bad = fmt::format("feature '{}' is {}", in.schema()->field(features[j]).name,
                          c.doubles[r]);
      }
    }
    if (bad.empty()) out.good.push_back(static_cast<uint32_t>(r));
    else out.rows.emplace_back(r, std::move(bad));
  }
  return out;
}

// Dead-letters the unscorable rows and returns the batch of the others.
inline BatchPtr DropUnscorable(const BatchPtr& in, const std::vector<size_t>& features,
                               NodeContext& ctx) {
  Unscorable u = FindUnscorable(*in, features);
  u.Reject(*in, ctx);
  return u.Scorable(in);
}

// Appends one row's outputs to `cols` (one column per output, in order). `row` holds `width`
// scores: class probabilities when width > 1, a binary model's probability of class 1 (or a
// regressor's value) when width == 1; or, when `direct`, row[0] is the prediction itself, a class
// index or a value, as model servers answer (then no output needs probabilities).
template <typename T>
size_t PredictedLabel(const T* row, size_t width, bool direct) {
  size_t label = 0;
  if (direct) {
    label = row[0] < 0 ? 0 : static_cast<size_t>(std::llround(row[0]));
  } else if (width == 1) {
    label = row[0] > 0.5f ? 1 : 0;
  } else {
    for (size_t c = 1; c < width; ++c)
      if (row[c] > row[label]) label = c;
  }
  return label;
}

template <typename T>
void AppendPrediction(const std::vector<std::shared_ptr<Column>>& cols,
                      const std::vector<OutputSpec>& outputs, const T* row, size_t width,
                      bool direct, const ModelInfo& info) {
  const size_t label = PredictedLabel(row, width, direct);
  for (size_t i = 0; i < outputs.size(); ++i) {
    const OutputSpec& o = outputs[i];
    Column& col = *cols[i];
    switch (o.kind) {
      case OutputSpec::kLabel: col.AppendInt(static_cast<int64_t>(label)); break;
      case OutputSpec::kClass:
        col.AppendString(label < info.classes.size() ? info.classes[label]
                                                     : std::to_string(label));
        break;
      case OutputSpec::kProbability:
        col.AppendDouble(width == 1 ? (label ? row[0] : 1.0 - row[0]) : row[label]);
        break;
      case OutputSpec::kClassProbability:
        if (width == 1) {
          col.AppendDouble(o.class_index == 1 ? row[0] : 1.0 - row[0]);
        } else {
          col.AppendDouble(static_cast<size_t>(o.class_index) < width ? row[o.class_index] : NAN);
        }
        break;
      case OutputSpec::kValue: col.AppendDouble(row[0]); break;
      case OutputSpec::kModelName: col.AppendString(info.name); break;
      case OutputSpec::kModelVersion: col.AppendString(info.version); break;
      case OutputSpec::kResponseKey: col.AppendNull(); break;  // not a score: json backend only
    }
  }
}

}  // namespace sluice
