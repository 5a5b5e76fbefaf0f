#include "kernels/cuda/ops/embedding_reference.h"

namespace sparkstack::kernels::cuda_ops {

std::vector<double> ReferenceEmbedding(const std::vector<double>& table, int64_t rows,
                                       int64_t hidden, const std::vector<int32_t>& ids,
                                       int64_t first_id) {
  std::vector<double> out(ids.size() * hidden, 0.0);
  for (size_t t = 0; t < ids.size(); ++t) {
    const int64_t local = ids[t] - first_id;
    if (local < 0 || local >= rows) continue;
    for (int64_t i = 0; i < hidden; ++i) out[t * hidden + i] = table[local * hidden + i];
  }
  return out;
}

}  // namespace sparkstack::kernels::cuda_ops
