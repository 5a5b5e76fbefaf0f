// Header-only checkpoints of real models for the plan tests and docs/plan.md: config.json as the
// model's authors publish it (tests/unit/deploy/testdata/NAME/config.json) and safetensors shards
// whose headers declare every tensor of the Hugging Face layout (/work/shared/MODELS.md) with its
// real shape and dtype, but whose data sections are absent. Only `sparkstack plan` reads them.
#ifndef SPARKSTACK_TESTS_UNIT_DEPLOY_MODEL_FIXTURE_H_
#define SPARKSTACK_TESTS_UNIT_DEPLOY_MODEL_FIXTURE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "runtime/core/dtype.h"
#include "runtime/model/model_config.h"

namespace sparkstack::testing {

// How the decoder layers' linear weights are stored. Embedding, lm_head, norms and routers stay
// BF16 (e_score_correction_bias F32) in every case, as in the published checkpoints.
enum class FixtureWeights {
  kNvfp4,  // ModelOpt: u8 weight [N, K/2], e4m3 weight_scale [N, K/16], f32 weight_scale_2 and
           // input_scale scalars
  kFp8,    // DeepSeek: e4m3 weight [N, K], f32 weight_scale_inv [ceil(N/128), ceil(K/128)]
  kBf16,
};

struct FixtureTensor {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
};

// Every tensor of the model in the Hugging Face layout, multi-token-prediction layers included.
std::vector<FixtureTensor> RealShapeTensors(const ModelConfig& config, FixtureWeights weights);

// Writes OUT/config.json (a copy of `config_path`, without its quantization_config unless the
// weights are FP8), OUT/hf_quant_config.json for NVFP4, header-only shards of at most
// `tensors_per_shard` tensors in name order (checkpoints are cut by size, wherever a shard fills)
// and OUT/model.safetensors.index.json.
absl::Status WriteHeaderOnlyCheckpoint(const std::string& config_path, const std::string& out_dir,
                                       FixtureWeights weights, int tensors_per_shard = 512);

// tests/unit/deploy/testdata/NAME/config.json under the source tree (SPARKSTACK_SOURCE_DIR, else
// the path compiled in).
std::string FixtureConfigPath(const std::string& name);

}  // namespace sparkstack::testing

#endif  // SPARKSTACK_TESTS_UNIT_DEPLOY_MODEL_FIXTURE_H_
