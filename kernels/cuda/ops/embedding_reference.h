// Float64 reference of LaunchEmbedding (embedding.h), for tests: table values given as doubles.
#ifndef SPARKSTACK_KERNELS_CUDA_OPS_EMBEDDING_REFERENCE_H_
#define SPARKSTACK_KERNELS_CUDA_OPS_EMBEDDING_REFERENCE_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sparkstack::kernels::cuda_ops {

// out [tokens, hidden]: row ids[t] - first_id of table [rows, hidden], zeros outside the table.
std::vector<double> ReferenceEmbedding(const std::vector<double>& table, int64_t rows,
                                       int64_t hidden, const std::vector<int32_t>& ids,
                                       int64_t first_id);

}  // namespace sparkstack::kernels::cuda_ops

#endif  // SPARKSTACK_KERNELS_CUDA_OPS_EMBEDDING_REFERENCE_H_
