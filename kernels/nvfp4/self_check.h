// Start-up self-check of the NVFP4 GEMM variants (CUDA builds only): each selected variant runs a
// small random problem on the device and is compared with the float64 CPU reference
// (kernels/cpu/nvfp4_reference.h); a variant that disagrees is skipped with a warning and the next
// candidate of CandidateVariants is tried.
//
// Thread safety: functions may be called from any thread; they use the calling thread's current
// CUDA device and synchronize it.
#ifndef SPARKSTACK_KERNELS_NVFP4_SELF_CHECK_H_
#define SPARKSTACK_KERNELS_NVFP4_SELF_CHECK_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/nvfp4/selector.h"

namespace sparkstack::kernels::nvfp4 {

// Properties of CUDA device `device`; Unavailable when there is no such device or no driver.
absl::StatusOr<DeviceInfo> QueryDeviceInfo(int device);

// Options from the environment: SPARKSTACK_SMEM_CAP_BYTES (see ParseSmemCap).
absl::StatusOr<SelectOptions> SelectOptionsFromEnv();

// ||got - ref||_F / ||ref||_F; +infinity when any `got` value is not finite (a poisoned output
// the kernel failed to write), 0 when both are zero.
double RelativeFrobeniusError(const float* got, const double* ref, size_t count);

// The self-check tolerance on the relative Frobenius error (f32 outputs, bf16 activations that
// the reference uses exactly; f32 accumulation order is the only difference).
inline constexpr double kSelfCheckTolerance = 1e-3;

// Runs `v` on a random problem shaped like `op` (decode: m = 3; prefill: m = 70; n = 37,
// k = 272 so that the k tail and out-of-range tiles are exercised) and returns Internal with the
// measured error when it exceeds kSelfCheckTolerance, or the CUDA error.
absl::Status SelfCheckVariant(Variant v, GemmOp op, const DeviceInfo& device,
                              const SelectOptions& options);

// CandidateVariants(op, device, options) walked with SelfCheckVariant.
absl::StatusOr<Variant> SelectVerifiedVariant(GemmOp op, const DeviceInfo& device,
                                              const SelectOptions& options);

}  // namespace sparkstack::kernels::nvfp4

#endif  // SPARKSTACK_KERNELS_NVFP4_SELF_CHECK_H_
