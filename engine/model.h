// Model directories in MLflow's layout: an `MLmodel` YAML file (flavors, a `signature` of named,
// typed inputs and outputs, metadata) beside the model file. This reads the description; running
// the model is the predict operator's job.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "engine/status.h"
#include "engine/types.h"

namespace sluice {

struct ModelInfo {
  std::string dir;
  std::string name;       // metadata.name, else the directory name
  std::string version;    // metadata.version, else ""
  std::string flavor;     // "xgboost"
  std::string data_path;  // the model file, absolute or relative to the working directory
  std::string model_class;
  std::vector<Field> inputs;         // signature inputs, in order
  std::vector<Field> outputs;        // signature outputs (names may be empty)
  std::vector<std::string> classes;  // metadata.classes, for classifiers
  // Categorical inputs: XGBoost stores only category codes, so the training categories of each
  // string input are saved with the model, in code order (category i has code i), in the JSON
  // file metadata.categories names: {"PU_DO": ["100_1", ...], ...}. Empty when none is named.
  std::string categories_path;
  std::map<std::string, std::vector<std::string>> categories;
  // The reference profile of the training data (metadata.profile: binned inputs and
  // predictions), for drift monitoring; empty when the model has none.
  std::string profile_path;
};

// MLflow signature type names: double, float, long, integer, boolean, string, datetime.
std::optional<TypeId> MlflowType(std::string_view name);

Result<ModelInfo> LoadModelInfo(const std::string& dir);

}  // namespace sluice
