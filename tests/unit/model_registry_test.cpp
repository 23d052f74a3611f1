// The local model registry: models:/ names parse, and resolve to a version's directory by
// number, by `latest` and by alias; unpublished versions are invisible; errors list what exists.
#include <catch2/catch.hpp>

#include "engine/model_registry.h"
#include "unit_helpers.h"

using namespace sluice;
using namespace sluice::test;

namespace {

// A registry with fraud versions 1, 2 and 10 published, 11 half-copied (no MLmodel), and the
// aliases champion → 2 and challenger → 10.
struct LocalRegistry {
  TempDir dir;
  LocalRegistry() {
    for (const char* v : {"1", "2", "10"})
      dir.Write(std::string("fraud/") + v + "/MLmodel", "artifact_path: model\n");
    dir.Write("fraud/11/model.json", "{}");
    dir.Write("fraud/aliases/champion", "2\n");
    dir.Write("fraud/aliases/challenger", "10");
    dir.Write("fraud/aliases/broken", "two");
    dir.Write("ride/1/MLmodel", "artifact_path: model\n");
  }
  Result<ResolvedModel> Resolve(const std::string& text) const {
    auto uri = ParseModelUri(text);
    REQUIRE(uri.ok());
    return ResolveModelUri(*uri, dir.path());
  }
};

}  // namespace

TEST_CASE("models:/ names parse in MLflow's three forms", "[model-registry]") {
  auto v = ParseModelUri("models:/fraud/3");
  REQUIRE(v.ok());
  CHECK(v->name == "fraud");
  CHECK(v->kind == ModelUri::Kind::kVersion);
  CHECK(v->version == 3);
  CHECK(v->ToString() == "models:/fraud/3");
  auto l = ParseModelUri("models:/fraud/latest");
  REQUIRE(l.ok());
  CHECK(l->kind == ModelUri::Kind::kLatest);
  auto a = ParseModelUri("models:/fraud@champion");
  REQUIRE(a.ok());
  CHECK(a->kind == ModelUri::Kind::kAlias);
  CHECK(a->alias == "champion");
  CHECK(a->ToString() == "models:/fraud@champion");

  for (const char* bad : {"models:/", "models:/fraud", "models:/fraud/", "models:/fraud/0",
                          "models:/fraud/03", "models:/fraud/x", "models:/fraud@", "models:/@a",
                          "models:/fr aud/1", "models:/../etc/1", "models:/a@b/1", "models:/a/b/c",
                          "models:/fraud@../x", "../models/fraud"}) {
    INFO(bad);
    auto r = ParseModelUri(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kInvalidConfig);
    CHECK_THAT(r.status().message(), Catch::Contains("models:/<name>/<version>"));
  }
}

TEST_CASE("models:/ names resolve by version, latest and alias", "[model-registry]") {
  LocalRegistry reg;
  auto v = reg.Resolve("models:/fraud/1");
  REQUIRE(v.ok());
  CHECK(v->dir == reg.dir.File("fraud/1"));
  CHECK(v->name == "fraud");
  CHECK(v->version == 1);
  // Numerically highest, not by text, and never a version still being copied (no MLmodel).
  auto latest = reg.Resolve("models:/fraud/latest");
  REQUIRE(latest.ok());
  CHECK(latest->version == 10);
  auto champion = reg.Resolve("models:/fraud@champion");
  REQUIRE(champion.ok());
  CHECK(champion->version == 2);
  CHECK(champion->dir == reg.dir.File("fraud/2"));
  CHECK(reg.Resolve("models:/fraud@challenger")->version == 10);

  // Moving an alias (a new file renamed over the old one) moves the resolution.
  reg.dir.Write("fraud/aliases/champion.tmp", "1\n");
  std::filesystem::rename(reg.dir.File("fraud/aliases/champion.tmp"),
                          reg.dir.File("fraud/aliases/champion"));
  CHECK(reg.Resolve("models:/fraud@champion")->version == 1);
  // Publishing a version (MLmodel in place) makes it the latest.
  reg.dir.Write("fraud/11/MLmodel", "artifact_path: model\n");
  CHECK(reg.Resolve("models:/fraud/latest")->version == 11);
}

TEST_CASE("models:/ errors say what the registry has", "[model-registry]") {
  LocalRegistry reg;
  auto message = [&](const std::string& text) {
    auto r = reg.Resolve(text);
    REQUIRE_FALSE(r.ok());
    return r.status().message();
  };
  CHECK(message("models:/frauds/1") ==
        "models:/frauds/1: no model 'frauds' in the registry '" + reg.dir.path() +
            "'; did you mean 'fraud'? (models: fraud, ride)");
  CHECK(message("models:/fraud/11") ==
        "models:/fraud/11: model 'fraud' has no version 11 (versions: 1, 2, 10)");
  CHECK(message("models:/fraud@staging") ==
        "models:/fraud@staging: model 'fraud' has no alias 'staging' (aliases: broken, "
        "challenger, champion)");
  CHECK_THAT(message("models:/fraud@broken"),
             Catch::EndsWith("holds 'two', not a version number"));
  reg.dir.Write("fraud/aliases/gone", "7");
  CHECK(message("models:/fraud@gone") ==
        "models:/fraud@gone: model 'fraud' has no version 7 (versions: 1, 2, 10)");
  reg.dir.Write("empty/notes.txt", "");
  CHECK_THAT(message("models:/empty/latest"), Catch::Contains("has no published version"));
  auto uri = ParseModelUri("models:/fraud/1");
  REQUIRE(uri.ok());
  auto missing = ResolveModelUri(*uri, reg.dir.File("nowhere"));
  REQUIRE_FALSE(missing.ok());
  CHECK_THAT(missing.status().message(), Catch::Contains("is not a directory"));
}
