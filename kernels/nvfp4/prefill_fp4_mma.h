// Launcher of the sm_121a W4A4 prefill GEMM on block-scaled FP4 tensor cores
// (prefill_fp4_mma.cuh; layouts and tile in prefill_fp4_mma_layout.h).
//
// UNVERIFIED ON HARDWARE: the fragment and scale-operand layouts are derived from CUTLASS; on the
// host the whole kernel runs on the CUDA emulation, whose mma.m16n8k64 follows the PTX ISA's
// fragment tables, and matches the float64 W4A4 reference (nvfp4_emulated_test). The selector
// offers this variant only when SPARKSTACK_ENABLE_FP4_MMA=1, and the start-up self-check must pass
// before it is used. First run on a GB10: build/tests/unit/kernels/nvfp4_cuda/nvfp4_fp4_mma_test.
// If it fails, the likely suspects, in order: which lane of a thread pair supplies which SFA row
// (Fp4FragSfaRow; the ISA shows it in a figure only), the k order inside a register, then the
// accumulator mapping. A result off by a constant factor points at alpha or the e4m3 scale decode.
//
// Performance: single-buffered (global loads and the activation quantization are not overlapped
// with the MMAs). Not measured. Since the exact activation quantizer (prefill_fp4_mma_quant.h) the
// kernel needs 130 registers on sm_121a (ptxas check), so one 256-thread block per SM where 128
// registers gave two, which hid part of the staging; forcing two blocks (__launch_bounds__ min 2)
// spills 20 bytes. The larger cost is structural: every block along n quantizes the same
// activation tile again. Quantizing each activation row tile once (a pass before the GEMM, or
// shared across the n blocks) and a cp.async double buffer for the weights are the next steps.
#ifndef SPARKSTACK_KERNELS_NVFP4_PREFILL_FP4_MMA_H_
#define SPARKSTACK_KERNELS_NVFP4_PREFILL_FP4_MMA_H_

#include "kernels/nvfp4/launch_config.h"

namespace sparkstack::kernels::nvfp4 {

// Why LaunchPrefillFp4Mma would refuse `args` before touching the device (nullptr when they are
// acceptable): ValidateGemmArgs' rules plus a finite input_scale > 0 and a finite global_scale.
// Any k that is a multiple of 16 is accepted (a partial last 128-slice is zero-filled).
const char* ValidateFp4MmaArgs(const GemmArgs& args);

// Enqueues y = alpha * quant(x) . W^T on `stream` (a cudaStream_t), where quant(x) is the W4A4
// per-16 activation quantization with the static args.input_scale and alpha = input_scale *
// global_scale (NVFP4.md "Activations"). Returns a cudaError_t value (0 on success):
//   cudaErrorInvalidValue   arguments ValidateFp4MmaArgs rejects, or the tile's shared memory
//                           above `smem_limit`, or too many m-tiles for the grid;
//   cudaErrorInvalidDevice  the current device is not compute capability 12.x (the instruction
//                           exists only there);
//   cudaErrorNoKernelImageForDevice  a 12.x device this binary has no arch-specific code for (it
//                           carries sm_121a only: a 12.0 device would run the trapping fallback);
// nothing is launched in those cases.
int LaunchPrefillFp4Mma(const GemmArgs& args, int smem_limit, void* stream);

}  // namespace sparkstack::kernels::nvfp4

#endif  // SPARKSTACK_KERNELS_NVFP4_PREFILL_FP4_MMA_H_
