// The sm_121a W4A4 prefill GEMM (kPrefillFp4Mma) on the device against the float64 W4A4
// reference (Nvfp4QuantizeActivationReference + Nvfp4W4A4GemmReference via
// ReferenceW4A4Gemm), at m in {64, 65, 130}, odd n, k a multiple of 64 and k = 16 * odd (the
// partial last slice). Device tests skip without a CUDA device and on devices that are not
// compute capability 12.x; the argument checks run everywhere (nothing is launched).
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/nvfp4/gemm.h"
#include "kernels/nvfp4/host_problem.h"
#include "kernels/nvfp4/prefill_fp4_mma.h"
#include "kernels/nvfp4/prefill_fp4_mma_layout.h"
#include "kernels/nvfp4/prefill_fp4_mma_reference.h"
#include "kernels/nvfp4/self_check.h"
#include "runtime/core/half.h"

namespace sparkstack::kernels::nvfp4 {
namespace {

// The block-scaled MMA accumulates in f32 (possibly with reduced internal precision, as Hopper's
// FP8 MMA does); bf16 outputs add one bf16 rounding. The fused activation quantizer matches the
// float64 reference bit for bit (checked on the host in nvfp4_emulated_test).
constexpr double kF32Tolerance = 1e-3;
constexpr double kBf16Tolerance = 5e-3;

// 0 without a device, else the compute capability major of device 0.
int DeviceMajor() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    cudaGetLastError();
    return 0;
  }
  int major = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0) != cudaSuccess) return 0;
  return major;
}

#define SKIP_UNLESS_CC12()                                                                      \
  do {                                                                                          \
    const int major = DeviceMajor();                                                            \
    if (major == 0) GTEST_SKIP() << "no CUDA device visible";                                   \
    if (major != 12) GTEST_SKIP() << "block-scaled FP4 mma.sync needs compute capability 12.x"; \
  } while (0)

struct CudaFree {
  void operator()(void* p) const { cudaFree(p); }
};
using DevicePtr = std::unique_ptr<void, CudaFree>;

template <typename T>
DevicePtr Upload(const std::vector<T>& host) {
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, host.size() * sizeof(T) + 1), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(p, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice),
            cudaSuccess);
  return DevicePtr(p);
}

// Runs the variant through LaunchGemm and returns the relative Frobenius error against the W4A4
// reference (infinity when an output is left unwritten: outputs start as NaN).
double RunAndCompare(const HostProblem& p, OutType out_type) {
  const float input_scale = CalibratedInputScale(p);
  DevicePtr x = Upload(p.x);
  DevicePtr codes = Upload(p.codes);
  DevicePtr scales = Upload(p.scales);
  const size_t elem = out_type == OutType::kF32 ? 4 : 2;
  const size_t y_bytes = static_cast<size_t>(p.m * p.n) * elem;
  void* y_raw = nullptr;
  EXPECT_EQ(cudaMalloc(&y_raw, y_bytes), cudaSuccess);
  DevicePtr y(y_raw);
  EXPECT_EQ(cudaMemset(y.get(), 0xff, y_bytes), cudaSuccess);
  const GemmArgs a =
      ArgsFor(p, x.get(), codes.get(), scales.get(), y.get(), p.n, out_type, input_scale);
  EXPECT_EQ(LaunchGemm(Variant::kPrefillFp4Mma, a, kGb10MaxSmemPerBlock, nullptr), 0);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);

  std::vector<float> got(static_cast<size_t>(p.m * p.n));
  if (out_type == OutType::kF32) {
    EXPECT_EQ(cudaMemcpy(got.data(), y.get(), y_bytes, cudaMemcpyDeviceToHost), cudaSuccess);
  } else {
    std::vector<uint16_t> raw(got.size());
    EXPECT_EQ(cudaMemcpy(raw.data(), y.get(), y_bytes, cudaMemcpyDeviceToHost), cudaSuccess);
    for (size_t i = 0; i < raw.size(); ++i) got[i] = Bf16ToFloat(raw[i]);
  }
  const std::vector<double> ref = ReferenceW4A4Gemm(p, input_scale);
  return RelativeFrobeniusError(got.data(), ref.data(), got.size());
}

