#include "kernels/cuda/ops/elementwise_reference.h"

#include <cmath>

namespace sparkstack::kernels::cuda_ops {

std::vector<double> ReferenceSwiGlu(const std::vector<double>& gate,
                                    const std::vector<double>& up) {
  std::vector<double> out(gate.size());
  for (size_t i = 0; i < gate.size(); ++i) out[i] = gate[i] / (1.0 + std::exp(-gate[i])) * up[i];
  return out;
}

std::vector<double> ReferenceGatherRows(const std::vector<double>& x, int64_t width,
                                        const std::vector<int32_t>& rows) {
  std::vector<double> out;
  out.reserve(rows.size() * width);
  for (int32_t r : rows) out.insert(out.end(), x.begin() + r * width, x.begin() + (r + 1) * width);
  return out;
}

}  // namespace sparkstack::kernels::cuda_ops
