// Launchers of the NVFP4 quantize kernels: W4A4 dynamic activation quantization and ModelOpt weight
// quantization (the GPU path of `sparkstack quantize`). Both follow /work/shared/NVFP4.md and
// compute the scale math in float64, so codes and scales match the float64 references in
// kernels/cpu/nvfp4_reference.h bit for bit. Output layouts are those of launch_config.h
// (codes [rows, k/2] with element 2i in the low nibble, E4M3 scales [rows, k/16]).
// All pointers are device pointers; `stream` is a cudaStream_t. Return values are cudaError_t
// values: cudaErrorInvalidValue (nothing launched) for bad sizes, strides or alignment.
#ifndef SPARKSTACK_KERNELS_NVFP4_QUANTIZE_H_
#define SPARKSTACK_KERNELS_NVFP4_QUANTIZE_H_

#include <cstdint>

namespace sparkstack::kernels::nvfp4 {

enum class QuantInType : int { kF32 = 0, kBF16 = 1 };

// W4A4 activations: x bf16 [m, k] (row stride ldx elements, 16-byte aligned, ldx % 8 == 0,
// k % 16 == 0) with the static input_scale (= amax_calib / (6 * 448), > 0):
//   S = 1 / input_scale; s_b = e4m3(S * amax_b / 6); code = RNE_e2m1(x / (s_b / S)) (0 when
//   s_b is zero).
int LaunchQuantizeActivation(const void* x, int64_t ldx, int64_t m, int64_t k, float input_scale,
                             uint8_t* codes, int64_t ldc, uint8_t* scales, int64_t lds,
                             void* stream);

// ModelOpt weights, two passes: (1) amax(|w|) over the whole tensor into `workspace` (4 bytes,
// zeroed here with cudaMemsetAsync); (2) global = f32(amax / 2688) written to *global_scale,
// block scales e4m3(clamp(amax_b / (6 * global), 2^-9, 448)) (1.0 for zero blocks) and codes
// RNE_e2m1(w / (e4m3(s_b) * global)). w is f32 or bf16 [n, k], row stride ldw elements
// (16-byte aligned rows: ldw * element size % 16 == 0). NaN inputs are not meaningful.
int LaunchQuantizeWeight(const void* w, QuantInType type, int64_t ldw, int64_t n, int64_t k,
                         uint8_t* codes, int64_t ldc, uint8_t* scales, int64_t lds,
                         float* global_scale, uint32_t* workspace, void* stream);

}  // namespace sparkstack::kernels::nvfp4

#endif  // SPARKSTACK_KERNELS_NVFP4_QUANTIZE_H_