TEST(Nvfp4Fp4Mma, MatchesW4A4ReferenceAtOddSizes) {
  SKIP_UNLESS_CC12();
  struct Shape {
    int64_t n, k, ldw_pad, ldx_pad;
  };
  // n odd; k multiples of 64 (one and several 128-slices, a half slice), and k = 13 * 16 and
  // 21 * 16 (partial last slice, 8-byte code rows); padded strides with NaN / 0xff garbage.
  const Shape shapes[] = {
      {77, 256, 0, 0}, {131, 1024, 8, 8}, {37, 320, 0, 0}, {129, 208, 0, 8}, {33, 336, 8, 0}};
  uint32_t seed = 900;
  for (int64_t m : {64, 65, 130}) {
    for (const Shape& s : shapes) {
      const HostProblem p = MakeRandomProblem(m, s.n, s.k, ++seed, s.ldw_pad, s.ldx_pad);
      EXPECT_LT(RunAndCompare(p, OutType::kF32), kF32Tolerance)
          << "m=" << m << " n=" << s.n << " k=" << s.k << " f32";
      EXPECT_LT(RunAndCompare(p, OutType::kBF16), kBf16Tolerance)
          << "m=" << m << " n=" << s.n << " k=" << s.k << " bf16";
    }
  }
}

TEST(Nvfp4Fp4Mma, SelfCheckPassesWhenEnabled) {
  SKIP_UNLESS_CC12();
  auto device = QueryDeviceInfo(0);
  ASSERT_TRUE(device.ok()) << device.status();
  SelectOptions options;
  options.enable_fp4_mma = true;
  EXPECT_TRUE(SelfCheckVariant(Variant::kPrefillFp4Mma, GemmOp::kPrefill, *device, options).ok());
}

TEST(Nvfp4Fp4Mma, RefusesDevicesThatAreNotCc12) {
  const int major = DeviceMajor();
  if (major == 0) GTEST_SKIP() << "no CUDA device visible";
  if (major == 12) GTEST_SKIP() << "this device supports the variant";
  const HostProblem p = MakeRandomProblem(64, 33, 128, 5);
  DevicePtr x = Upload(p.x);
  DevicePtr codes = Upload(p.codes);
  DevicePtr scales = Upload(p.scales);
  DevicePtr y = Upload(std::vector<float>(p.m * p.n));
  const GemmArgs a =
      ArgsFor(p, x.get(), codes.get(), scales.get(), y.get(), p.n, OutType::kF32, 0.01f);
  EXPECT_EQ(LaunchPrefillFp4Mma(a, 1 << 20, nullptr), cudaErrorInvalidDevice);
}

// No device needed: the arguments are refused before the device is queried or anything launched.
TEST(Nvfp4Fp4Mma, RejectsBadArgumentsWithoutLaunching) {
  alignas(16) static uint8_t fake[256];
  GemmArgs a;
  a.x = fake;
  a.ldx = 128;
  a.codes = fake;
  a.ldw = 64;
  a.scales = fake;
  a.lds = 8;
  a.global_scale = 1.0f;
  a.y = fake;
  a.ldy = 8;
  a.m = 64;
  a.n = 8;
  a.k = 128;
  a.input_scale = 0.5f;
  EXPECT_EQ(ValidateFp4MmaArgs(a), nullptr);

  GemmArgs no_scale = a;
  no_scale.input_scale = 0.0f;  // a W4A16 checkpoint has no input_scale
  ASSERT_NE(ValidateFp4MmaArgs(no_scale), nullptr);
  EXPECT_NE(std::string(ValidateFp4MmaArgs(no_scale)).find("input_scale"), std::string::npos);
  EXPECT_EQ(LaunchPrefillFp4Mma(no_scale, 1 << 20, nullptr), cudaErrorInvalidValue);

  GemmArgs nan_scale = a;
  nan_scale.input_scale = NAN;
  EXPECT_EQ(LaunchPrefillFp4Mma(nan_scale, 1 << 20, nullptr), cudaErrorInvalidValue);

  GemmArgs odd_k = a;
  odd_k.k = 120;  // not a multiple of 16: no NVFP4 block structure
  ASSERT_NE(ValidateFp4MmaArgs(odd_k), nullptr);
  EXPECT_NE(std::string(ValidateFp4MmaArgs(odd_k)).find("multiple of 16"), std::string::npos);
  EXPECT_EQ(LaunchPrefillFp4Mma(odd_k, 1 << 20, nullptr), cudaErrorInvalidValue);

  // k = 16 * odd is supported (zero-filled last slice).
  GemmArgs tail_k = a;
  tail_k.k = 112;
  EXPECT_EQ(ValidateFp4MmaArgs(tail_k), nullptr);

  // A shared-memory limit below the tile is refused.
  EXPECT_EQ(LaunchPrefillFp4Mma(a, Fp4MmaSmemBytes() - 1, nullptr), cudaErrorInvalidValue);
}

}  // namespace
}  // namespace sparkstack::kernels::nvfp4
