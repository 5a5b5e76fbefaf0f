// Start-up self-check of the CUDA backend: every kernel the backend selected runs a small random
// problem (odd sizes, several blocks) next to the CPU backend, and the first disagreement beyond
// the op's tolerance refuses the backend with FailedPrecondition naming the kernel, the problem
// and the error, so a rank never serves numbers its kernels got wrong (DESIGN.md, seam 5).
// Tolerances allow for what the CUDA paths round to bf16 (cuda_backend.h) and nothing more.
#ifndef SPARKSTACK_RUNTIME_BACKEND_CUDA_SELF_CHECK_H_
#define SPARKSTACK_RUNTIME_BACKEND_CUDA_SELF_CHECK_H_

#include <cstdint>

#include "absl/status/status.h"
#include "runtime/backend/backend.h"

namespace sparkstack {

// `cuda` needs CudaBackendOptions of at least max_tokens 80, max_linear_k 272, max_heads 8,
// max_head_dim 64, max_context 600, max_decode_seqs 4, max_logit_rows 8. Uses `seed` for the data.
absl::Status SelfCheckCudaOps(Backend& cuda, Backend& cpu, uint64_t seed = 1);

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_BACKEND_CUDA_SELF_CHECK_H_
