// The NVFP4 CUDA kernels against the float64 references of kernels/cpu/nvfp4_reference.h, at odd
// sizes (n odd, k a multiple of 16 but not of 64), fresh random inputs per case and NaN-poisoned
// outputs. Every test skips when no CUDA device is visible.
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/nvfp4_reference.h"
#include "kernels/nvfp4/decode_gemv.h"
#include "kernels/nvfp4/gemm.h"
#include "kernels/nvfp4/host_problem.h"
#include "kernels/nvfp4/prefill_gemm.h"
#include "kernels/nvfp4/quantize.h"
#include "kernels/nvfp4/selector.h"
#include "kernels/nvfp4/self_check.h"
#include "runtime/core/float8.h"
#include "runtime/core/half.h"

namespace sparkstack::kernels::nvfp4 {
namespace {

// f32 outputs differ from the float64 reference only by f32 accumulation order; bf16 outputs add
// one bf16 rounding (relative 2^-9 at worst, about 1e-3 RMS).
constexpr double kF32Tolerance = 1e-4;
constexpr double kBf16Tolerance = 4e-3;

bool HaveDevice() {
  int count = 0;
  const bool ok = cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
  if (!ok) cudaGetLastError();
  return ok;
}

#define SKIP_WITHOUT_GPU()                                         \
  do {                                                             \
    if (!HaveDevice()) GTEST_SKIP() << "no CUDA device visible"; \
  } while (0)

struct CudaFree {
  void operator()(void* p) const { cudaFree(p); }
};
using DevicePtr = std::unique_ptr<void, CudaFree>;

DevicePtr DeviceAlloc(size_t bytes) {
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, bytes == 0 ? 1 : bytes), cudaSuccess);
  return DevicePtr(p);
}

template <typename T>
DevicePtr Upload(const std::vector<T>& host) {
  DevicePtr d = DeviceAlloc(host.size() * sizeof(T));
  EXPECT_EQ(cudaMemcpy(d.get(), host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice),
            cudaSuccess);
  return d;
}

