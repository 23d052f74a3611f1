#include "engine/operator.h"

#include <algorithm>
#include <cassert>

#include "engine/dead_letter.h"
#include "engine/metrics.h"

namespace sluice {

void NodeContext::Reject(const Batch& batch, size_t row, std::string_view reason) {
  rejected_.fetch_add(1, std::memory_order_relaxed);
  if (rejected_metric_) rejected_metric_->Inc();
  if (!dead_letter_) return;
  DeadLetterRecord r;
  r.node = node_;
  r.reason = std::string(reason);
  r.input = std::string(batch.RawBytes(row));
  r.origin = batch.Origin(row);
  r.position = batch.Position(row);
  r.partition = batch.Partition(row);
  dead_letter_->Write(std::move(r));
}

void NodeContext::RejectRaw(const RawRecords& raw, size_t index, std::string_view reason) {
  rejected_.fetch_add(1, std::memory_order_relaxed);
  if (rejected_metric_) rejected_metric_->Inc();
  if (!dead_letter_) return;
  DeadLetterRecord r;
  r.node = node_;
  r.reason = std::string(reason);
  r.input = std::string(raw.Get(index));
  r.origin = raw.OriginOf(index);
  r.position = raw.positions[index];
  r.partition = raw.PartitionOf(index);
  dead_letter_->Write(std::move(r));
}

void Registry::Add(OperatorSpec spec) {
  auto key = std::make_pair(static_cast<int>(spec.role), spec.name);
  assert(!specs_.count(key) && "operator registered twice");
  specs_[key] = std::make_unique<OperatorSpec>(std::move(spec));
}

const OperatorSpec* Registry::Find(Role role, std::string_view name) const {
  auto it = specs_.find(std::make_pair(static_cast<int>(role), std::string(name)));
  return it == specs_.end() ? nullptr : it->second.get();
}

std::vector<Role> Registry::RolesOf(std::string_view name) const {
  std::vector<Role> out;
  for (const auto& [key, spec] : specs_)
    if (spec->name == name) out.push_back(spec->role);
  return out;
}

std::vector<const OperatorSpec*> Registry::All() const {
  std::vector<const OperatorSpec*> out;
  for (const auto& [key, spec] : specs_) out.push_back(spec.get());
  return out;  // the key orders by role, then name
}

std::vector<std::string> Registry::Names(Role role) const {
  std::vector<std::string> out;
  for (const auto& [key, spec] : specs_)
    if (spec->role == role) out.push_back(spec->name);
  return out;
}

const std::vector<ConfigField>& CommonNodeFields(Role role) {
  static const std::vector<ConfigField> kSource = {
      {"type", ConfigType::kString, true, "", "the operator: one of the sources below", {}},
  };
  static const std::vector<ConfigField> kOthers = {
      {"type", ConfigType::kString, true, "", "the operator", {}},
      {"inputs",
       ConfigType::kStringList,
       true,
       "",
       "names of the nodes whose output this node reads",
       {}},
  };
  return role == Role::kSource ? kSource : kOthers;
}

}  // namespace sluice
