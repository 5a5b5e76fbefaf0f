// cuda_ops_smem_budget <file>: writes, for the build's ptxas check (sparkstack_ptxas_check in
// cmake/SparkstackCuda.cmake), the dynamic shared memory of the ops' kernels that use any, one
// "<mangled-name fragment> <bytes>" line per instantiation, from the launchers' own constants.
#include <cstdio>
#include <string>

#include "kernels/cuda/ops/latent_attention.h"
#include "kernels/cuda/ops/paged_attention.h"

int main(int argc, char** argv) {
  using sparkstack::kernels::cuda_ops::PrefillAttentionSmemBytes;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <output file>\n", argv[0]);
    return 2;
  }
  std::FILE* out = std::fopen(argv[1], "w");
  if (out == nullptr) {
    std::perror(argv[1]);
    return 1;
  }
  // PagedPrefillKernel<C, DP>: C float ("f") or __nv_bfloat16, DP the padded head dimension.
  for (int dp : {32, 64, 128, 256}) {
    for (const char* cache : {"f", "13__nv_bfloat16"}) {
      std::fprintf(out, "PagedPrefillKernelI%sLi%dE %d\n", cache, dp, PrefillAttentionSmemBytes(dp));
    }
  }
  // PagedLatentAttentionKernel (one instance).
  std::fprintf(out, "PagedLatentAttentionKernel %d\n",
               sparkstack::kernels::cuda_ops::LatentAttentionSmemBytes());
  return std::fclose(out) == 0 ? 0 : 1;
}
