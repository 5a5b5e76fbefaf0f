// Launcher of the W4A16 decode GEMV / skinny GEMM (m of 1..16 is its target; larger m works, with
// the grid's y dimension covering m in tiles of 16). Data layouts: launch_config.h.
#ifndef SPARKSTACK_KERNELS_NVFP4_DECODE_GEMV_H_
#define SPARKSTACK_KERNELS_NVFP4_DECODE_GEMV_H_

#include "kernels/nvfp4/launch_config.h"

namespace sparkstack::kernels::nvfp4 {

// Enqueues y = x . dequant(W)^T on `stream` (a cudaStream_t; nullptr is the default stream).
// Returns a cudaError_t value: cudaSuccess (0), cudaErrorInvalidValue when ValidateGemmArgs
// rejects the arguments (nothing is launched), or the launch error. Uses no shared memory and
// needs no attribute set-up; safe to call from several host threads.
int LaunchDecodeGemv(const GemmArgs& args, void* stream);

}  // namespace sparkstack::kernels::nvfp4

#endif  // SPARKSTACK_KERNELS_NVFP4_DECODE_GEMV_H_