template <typename T>
std::vector<T> Download(const void* d, size_t count) {
  std::vector<T> host(count);
  EXPECT_EQ(cudaMemcpy(host.data(), d, count * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
  return host;
}

DeviceInfo CurrentDevice() {
  auto info = QueryDeviceInfo(0);
  EXPECT_TRUE(info.ok()) << info.status();
  return info.ok() ? *info : DeviceInfo{};
}

// Runs variant `v` on problem `p` and returns the relative Frobenius error against the float64
// reference (infinity when any output element is left unwritten: outputs start as NaN).
double RunAndCompare(Variant v, const HostProblem& p, OutType out_type, int smem_limit,
                     int64_t ldy_pad = 0) {
  DevicePtr x = Upload(p.x);
  DevicePtr codes = Upload(p.codes);
  DevicePtr scales = Upload(p.scales);
  const int64_t ldy = p.n + ldy_pad;
  const size_t elem = out_type == OutType::kF32 ? 4 : 2;
  const size_t y_bytes = static_cast<size_t>(p.m * ldy) * elem;
  DevicePtr y = DeviceAlloc(y_bytes);
  EXPECT_EQ(cudaMemset(y.get(), 0xff, y_bytes), cudaSuccess);  // NaN in f32 and bf16

  const GemmArgs a = ArgsFor(p, x.get(), codes.get(), scales.get(), y.get(), ldy, out_type);
  EXPECT_EQ(LaunchGemm(v, a, smem_limit, nullptr), 0) << VariantName(v);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);

  std::vector<float> got(static_cast<size_t>(p.m * p.n));
  if (out_type == OutType::kF32) {
    const auto raw = Download<float>(y.get(), static_cast<size_t>(p.m * ldy));
    for (int64_t i = 0; i < p.m; ++i) {
      for (int64_t r = 0; r < p.n; ++r) got[i * p.n + r] = raw[i * ldy + r];
    }
  } else {
    const auto raw = Download<uint16_t>(y.get(), static_cast<size_t>(p.m * ldy));
    for (int64_t i = 0; i < p.m; ++i) {
      for (int64_t r = 0; r < p.n; ++r) got[i * p.n + r] = Bf16ToFloat(raw[i * ldy + r]);
    }
  }
  const std::vector<double> ref = ReferenceGemm(p);
  return RelativeFrobeniusError(got.data(), ref.data(), got.size());
}

struct Shape {
  int64_t n, k, ldw_pad;
};

// n odd; k = 13 * 16 (8-byte vectors: 104-byte rows), k = 65 * 16 with rows padded to a 16-byte
// multiple (16-byte vectors plus the 16-element tail), k = 1024 (16-byte vectors only).
constexpr Shape kShapes[] = {{37, 208, 0}, {129, 1040, 8}, {67, 1024, 0}};

// Host-side, no GPU needed: the quantize kernels round block scales with cuda_fp8.h's
// double -> E4M3 conversion (a __host__ __device__ function); it must agree with the reference
// encoder on every value, ties between neighbouring E4M3 values in particular.
TEST(Nvfp4HostConversions, CudaDoubleToE4M3MatchesReference) {
  std::vector<double> values;
  for (int b = 0; b < 0x7e; ++b) {
    const double lo = E4M3ToFloat(static_cast<uint8_t>(b));
    const double hi = E4M3ToFloat(static_cast<uint8_t>(b + 1));
    const double mid = (lo + hi) / 2;
    for (double v : {lo, hi, mid, std::nextafter(mid, 0.0), std::nextafter(mid, 1e9)}) {
      values.push_back(v);
      values.push_back(-v);
    }
  }
  std::mt19937 rng(9);
  std::uniform_real_distribution<double> exponent(-14.0, 10.0);
  for (int i = 0; i < 100000; ++i) values.push_back(std::exp2(exponent(rng)));
  for (double v : {448.0, 464.0, 465.0, 1e9, 1.0 / 1024, 1.0 / 1024 + 1e-12, 0.0}) values.push_back(v);
  for (double v : values) {
    const auto got = static_cast<uint8_t>(__nv_cvt_double_to_fp8(v, __NV_SATFINITE, __NV_E4M3));
    ASSERT_EQ(got, ToE4M3(v)) << v;
  }
}

TEST(Nvfp4DecodeGemv, MatchesReferenceAtOddSizes) {
  SKIP_WITHOUT_GPU();
  const int limit = EffectiveSmemLimit(CurrentDevice(), {});
  uint32_t seed = 1;
  for (const Shape& s : kShapes) {
    for (int64_t m : {1, 2, 3, 7, 16, 19}) {
      for (OutType out : {OutType::kF32, OutType::kBF16}) {
        const HostProblem p = MakeRandomProblem(m, s.n, s.k, seed++, s.ldw_pad, m % 2 ? 8 : 0);
        const double err = RunAndCompare(Variant::kDecodeSimt, p, out, limit, m % 3);
        EXPECT_LE(err, out == OutType::kF32 ? kF32Tolerance : kBf16Tolerance)
            << "m=" << m << " n=" << s.n << " k=" << s.k << " ldw=" << p.ldw
            << " out=" << (out == OutType::kF32 ? "f32" : "bf16");
      }
    }
  }
}

TEST(Nvfp4PrefillGemm, MatchesReferenceAtOddSizes) {
  SKIP_WITHOUT_GPU();
  const int limit = EffectiveSmemLimit(CurrentDevice(), {});
  uint32_t seed = 100;
  for (Variant v : {Variant::kPrefillMmaLarge, Variant::kPrefillMmaSmall}) {
    for (const Shape& s : kShapes) {
      for (int64_t m : {64, 65, 130}) {
        const OutType out = m == 65 ? OutType::kBF16 : OutType::kF32;
        const HostProblem p = MakeRandomProblem(m, s.n, s.k, seed++, s.ldw_pad, 0);
        const double err = RunAndCompare(v, p, out, limit, 1);
        EXPECT_LE(err, out == OutType::kF32 ? kF32Tolerance : kBf16Tolerance)
            << VariantName(v) << " m=" << m << " n=" << s.n << " k=" << s.k;
      }
    }
  }
}

TEST(Nvfp4PrefillGemm, RunsUnderTheGb10SharedMemoryCap) {
  SKIP_WITHOUT_GPU();
  SelectOptions cap;
  cap.smem_cap_bytes = kGb10MaxSmemPerBlock;
  const DeviceInfo device = CurrentDevice();
  const int limit = EffectiveSmemLimit(device, cap);
  ASSERT_LE(limit, kGb10MaxSmemPerBlock);
  const auto candidates = CandidateVariants(GemmOp::kPrefill, device, cap);
  ASSERT_FALSE(candidates.empty());
  for (Variant v : candidates) {
    ASSERT_LE(VariantSmemBytes(v), limit);
    const HostProblem p = MakeRandomProblem(130, 257, 1040, 7, 8, 0);
    EXPECT_LE(RunAndCompare(v, p, OutType::kF32, limit), kF32Tolerance) << VariantName(v);
  }
}

TEST(Nvfp4PrefillGemm, RefusesATileAboveTheLimit) {
  SKIP_WITHOUT_GPU();
  const HostProblem p = MakeRandomProblem(64, 37, 208, 3);
  DevicePtr buf = DeviceAlloc(1 << 16);
  GemmArgs a;
  a.x = buf.get();
  a.ldx = p.ldx;
  a.codes = static_cast<const uint8_t*>(buf.get());
  a.ldw = p.ldw;
  a.scales = static_cast<const uint8_t*>(buf.get());
  a.lds = p.lds;
  a.y = buf.get();
  a.ldy = p.n;
  a.m = p.m;
  a.n = p.n;
  a.k = p.k;
  EXPECT_EQ(LaunchPrefillGemm(a, true, PrefillSmemBytes(kPrefillTileLarge) - 1, nullptr),
            cudaErrorInvalidValue);
  a.k = 200;
  EXPECT_EQ(LaunchDecodeGemv(a, nullptr), cudaErrorInvalidValue);
}

TEST(Nvfp4QuantizeActivation, MatchesReferenceBitForBit) {
  SKIP_WITHOUT_GPU();
  for (const Shape& s : kShapes) {
    const int64_t m = 7;
    const int64_t k = s.k;
    std::mt19937 rng(static_cast<uint32_t>(k));
    std::normal_distribution<float> normal(0.0f, 2.0f);
    std::vector<uint16_t> x(static_cast<size_t>(m * k));
    for (auto& v : x) v = FloatToBf16(normal(rng));
    for (int64_t c = 0; c < 16; ++c) x[c] = 0;  // a zero block
    std::vector<float> xf(x.size());
    for (size_t i = 0; i < x.size(); ++i) xf[i] = Bf16ToFloat(x[i]);
    const float input_scale = 9.0f / (6.0f * 448.0f);

    const int64_t ldc = k / 2, lds = k / 16;
    std::vector<uint8_t> ref_codes(static_cast<size_t>(m * ldc)), ref_scales(static_cast<size_t>(m * lds));
    Nvfp4QuantizeActivationReference(xf.data(), m, k, k, input_scale, ref_codes.data(), ldc,
                                     ref_scales.data(), lds);

    DevicePtr dx = Upload(x);
    DevicePtr codes = DeviceAlloc(ref_codes.size());
    DevicePtr scales = DeviceAlloc(ref_scales.size());
    ASSERT_EQ(LaunchQuantizeActivation(dx.get(), k, m, k, input_scale,
                                       static_cast<uint8_t*>(codes.get()), ldc,
                                       static_cast<uint8_t*>(scales.get()), lds, nullptr),
              0);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(Download<uint8_t>(codes.get(), ref_codes.size()), ref_codes) << "k=" << k;
    EXPECT_EQ(Download<uint8_t>(scales.get(), ref_scales.size()), ref_scales) << "k=" << k;
  }
}

TEST(Nvfp4QuantizeWeight, MatchesModelOptReferenceBitForBit) {
  SKIP_WITHOUT_GPU();
  for (QuantInType type : {QuantInType::kF32, QuantInType::kBF16}) {
    for (const Shape& s : kShapes) {
      const int64_t n = s.n, k = s.k;
      std::mt19937 rng(static_cast<uint32_t>(n * k));
      std::student_t_distribution<float> heavy(3.0f);  // heavy tails: varied block scales
      std::vector<float> w(static_cast<size_t>(n * k));
      for (auto& v : w) v = heavy(rng) * 0.02f;
      for (int64_t c = 0; c < k; ++c) w[k + c] = 0.0f;           // a zero row
      for (int64_t c = 0; c < 16; ++c) w[2 * k + c] = 1e-30f;    // a tiny block
      std::vector<uint16_t> wb(w.size());
      if (type == QuantInType::kBF16) {
        for (size_t i = 0; i < w.size(); ++i) {
          wb[i] = FloatToBf16(w[i]);
          w[i] = Bf16ToFloat(wb[i]);  // the reference sees exactly what the kernel reads
        }
      }
      const int64_t ldc = k / 2, lds = k / 16;
      std::vector<uint8_t> ref_codes(static_cast<size_t>(n * ldc)), ref_scales(static_cast<size_t>(n * lds));
      float ref_global = 0.0f;
      Nvfp4QuantizeWeightReference(w.data(), n, k, k, ref_codes.data(), ldc, ref_scales.data(),
                                   lds, &ref_global);

      DevicePtr dw = type == QuantInType::kF32 ? Upload(w) : Upload(wb);
      DevicePtr codes = DeviceAlloc(ref_codes.size());
      DevicePtr scales = DeviceAlloc(ref_scales.size());
      DevicePtr global = DeviceAlloc(sizeof(float));
      DevicePtr workspace = DeviceAlloc(sizeof(uint32_t));
      ASSERT_EQ(LaunchQuantizeWeight(dw.get(), type, k, n, k, static_cast<uint8_t*>(codes.get()),
                                     ldc, static_cast<uint8_t*>(scales.get()), lds,
                                     static_cast<float*>(global.get()),
                                     static_cast<uint32_t*>(workspace.get()), nullptr),
                0);
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      EXPECT_EQ(Download<float>(global.get(), 1)[0], ref_global);
      EXPECT_EQ(Download<uint8_t>(codes.get(), ref_codes.size()), ref_codes) << "n=" << n << " k=" << k;
      EXPECT_EQ(Download<uint8_t>(scales.get(), ref_scales.size()), ref_scales) << "n=" << n << " k=" << k;
    }
  }
}

TEST(Nvfp4SelfCheck, HealthyDeviceKeepsThePreferredVariant) {
  SKIP_WITHOUT_GPU();
  const DeviceInfo device = CurrentDevice();
  for (int cap : {0, kGb10MaxSmemPerBlock}) {
    SelectOptions options;
    options.smem_cap_bytes = cap;
    for (GemmOp op : {GemmOp::kDecode, GemmOp::kPrefill}) {
      const auto candidates = CandidateVariants(op, device, options);
      ASSERT_FALSE(candidates.empty());
      const auto chosen = SelectVerifiedVariant(op, device, options);
      ASSERT_TRUE(chosen.ok()) << chosen.status();
      EXPECT_EQ(*chosen, candidates.front());
    }
  }
}

}  // namespace
}  // namespace sparkstack::kernels::nvfp4
