#include "runtime/model/pipeline_split.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace sparkstack {

int64_t LayerParameters(const ModelConfig& c, int64_t layer) {
  const int64_t h = c.hidden_size;
  int64_t attention = 0;
  if (c.mla.kv_lora_rank > 0) {
    const MlaConfig& m = c.mla;
    const int64_t dq = m.qk_nope_head_dim + m.qk_rope_head_dim;
    attention = (m.q_lora_rank > 0 ? h * m.q_lora_rank + m.q_lora_rank * c.num_heads * dq
                                   : h * c.num_heads * dq) +
                h * (m.kv_lora_rank + m.qk_rope_head_dim) +
                m.kv_lora_rank * c.num_heads * (m.qk_nope_head_dim + m.v_head_dim) +
                c.num_heads * m.v_head_dim * h;
  } else {
    attention = h * c.head_dim * (2 * c.num_heads + 2 * c.num_kv_heads);
  }
  int64_t ffn = 3 * h * c.intermediate_size;
  if (IsMoeLayer(c, layer)) {
    const MoeConfig& m = c.moe;
    ffn = m.num_experts * h +
          (m.num_experts + m.num_shared_experts) * 3 * h * m.moe_intermediate_size;
  }
  const int64_t norms = 2 * h + (c.qk_norm ? 2 * c.head_dim : 0);
  return attention + ffn + norms;
}

int64_t VocabParameters(const ModelConfig& c) { return c.vocab_size * c.hidden_size; }

absl::StatusOr<std::vector<Range>> SplitLayersByBytes(const ModelConfig& config, int pp) {
  const int64_t layers = config.num_layers;
  if (pp < 1 || pp > layers) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot split ", layers, " layers into ", pp, " pipeline stages"));
  }
  const double vocab = static_cast<double>(VocabParameters(config));
  // before[b]: bytes ahead of layer boundary b (the embedding and layers [0, b)).
  std::vector<double> before(layers + 1, vocab);
  for (int64_t l = 0; l < layers; ++l) {
    before[l + 1] = before[l] + static_cast<double>(LayerParameters(config, l));
  }
  // lm_head is added to the total so the last share has room.
  const double total = before[layers] + vocab;
  std::vector<Range> stages;
  int64_t begin = 0;
  for (int s = 0; s < pp; ++s) {
    int64_t end = layers;
    if (s < pp - 1) {
      // The boundary whose running byte count is closest to (s + 1) equal shares.
      const double target = total * (s + 1) / pp;
      end = begin + 1;
      for (int64_t b = begin + 1; b <= layers - (pp - 1 - s); ++b) {
        if (std::fabs(before[b] - target) < std::fabs(before[end] - target)) end = b;
      }
    }
    stages.push_back({begin, end});
    begin = end;
  }
  return stages;
}

}  // namespace sparkstack
