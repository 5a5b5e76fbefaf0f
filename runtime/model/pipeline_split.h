// Splitting a model's layers into pipeline stages balanced by the bytes each stage reads.
#ifndef SPARKSTACK_RUNTIME_MODEL_PIPELINE_SPLIT_H_
#define SPARKSTACK_RUNTIME_MODEL_PIPELINE_SPLIT_H_

#include <vector>

#include "absl/status/statusor.h"
#include "runtime/model/model_config.h"
#include "runtime/model/sharding.h"

namespace sparkstack {

// Parameters of decoder layer `layer` (GQA or MLA attention; a dense MLP or, in a MoE layer, the
// router, every routed expert and the shared expert) and of the embedding / lm_head matrices.
int64_t LayerParameters(const ModelConfig& config, int64_t layer);
int64_t VocabParameters(const ModelConfig& config);

// Contiguous layer ranges, one per stage, every stage with at least one layer. The first stage
// also holds the embedding and the last the final norm and lm_head, so those stages get fewer
// layers when the vocabulary is large; MoE layers weigh their experts (DeepSeek's and GLM's
// leading dense layers are light): boundaries are placed where the running byte count is closest
// to an equal share. InvalidArgument when pp exceeds the number of layers.
absl::StatusOr<std::vector<Range>> SplitLayersByBytes(const ModelConfig& config, int pp);

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_MODEL_PIPELINE_SPLIT_H_
