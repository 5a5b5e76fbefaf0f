// Launcher of the W4A16 tensor-core prefill GEMM (sm_80+; meant for m >= 64, correct for any m).
// Data layouts: launch_config.h; kernel design: prefill_gemm.cuh.
#ifndef SPARKSTACK_KERNELS_NVFP4_PREFILL_GEMM_H_
#define SPARKSTACK_KERNELS_NVFP4_PREFILL_GEMM_H_

#include "kernels/nvfp4/launch_config.h"

namespace sparkstack::kernels::nvfp4 {

// Enqueues y = x . dequant(W)^T on `stream` (a cudaStream_t) with tile kPrefillTileLarge
// (large_tile) or kPrefillTileSmall. `smem_limit` is the most dynamic shared memory the launch
// may use (EffectiveSmemLimit in selector.h); a tile needing more is refused with
// cudaErrorInvalidValue before anything is launched, as are arguments ValidateGemmArgs rejects.
// Raises the kernel's dynamic shared-memory attribute to exactly the tile's need when that is above
// 48 KiB. Returns a cudaError_t value (0 on success).
int LaunchPrefillGemm(const GemmArgs& args, bool large_tile, int smem_limit, void* stream);

}  // namespace sparkstack::kernels::nvfp4

#endif  // SPARKSTACK_KERNELS_NVFP4_PREFILL_GEMM_H_
