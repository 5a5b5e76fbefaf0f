// Launcher of the paged latent attention kernel (latent_attention.cuh).
#include "kernels/cuda/launch.h"
#include "kernels/cuda/ops/latent_attention.cuh"
#include "kernels/cuda/ops/latent_attention.h"

namespace sparkstack::kernels::cuda_ops {

const char* ValidateLatentAttentionArgs(const LatentAttentionArgs& a) {
  if (a.tokens < 0 || a.tokens > 0x7fffffff || a.num_seqs < 0) {
    return "tokens must be in [0, 2^31) and num_seqs >= 0";
  }
  if (a.heads < 1 || (a.heads + kLatentHeadsPerBlock - 1) / kLatentHeadsPerBlock > 65535) {
    return "heads must be in [1, 65535 * 16]";
  }
  if (a.width < 1 || a.width > kLatentMaxWidth) return "width must be in [1, 576]";
  if (a.value_width < 1 || a.value_width > kLatentMaxValueWidth || a.value_offset < 0 ||
      a.value_offset + a.value_width > a.width) {
    return "values [value_offset, value_offset + value_width) must lie in the row, value_width "
           "in [1, 512]";
  }
  if (a.block_size < 1 || a.max_blocks < 1) return "block_size and max_blocks must be >= 1";
  if (a.q == nullptr || a.out == nullptr || a.cache == nullptr || a.query_start == nullptr ||
      a.seq_lens == nullptr || a.block_table == nullptr) {
    return "pointers must be non-null";
  }
  return nullptr;
}

int LaunchPagedLatentAttention(const LatentAttentionArgs& a, int smem_limit, void* stream) {
  if (ValidateLatentAttentionArgs(a) != nullptr) return kInvalidValue;
  if (a.tokens == 0 || a.num_seqs == 0) return 0;
  constexpr int kSmem = LatentAttentionSmemBytes();
  if (kSmem > smem_limit) return kInvalidValue;
  auto* kernel = &detail::PagedLatentAttentionKernel;
  const cudaError_t e =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem);
  if (e != cudaSuccess) return e;
  const dim3 grid(
      static_cast<unsigned>(a.tokens),
      static_cast<unsigned>((a.heads + kLatentHeadsPerBlock - 1) / kLatentHeadsPerBlock));
  return cuda::LaunchKernel(kernel, grid, kLatentThreads, kSmem, static_cast<cudaStream_t>(stream),
                            a);
}

}  // namespace sparkstack::kernels::cuda_ops
