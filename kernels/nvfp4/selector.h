// Which NVFP4 GEMM kernel variant to run on a device, in preference order.
//
// The selection is a pure function of a DeviceInfo (compute capability, shared-memory limit) and
// SelectOptions, so it is tested without a GPU. At start-up the runtime runs each selected variant
// on a small random problem against the float64 reference (self_check.h, CUDA builds only) and
// walks down the candidate list until one agrees (SelectFirstPassing below holds that walk).
//
// Thread safety: every function here is pure and may be called from any thread.
#ifndef SPARKSTACK_KERNELS_NVFP4_SELECTOR_H_
#define SPARKSTACK_KERNELS_NVFP4_SELECTOR_H_

#include <functional>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/nvfp4/launch_config.h"

namespace sparkstack::kernels::nvfp4 {

// The GEMM shapes the runtime asks for: decode (m small, weight streaming) and prefill (m large,
// tensor cores).
enum class GemmOp : int { kDecode, kPrefill };

enum class Variant : int {
  // W4A16 CUDA-core GEMV (decode_gemv.cuh): any m, any sm_80+ device, no shared memory.
  kDecodeSimt,
  // W4A16 mma.sync bf16 GEMM with kPrefillTileLarge (128x128, 3 stages; needs an opt-in to more
  // than 48 KiB of shared memory).
  kPrefillMmaLarge,
  // The same kernel with kPrefillTileSmall (64x128, 2 stages; fits the 48 KiB default).
  kPrefillMmaSmall,
  // W4A4 GEMM on GB10's block-scaled FP4 tensor cores (prefill_fp4_mma.cuh): activations
  // quantized per 16 with GemmArgs::input_scale, compute capability 12.x only. UNVERIFIED ON
  // HARDWARE (fragment layouts derived, not measured): offered only when
  // SelectOptions::enable_fp4_mma is set (SPARKSTACK_ENABLE_FP4_MMA=1).
  kPrefillFp4Mma,
};

// Stable lower-case name for logs ("prefill_mma_128x128").
std::string_view VariantName(Variant v);

// Dynamic shared memory a launch of `v` needs, in bytes.
int VariantSmemBytes(Variant v);

// What the selector needs to know about a device.
struct DeviceInfo {
  int cc_major = 0;
  int cc_minor = 0;
  int max_smem_per_block_optin = 0;  // cudaDevAttrMaxSharedMemoryPerBlockOptin
  int sm_count = 0;
};

struct SelectOptions {
  // When > 0, no launch may use more dynamic shared memory than this (e.g. 101376 to emulate
  // GB10 on an H100). Read from SPARKSTACK_SMEM_CAP_BYTES by ParseSmemCap.
  int smem_cap_bytes = 0;
  // Offer kPrefillFp4Mma (first, on compute capability 12.x only). Off by default: W4A16 stays
  // the default on GB10 until the FP4 path is verified there. Read from SPARKSTACK_ENABLE_FP4_MMA
  // by ParseEnableFp4Mma.
  bool enable_fp4_mma = false;
};

// Parses the value of SPARKSTACK_SMEM_CAP_BYTES: null or empty means no cap (0); otherwise a
// decimal integer in [1024, 1 << 30]. Anything else is InvalidArgument naming the variable.
absl::StatusOr<int> ParseSmemCap(const char* value);

// Parses the value of SPARKSTACK_ENABLE_FP4_MMA: exactly "1" enables, null/empty/"0" disables;
// anything else is InvalidArgument naming the variable.
absl::StatusOr<bool> ParseEnableFp4Mma(const char* value);

// The shared memory a launch may use on `device` under `options`.
int EffectiveSmemLimit(const DeviceInfo& device, const SelectOptions& options);

// Whether the binary holds code for the device (builds for sm_80, sm_90 and sm_121a, plus PTX for
// compute_80 that newer devices JIT): compute capability 8.0 or newer.
bool DeviceSupported(const DeviceInfo& device);

// Variants able to run `op` on `device`, best first. Empty when the device is unsupported. The
// decode variant ends every prefill list: it computes any m correctly, only slower.
std::vector<Variant> CandidateVariants(GemmOp op, const DeviceInfo& device,
                                       const SelectOptions& options);

// Walks `candidates` in order and returns the first for which `check` returns OK. Each failure is
// logged as a warning naming the variant and the reason, so a fallback is never silent. Returns
// FailedPrecondition listing every failure when none passes (or the list is empty).
absl::StatusOr<Variant> SelectFirstPassing(
    const std::vector<Variant>& candidates,
    const std::function<absl::Status(Variant)>& check);

}  // namespace sparkstack::kernels::nvfp4

#endif  // SPARKSTACK_KERNELS_NVFP4_SELECTOR_H_
