// write_plan_fixture NAME OUT_DIR [nvfp4|fp8|bf16]: the header-only checkpoint of a real model
// (tests/unit/deploy/testdata/NAME) for `sparkstack plan --model OUT_DIR`.
#include <iostream>
#include <string>

#include "tests/unit/deploy/model_fixture.h"

int main(int argc, char** argv) {
  using sparkstack::testing::FixtureWeights;
  if (argc < 3 || argc > 4) {
    std::cerr << "usage: " << argv[0] << " NAME OUT_DIR [nvfp4|fp8|bf16]\n";
    return 2;
  }
  const std::string kind = argc == 4 ? argv[3] : "nvfp4";
  FixtureWeights weights = FixtureWeights::kNvfp4;
  if (kind == "fp8") {
    weights = FixtureWeights::kFp8;
  } else if (kind == "bf16") {
    weights = FixtureWeights::kBf16;
  } else if (kind != "nvfp4") {
    std::cerr << "unknown weight format " << kind << "\n";
    return 2;
  }
  const absl::Status status = sparkstack::testing::WriteHeaderOnlyCheckpoint(
      sparkstack::testing::FixtureConfigPath(argv[1]), argv[2], weights);
  if (!status.ok()) {
    std::cerr << status << "\n";
    return 1;
  }
  return 0;
}
