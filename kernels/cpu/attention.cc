#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/dense_linear.h"

namespace sparkstack::kernels {

void CausalAttentionF32(const float* q, int64_t tokens, int64_t heads, int64_t kv_heads,
                        int64_t head_dim, const float* k_cache, const float* v_cache,
                        int64_t start, float scale, float* out) {
  const int64_t group = heads / kv_heads;
  const int64_t kv_stride = kv_heads * head_dim;  // one cache row
  std::vector<float> scores(start + tokens);
  for (int64_t t = 0; t < tokens; ++t) {
    const int64_t visible = start + t + 1;
    for (int64_t h = 0; h < heads; ++h) {
      const float* qh = q + (t * heads + h) * head_dim;
      const int64_t kvh = h / group;
      float max_score = -INFINITY;
      for (int64_t p = 0; p < visible; ++p) {
        scores[p] = DotF32(qh, k_cache + p * kv_stride + kvh * head_dim, head_dim) * scale;
        max_score = std::max(max_score, scores[p]);
      }
      float denom = 0.0f;
      for (int64_t p = 0; p < visible; ++p) {
        scores[p] = std::exp(scores[p] - max_score);
        denom += scores[p];
      }
      float* o = out + (t * heads + h) * head_dim;
      std::fill(o, o + head_dim, 0.0f);
      for (int64_t p = 0; p < visible; ++p) {
        const float weight = scores[p] / denom;
        const float* v = v_cache + p * kv_stride + kvh * head_dim;
        for (int64_t d = 0; d < head_dim; ++d) o[d] += weight * v[d];
      }
    }
  }
}

}  // namespace sparkstack::kernels
