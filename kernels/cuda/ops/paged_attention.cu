// Launchers of the paged attention kernels (paged_attention_decode.cuh,
// paged_attention_prefill.cuh).
#include "kernels/cuda/ops/paged_attention.h"

#include "kernels/cuda/launch.h"
#include "kernels/cuda/ops/paged_attention_decode.cuh"
#include "kernels/cuda/ops/paged_attention_prefill.cuh"

namespace sparkstack::kernels::cuda_ops {
namespace {

constexpr int kGb10SmemLimit = 101376;
static_assert(PrefillSmemBytesFor(256) <= kGb10SmemLimit);

int64_t GridSplits(int64_t max_context) {
  return max_context <= 0 ? 1 : DecodeSplits(max_context);
}

int64_t MaxDim(const PagedAttentionArgs& a) {
  return a.head_dim > a.v_head_dim ? a.head_dim : a.v_head_dim;
}

template <typename C, int DPL>
int LaunchDecodeTyped(const PagedAttentionArgs& a, int64_t num_decodes, int64_t splits,
                      float* scratch, cudaStream_t s) {
  const int64_t group = a.heads / a.kv_heads;
  const int64_t subgroups = (group + kDecodeHeadsPerBlock - 1) / kDecodeHeadsPerBlock;
  const dim3 grid(static_cast<unsigned>(num_decodes), static_cast<unsigned>(a.kv_heads * subgroups),
                  static_cast<unsigned>(splits));
  int e = cuda::LaunchKernel(&detail::PagedDecodeKernel<C, DPL>, grid, detail::kDecodeThreads, 0,
                             s, a, num_decodes, splits, subgroups, scratch);
  if (e != 0 || splits == 1) return e;
  return cuda::LaunchKernel(&detail::PagedDecodeCombineKernel,
                            dim3(static_cast<unsigned>(num_decodes), static_cast<unsigned>(a.heads)),
                            detail::kDecodeThreads, 0, s, a, num_decodes, splits,
                            static_cast<const float*>(scratch));
}

template <typename C>
int LaunchDecodeForCache(const PagedAttentionArgs& a, int64_t num_decodes, int64_t splits,
                         float* scratch, cudaStream_t s) {
  const int64_t dim = MaxDim(a);  // queries and values share the per-lane width
  if (dim <= 32) return LaunchDecodeTyped<C, 1>(a, num_decodes, splits, scratch, s);
  if (dim <= 64) return LaunchDecodeTyped<C, 2>(a, num_decodes, splits, scratch, s);
  if (dim <= 128) return LaunchDecodeTyped<C, 4>(a, num_decodes, splits, scratch, s);
  return LaunchDecodeTyped<C, 8>(a, num_decodes, splits, scratch, s);
}

template <typename C, int DP>
int LaunchPrefillTyped(const PagedAttentionArgs& a, int64_t first_seq, int64_t num_seqs,
                       int64_t q_tiles, int smem_limit, cudaStream_t s) {
  constexpr int kSmem = PrefillSmemBytesFor(DP);
  if (kSmem > smem_limit) return kInvalidValue;
  auto* kernel = &detail::PagedPrefillKernel<C, DP>;
  if (kSmem > 48 * 1024) {
    const cudaError_t e =
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem);
    if (e != cudaSuccess) return e;
  }
  const dim3 grid(static_cast<unsigned>((num_seqs - first_seq) * q_tiles),
                  static_cast<unsigned>(a.heads));
  return cuda::LaunchKernel(kernel, grid, detail::kPrefillAttnThreads, kSmem, s, a, first_seq,
                            q_tiles);
}

template <typename C>
int LaunchPrefillForCache(const PagedAttentionArgs& a, int64_t first_seq, int64_t num_seqs,
                          int64_t q_tiles, int smem_limit, cudaStream_t s) {
  const int64_t dim = MaxDim(a);
  if (dim <= 32) return LaunchPrefillTyped<C, 32>(a, first_seq, num_seqs, q_tiles, smem_limit, s);
  if (dim <= 64) return LaunchPrefillTyped<C, 64>(a, first_seq, num_seqs, q_tiles, smem_limit, s);
  if (dim <= 128) {
    return LaunchPrefillTyped<C, 128>(a, first_seq, num_seqs, q_tiles, smem_limit, s);
  }
  return LaunchPrefillTyped<C, 256>(a, first_seq, num_seqs, q_tiles, smem_limit, s);
}

}  // namespace

const char* ValidatePagedAttentionArgs(const PagedAttentionArgs& a) {
  if (a.heads < 1 || a.kv_heads < 1 || a.heads % a.kv_heads != 0) {
    return "heads and kv_heads must be >= 1 and kv_heads must divide heads";
  }
  if (a.head_dim < 1 || a.v_head_dim < 1 || a.head_dim > kAttentionMaxHeadDim ||
      a.v_head_dim > kAttentionMaxHeadDim) {
    return "head_dim and v_head_dim must be in [1, 256]";
  }
  if (a.block_size < 1 || a.max_blocks < 1) return "block_size and max_blocks must be >= 1";
  if (a.q == nullptr || a.out == nullptr || a.k_cache == nullptr || a.v_cache == nullptr ||
      a.query_start == nullptr || a.seq_lens == nullptr || a.block_table == nullptr) {
    return "pointers must be non-null";
  }
  if (a.cache_type == ElemType::kF16) return "the cache must be f32 or bf16";
  return nullptr;
}

int LaunchPagedAttentionDecode(const PagedAttentionArgs& a, int64_t num_decodes,
                               int64_t max_context, float* scratch, void* stream) {
  if (num_decodes == 0) return 0;
  if (ValidatePagedAttentionArgs(a) != nullptr || num_decodes < 0 ||
      num_decodes > 0x7fffffff) {
    return kInvalidValue;
  }
  const int64_t splits = GridSplits(max_context);
  if (splits > 1 && scratch == nullptr) return kInvalidValue;
  if (a.kv_heads * ((a.heads / a.kv_heads + kDecodeHeadsPerBlock - 1) / kDecodeHeadsPerBlock) >
      65535) {
    return kInvalidValue;
  }
  const auto s = static_cast<cudaStream_t>(stream);
  return a.cache_type == ElemType::kF32
             ? LaunchDecodeForCache<float>(a, num_decodes, splits, scratch, s)
             : LaunchDecodeForCache<__nv_bfloat16>(a, num_decodes, splits, scratch, s);
}

int LaunchPagedAttentionPrefill(const PagedAttentionArgs& a, int64_t first_seq, int64_t num_seqs,
                                int64_t max_query_len, int smem_limit, void* stream) {
  if (first_seq >= num_seqs || max_query_len <= 0) return 0;
  if (ValidatePagedAttentionArgs(a) != nullptr || first_seq < 0 || a.heads > 65535) {
    return kInvalidValue;
  }
  const int64_t q_tiles = (max_query_len + detail::kPrefillBM - 1) / detail::kPrefillBM;
  if ((num_seqs - first_seq) * q_tiles > 0x7fffffff) return kInvalidValue;
  const auto s = static_cast<cudaStream_t>(stream);
  return a.cache_type == ElemType::kF32
             ? LaunchPrefillForCache<float>(a, first_seq, num_seqs, q_tiles, smem_limit, s)
             : LaunchPrefillForCache<__nv_bfloat16>(a, first_seq, num_seqs, q_tiles, smem_limit,
                                                    s);
}

}  // namespace sparkstack::kernels::cuda_ops
