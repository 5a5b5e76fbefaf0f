#include "runtime/model/pipeline_split.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace sparkstack {

int64_t LayerParameters(const ModelConfig& c) {
  const int64_t attention = c.hidden_size * c.head_dim * (2 * c.num_heads + 2 * c.num_kv_heads);
  const int64_t mlp = 3 * c.hidden_size * c.intermediate_size;
  const int64_t norms = 2 * c.hidden_size + (c.qk_norm ? 2 * c.head_dim : 0);
  return attention + mlp + norms;
}

int64_t VocabParameters(const ModelConfig& c) { return c.vocab_size * c.hidden_size; }

absl::StatusOr<std::vector<Range>> SplitLayersByBytes(const ModelConfig& config, int pp) {
  const int64_t layers = config.num_layers;
  if (pp < 1 || pp > layers) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot split ", layers, " layers into ", pp, " pipeline stages"));
  }
  const double layer = static_cast<double>(LayerParameters(config));
  const double vocab = static_cast<double>(VocabParameters(config));
  // Stage 0 starts with the embedding; lm_head is added to the total so the last share has room.
  const double total = vocab + layers * layer + vocab;
  std::vector<Range> stages;
  int64_t begin = 0;
  for (int s = 0; s < pp; ++s) {
    int64_t end = layers;
    if (s < pp - 1) {
      // Bytes before layer boundary b: embedding + b layers. Pick b closest to (s + 1) shares.
      const double target = total * (s + 1) / pp;
      end = static_cast<int64_t>(std::llround((target - vocab) / layer));
      end = std::clamp<int64_t>(end, begin + 1, layers - (pp - 1 - s));
    }
    stages.push_back({begin, end});
    begin = end;
  }
  return stages;
}

}  // namespace sparkstack
