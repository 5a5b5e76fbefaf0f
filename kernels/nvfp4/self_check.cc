#include "kernels/nvfp4/self_check.h"

#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/runtime.h"
#include "kernels/nvfp4/gemm.h"
#include "kernels/nvfp4/host_problem.h"
#include "kernels/nvfp4/prefill_fp4_mma_reference.h"

namespace sparkstack::kernels::nvfp4 {
namespace {

absl::Status CudaStatus(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("nvfp4 self-check: ", what, ": ", cudaGetErrorName(e),
                                          " (", cudaGetErrorString(e), ")"));
}

// Device allocation released on scope exit.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (ptr_ != nullptr) cudaFree(ptr_);
  }
  absl::Status Allocate(size_t bytes) {
    return CudaStatus(cudaMalloc(&ptr_, bytes == 0 ? 1 : bytes), "cudaMalloc");
  }
  absl::Status Upload(const void* src, size_t bytes) {
    return CudaStatus(cudaMemcpy(ptr_, src, bytes, cudaMemcpyHostToDevice), "cudaMemcpy H2D");
  }
  void* get() const { return ptr_; }

 private:
  void* ptr_ = nullptr;
};

}  // namespace

absl::StatusOr<DeviceInfo> QueryDeviceInfo(int device) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count <= device || device < 0) {
    cudaGetLastError();  // clear the sticky-free error so later calls start clean
    return absl::UnavailableError(
        absl::StrCat("nvfp4: no CUDA device ", device, " (", count, " visible)"));
  }
  DeviceInfo info;
  cudaError_t e = cudaDeviceGetAttribute(&info.cc_major, cudaDevAttrComputeCapabilityMajor, device);
  if (e == cudaSuccess) {
    e = cudaDeviceGetAttribute(&info.cc_minor, cudaDevAttrComputeCapabilityMinor, device);
  }
  if (e == cudaSuccess) {
    e = cudaDeviceGetAttribute(&info.max_smem_per_block_optin,
                               cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  }
  if (e == cudaSuccess) {
    e = cudaDeviceGetAttribute(&info.sm_count, cudaDevAttrMultiProcessorCount, device);
  }
  if (e != cudaSuccess) return CudaStatus(e, "cudaDeviceGetAttribute");
  return info;
}

absl::StatusOr<SelectOptions> SelectOptionsFromEnv() {
  SelectOptions options;
  auto cap = ParseSmemCap(std::getenv("SPARKSTACK_SMEM_CAP_BYTES"));
  if (!cap.ok()) return cap.status();
  options.smem_cap_bytes = *cap;
  auto fp4_mma = ParseEnableFp4Mma(std::getenv("SPARKSTACK_ENABLE_FP4_MMA"));
  if (!fp4_mma.ok()) return fp4_mma.status();
  options.enable_fp4_mma = *fp4_mma;
  return options;
}

double RelativeFrobeniusError(const float* got, const double* ref, size_t count) {
  double diff = 0.0;
  double norm = 0.0;
  for (size_t i = 0; i < count; ++i) {
    if (!std::isfinite(got[i])) return std::numeric_limits<double>::infinity();
    const double d = static_cast<double>(got[i]) - ref[i];
    diff += d * d;
    norm += ref[i] * ref[i];
  }
  if (norm == 0.0) return diff == 0.0 ? 0.0 : std::numeric_limits<double>::infinity();
  return std::sqrt(diff / norm);
}

absl::Status SelfCheckVariant(Variant v, GemmOp op, const DeviceInfo& device,
                              const SelectOptions& options) {
  const int64_t m = op == GemmOp::kDecode ? 3 : 70;
  // k = 272 = 17 * 16: 16-byte vectors plus a 16-element tail; codes rows padded to 144 bytes.
  const HostProblem p = MakeRandomProblem(m, /*n=*/37, /*k=*/272, /*seed=*/1234u + m,
                                          /*ldw_pad=*/8, /*ldx_pad=*/8);
  // The W4A4 variant quantizes x itself: compare it with the W4A4 reference at a calibrated
  // input_scale (the W4A16 variants ignore input_scale).
  const bool w4a4 = v == Variant::kPrefillFp4Mma;
  const float input_scale = w4a4 ? CalibratedInputScale(p) : 0.0f;
  const std::vector<double> ref = w4a4 ? ReferenceW4A4Gemm(p, input_scale) : ReferenceGemm(p);

  DeviceBuffer x, codes, scales, y;
  const size_t y_bytes = static_cast<size_t>(p.m * p.n) * sizeof(float);
  if (auto s = x.Allocate(p.x.size() * 2); !s.ok()) return s;
  if (auto s = codes.Allocate(p.codes.size()); !s.ok()) return s;
  if (auto s = scales.Allocate(p.scales.size()); !s.ok()) return s;
  if (auto s = y.Allocate(y_bytes); !s.ok()) return s;
  if (auto s = x.Upload(p.x.data(), p.x.size() * 2); !s.ok()) return s;
  if (auto s = codes.Upload(p.codes.data(), p.codes.size()); !s.ok()) return s;
  if (auto s = scales.Upload(p.scales.data(), p.scales.size()); !s.ok()) return s;
  // Poison the output: a kernel that skips an element leaves NaN behind.
  if (auto s = CudaStatus(cudaMemset(y.get(), 0xff, y_bytes), "cudaMemset"); !s.ok()) return s;

  const GemmArgs a =
      ArgsFor(p, x.get(), codes.get(), scales.get(), y.get(), p.n, OutType::kF32, input_scale);
  const int limit = EffectiveSmemLimit(device, options);
  if (auto s = CudaStatus(static_cast<cudaError_t>(LaunchGemm(v, a, limit, nullptr)), "launch");
      !s.ok()) {
    return s;
  }
  if (auto s = CudaStatus(cudaDeviceSynchronize(), "kernel"); !s.ok()) return s;
  std::vector<float> got(static_cast<size_t>(p.m * p.n));
  if (auto s = CudaStatus(cudaMemcpy(got.data(), y.get(), y_bytes, cudaMemcpyDeviceToHost),
                          "cudaMemcpy D2H");
      !s.ok()) {
    return s;
  }
  const double err = RelativeFrobeniusError(got.data(), ref.data(), got.size());
  if (!(err <= kSelfCheckTolerance)) {
    return absl::InternalError(absl::StrCat("relative Frobenius error ", err, " > ",
                                            kSelfCheckTolerance, " on m=", p.m, " n=", p.n,
                                            " k=", p.k));
  }
  return absl::OkStatus();
}

absl::StatusOr<Variant> SelectVerifiedVariant(GemmOp op, const DeviceInfo& device,
                                              const SelectOptions& options) {
  return SelectFirstPassing(CandidateVariants(op, device, options),
                            [&](Variant v) { return SelfCheckVariant(v, op, device, options); });
}

}  // namespace sparkstack::kernels::nvfp4
