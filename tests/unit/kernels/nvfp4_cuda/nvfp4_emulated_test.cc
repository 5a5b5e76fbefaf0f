// Every NVFP4 CUDA kernel, through its real launcher, run by the host emulation of CUDA
// (kernels/emu) against the float64 references of kernels/cpu/nvfp4_reference.h. Problems are odd
// (n odd, k = 16 * odd, partial tiles), span several blocks in both grid dimensions, and are views
// into larger tensors: a tensor-parallel slice of weight rows and of k (row stride larger than the
// row, scale rows starting at odd bytes, x starting mid-row), written into a column slice of a
// larger output that must stay untouched outside the view. Outputs start poisoned (NaN). The
// emulated device is a GB10 unless a test says otherwise. No GPU: nothing here skips.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/nvfp4_reference.h"
#include "kernels/cuda/runtime.h"
#include "kernels/nvfp4/gemm.h"
#include "kernels/nvfp4/host_problem.h"
#include "kernels/nvfp4/prefill_fp4_mma.h"
#include "kernels/nvfp4/prefill_fp4_mma_layout.h"
#include "kernels/nvfp4/prefill_fp4_mma_quant.h"
#include "kernels/nvfp4/prefill_fp4_mma_reference.h"
#include "kernels/nvfp4/prefill_gemm.h"
#include "kernels/nvfp4/quantize.h"
#include "kernels/nvfp4/selector.h"
#include "kernels/nvfp4/self_check.h"
#include "runtime/core/half.h"

namespace sparkstack::kernels::nvfp4 {
namespace {

// f32 outputs differ from the float64 reference by f32 accumulation order only; bf16 outputs add
// one bf16 rounding (relative 2^-9 at worst).
constexpr double kF32Tolerance = 1e-5;
constexpr double kBf16Tolerance = 4e-3;

class Nvfp4EmulatedTest : public ::testing::Test {
 protected:
  void SetUp() override { emu::SetEmulatedDevice(emu::Gb10Device()); }
  void TearDown() override { emu::ResetEmulatedDevice(); }
};

// A GEMM on a view of `full`: weight rows [row0, row0 + n), k range [k0, k0 + k), the first m
// activation rows.
struct View {
  int64_t row0, k0, m, n, k;
};

// The view's operands copied out contiguously, for the references.
HostProblem Slice(const HostProblem& full, const View& v) {
  HostProblem p;
  p.m = v.m;
  p.n = v.n;
  p.k = v.k;
  p.ldx = v.k;
  p.ldw = v.k / 2;
  p.lds = v.k / 16;
  p.global_scale = full.global_scale;
  for (int64_t i = 0; i < v.m; ++i) {
    for (int64_t c = 0; c < v.k; ++c) p.x.push_back(full.x[i * full.ldx + v.k0 + c]);
  }
  for (int64_t r = 0; r < v.n; ++r) {
    for (int64_t c = 0; c < v.k / 2; ++c)
      p.codes.push_back(full.codes[(v.row0 + r) * full.ldw + v.k0 / 2 + c]);
    for (int64_t b = 0; b < v.k / 16; ++b)
      p.scales.push_back(full.scales[(v.row0 + r) * full.lds + v.k0 / 16 + b]);
  }
  return p;
}

// Runs variant `variant` on the view, writing y into columns [col0, col0 + n) of an [m, ldy]
// output, and returns the relative Frobenius error against `ref` (infinity when an output stays
// NaN). Fails the test when anything outside the view's outputs was written.
double RunView(Variant variant, const HostProblem& full, const View& v,
               const std::vector<double>& ref, OutType out_type, float input_scale = 0.0f) {
  const int64_t col0 = 3, ldy = v.n + 11;
  const size_t elem = out_type == OutType::kF32 ? 4 : 2;
  std::vector<uint8_t> y(static_cast<size_t>(v.m * ldy) * elem + 64, 0xff);
  GemmArgs a = ArgsFor(full, full.x.data() + v.k0, full.codes.data() + v.row0 * full.ldw + v.k0 / 2,
                       full.scales.data() + v.row0 * full.lds + v.k0 / 16, y.data() + col0 * elem,
                       ldy, out_type, input_scale);
  a.m = v.m;
  a.n = v.n;
  a.k = v.k;
  const int err = LaunchGemm(variant, a, kGb10MaxSmemPerBlock, nullptr);
  EXPECT_EQ(err, cudaSuccess) << VariantName(variant) << ": "
                              << cudaGetErrorName(static_cast<cudaError_t>(err)) << " "
                              << emu::LastKernelFailure();
  std::vector<float> got(static_cast<size_t>(v.m * v.n));
  for (int64_t i = 0; i < v.m; ++i) {
    for (int64_t j = -col0; j < ldy - col0; ++j) {
      const size_t at = static_cast<size_t>((i * ldy + col0 + j)) * elem;
      const bool inside = j >= 0 && j < v.n;
      if (!inside) {
        for (size_t b = 0; b < elem; ++b) {
          EXPECT_EQ(y[at + b], 0xff)
              << VariantName(variant) << " wrote outside the view: row " << i << " column " << j;
        }
        continue;
      }
      float value;
      if (out_type == OutType::kF32) {
        std::memcpy(&value, &y[at], 4);
      } else {
        uint16_t bits;
        std::memcpy(&bits, &y[at], 2);
        value = Bf16ToFloat(bits);
      }
      got[i * v.n + j] = value;
    }
  }
  return RelativeFrobeniusError(got.data(), ref.data(), got.size());
}

// Weight storage of 200 rows x 416 k (row strides 208 + pad bytes), activations of 40 or 140 rows.
HostProblem FullProblem(int64_t m, uint32_t seed, int64_t ldw_pad, int64_t ldx_pad) {
  return MakeRandomProblem(m, /*n=*/200, /*k=*/416, seed, ldw_pad, ldx_pad);
}

TEST_F(Nvfp4EmulatedTest, DecodeGemvMatchesReferenceOnTensorParallelViews) {
  // ldw 208 (16-byte rows: the vec16 path with its 16-element tail at k = 272) and 216 (8-byte
  // rows: the vec8 path); k0 = 48 starts scale rows at byte 3.
  struct Case {
    int64_t ldw_pad, k0, k, n;
  };
  const Case cases[] = {{0, 64, 272, 37}, {8, 48, 208, 35}, {0, 0, 16, 9}};
  uint32_t seed = 1;
  for (const Case& c : cases) {
    for (int64_t m : {1, 3, 17}) {  // m tiles 1, 4, 16 (17: two tiles along grid y)
      const HostProblem full = FullProblem(m, seed++, c.ldw_pad, m % 2 ? 8 : 0);
      const View v{/*row0=*/37, c.k0, m, c.n, c.k};
      const std::vector<double> ref = ReferenceGemm(Slice(full, v));
      for (OutType out : {OutType::kF32, OutType::kBF16}) {
        EXPECT_LE(RunView(Variant::kDecodeSimt, full, v, ref, out),
                  out == OutType::kF32 ? kF32Tolerance : kBf16Tolerance)
            << "m=" << m << " n=" << c.n << " k=" << c.k << " ldw=" << full.ldw;
      }
    }
  }
}

TEST_F(Nvfp4EmulatedTest, PrefillGemmMatchesReferenceOnTensorParallelViews) {
  // m = 130 and n = 131: 2 x 2 blocks of the 128 x 128 tile, 3 x 2 of the 64 x 128 one; k = 208 is
  // 3 full 64-slices and a 16-element tail; k0 = 48 makes the scale rows unaligned (no 4-byte
  // cp.async for them).
  struct Case {
    int64_t k0, k;
  };
  uint32_t seed = 100;
  for (Variant variant : {Variant::kPrefillMmaLarge, Variant::kPrefillMmaSmall}) {
    for (const Case& c : {Case{48, 208}, Case{64, 144}}) {
      const HostProblem full = FullProblem(/*m=*/130, seed++, /*ldw_pad=*/8, /*ldx_pad=*/8);
      const View v{/*row0=*/5, c.k0, /*m=*/130, /*n=*/131, c.k};
      const std::vector<double> ref = ReferenceGemm(Slice(full, v));
      const OutType out = c.k0 == 48 ? OutType::kF32 : OutType::kBF16;
      EXPECT_LE(RunView(variant, full, v, ref, out),
                out == OutType::kF32 ? kF32Tolerance : kBf16Tolerance)
          << VariantName(variant) << " k0=" << c.k0 << " k=" << c.k;
    }
  }
}

TEST_F(Nvfp4EmulatedTest, PrefillGemmNeedsTheSharedMemoryOptIn) {
  // The large tile needs 87,552 bytes: without the launcher's cudaFuncSetAttribute the emulated
  // launch refuses, like a device; with a limit below the tile the launcher refuses first.
  const HostProblem full = FullProblem(64, 7, 0, 0);
  const View v{0, 0, 64, 37, 208};
  std::vector<float> y(64 * 37);
  GemmArgs a = ArgsFor(Slice(full, v), full.x.data(), full.codes.data(), full.scales.data(),
                       y.data(), 37, OutType::kF32);
  a.ldx = full.ldx;
  a.ldw = full.ldw;
  a.lds = full.lds;
  EXPECT_EQ(
      LaunchPrefillGemm(a, /*large_tile=*/true, PrefillSmemBytes(kPrefillTileLarge) - 1, nullptr),
      cudaErrorInvalidValue);
  EXPECT_EQ(LaunchPrefillGemm(a, /*large_tile=*/true, kGb10MaxSmemPerBlock, nullptr), cudaSuccess);
}

TEST_F(Nvfp4EmulatedTest, Fp4MmaMatchesW4A4ReferenceOnTensorParallelViews) {
  struct Case {
    int64_t k0, k;
  };
  uint32_t seed = 300;
  // k = 208: one 128-slice and a partial one (5 of 8 blocks); k = 96: a single partial slice.
  for (const Case& c : {Case{48, 208}, Case{64, 96}}) {
    const HostProblem full = FullProblem(/*m=*/130, seed++, /*ldw_pad=*/8, /*ldx_pad=*/8);
    const View v{/*row0=*/5, c.k0, /*m=*/130, /*n=*/131, c.k};
    const HostProblem slice = Slice(full, v);
    const float input_scale = CalibratedInputScale(slice);
    const std::vector<double> ref = ReferenceW4A4Gemm(slice, input_scale);
    EXPECT_LE(RunView(Variant::kPrefillFp4Mma, full, v, ref, OutType::kF32, input_scale),
              kF32Tolerance)
        << "k0=" << c.k0 << " k=" << c.k;
    EXPECT_LE(RunView(Variant::kPrefillFp4Mma, full, v, ref, OutType::kBF16, input_scale),
              kBf16Tolerance)
        << "k0=" << c.k0 << " k=" << c.k;
  }
}

// Codes and scales of Fp4QuantizeBlock16 (the FP4 MMA GEMM's fused activation quantizer) that
// differ from Nvfp4QuantizeActivationReference on x [m, k] (contiguous).
struct QuantizerMismatches {
  int64_t codes = 0, scales = 0;
};
QuantizerMismatches CompareFusedQuantizer(const std::vector<float>& x, int64_t m, int64_t k,
                                          float input_scale) {
  std::vector<uint8_t> ref_codes(static_cast<size_t>(m * k / 2));
  std::vector<uint8_t> ref_scales(static_cast<size_t>(m * k / 16));
  Nvfp4QuantizeActivationReference(x.data(), m, k, k, input_scale, ref_codes.data(), k / 2,
                                   ref_scales.data(), k / 16);
  QuantizerMismatches bad;
  for (int64_t b = 0; b < m * k / 16; ++b) {
    uint32_t lo = 0, hi = 0;
    const uint32_t sb = Fp4QuantizeBlock16(&x[b * 16], input_scale, &lo, &hi);
    bad.scales += sb != ref_scales[b];
    for (int i = 0; i < 16; ++i) {
      const uint32_t got = ((i < 8 ? lo : hi) >> (4 * (i % 8))) & 0xf;
      const uint32_t want = (ref_codes[b * 8 + i / 2] >> (4 * (i % 2))) & 0xf;
      bad.codes += got != want;
    }
  }
  return bad;
}

// The defect this guards against: computing 1 / input_scale in float32 flipped 20 of the 19,040
// codes of the self-check's problem below (its error 5.0e-3 against the 1e-3 tolerance).
TEST_F(Nvfp4EmulatedTest, Fp4FusedQuantizerMatchesTheReferenceBitForBit) {
  {
    const HostProblem p = MakeRandomProblem(70, 37, 272, 1234u + 70, 8, 8);  // as SelfCheckVariant
    std::vector<float> x(static_cast<size_t>(p.m * p.k));
    for (int64_t i = 0; i < p.m; ++i) {
      for (int64_t c = 0; c < p.k; ++c) x[i * p.k + c] = Bf16ToFloat(p.x[i * p.ldx + c]);
    }
    const QuantizerMismatches bad = CompareFusedQuantizer(x, p.m, p.k, CalibratedInputScale(p));
    EXPECT_EQ(bad.codes, 0);
    EXPECT_EQ(bad.scales, 0);
  }
  // bf16 rows whose block magnitudes span many binades (subnormal and saturated block scales),
  // some blocks all zero, blocks made of exact e2m1 ties of their block scale, and NaN / infinite
  // values, at calibrated scales (amax / 2688, and 4x smaller: saturated blocks) and at a power of
  // two.
  const int64_t m = 64, k = 1024;
  std::mt19937 rng(21);
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
  std::uniform_real_distribution<float> binade(-12.0f, 6.0f);
  std::vector<float> x(static_cast<size_t>(m * k));
  const float kTies[] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f, 6.0f};
  float amax = 0.0f;
  for (int64_t b = 0; b < m * k / 16; ++b) {
    const float magnitude = std::exp2(std::round(binade(rng)));
    for (int i = 0; i < 16; ++i) {
      float v = unit(rng) * magnitude;
      if (b % 97 == 0) v = 0.0f;
      if (b % 5 == 1) v = (i % 2 ? -1.0f : 1.0f) * kTies[i % 8] * magnitude / 6.0f;
      x[b * 16 + i] = Bf16ToFloat(FloatToBf16(v));
      amax = std::fmax(amax, std::fabs(x[b * 16 + i]));
    }
  }
  for (const float input_scale : {amax / (6.0f * 448.0f), amax / (6.0f * 448.0f) * 0.25f,
                                  std::exp2(std::round(std::log2(amax / 2688.0f)))}) {
    const QuantizerMismatches bad = CompareFusedQuantizer(x, m, k, input_scale);
    EXPECT_EQ(bad.codes, 0) << "input_scale " << input_scale;
    EXPECT_EQ(bad.scales, 0) << "input_scale " << input_scale;
  }
  std::vector<float> special(16, 1.0f);
  special[3] = NAN;
  special[4] = -INFINITY;
  special[5] = -0.0f;
  special[6] = -1e-30f;  // rounds to zero, keeps its sign
  const QuantizerMismatches bad = CompareFusedQuantizer(special, 1, 16, 1.0f / 2688.0f);
  EXPECT_EQ(bad.codes, 0);
  EXPECT_EQ(bad.scales, 0);
}

// The start-up self-check's own W4A4 problem (m = 70, n = 37, k = 272, calibrated input scale
// amax / 2688): the variant must pass it, or a GB10 always falls back to W4A16.
TEST_F(Nvfp4EmulatedTest, Fp4MmaPassesTheStartUpSelfCheck) {
  auto device = QueryDeviceInfo(0);
  ASSERT_TRUE(device.ok()) << device.status();
  SelectOptions options;
  options.enable_fp4_mma = true;
  const absl::Status status =
      SelfCheckVariant(Variant::kPrefillFp4Mma, GemmOp::kPrefill, *device, options);
  EXPECT_TRUE(status.ok()) << status;
  const auto chosen = SelectVerifiedVariant(GemmOp::kPrefill, *device, options);
  ASSERT_TRUE(chosen.ok()) << chosen.status();
  EXPECT_EQ(*chosen, Variant::kPrefillFp4Mma);
}

TEST_F(Nvfp4EmulatedTest, Fp4MmaIsRefusedOnDevicesWithoutIt) {
  emu::SetEmulatedDevice(emu::H100Device());
  const HostProblem p = MakeRandomProblem(64, 33, 128, 5);
  std::vector<float> y(64 * 33);
  const GemmArgs a =
      ArgsFor(p, p.x.data(), p.codes.data(), p.scales.data(), y.data(), 33, OutType::kF32, 0.01f);
  EXPECT_EQ(LaunchPrefillFp4Mma(a, 1 << 20, nullptr), cudaErrorInvalidDevice);
}

TEST_F(Nvfp4EmulatedTest, QuantizeActivationMatchesReferenceBitForBit) {
  // 37 rows x 13 blocks = 481 blocks of 16: two thread blocks; padded input and output strides.
  const int64_t m = 37, k = 208, ldx = k + 24, ldc = k / 2 + 5, lds = k / 16 + 3;
  std::mt19937 rng(17);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<uint16_t> x(static_cast<size_t>(m * ldx), FloatToBf16(NAN));
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t c = 0; c < k; ++c) x[i * ldx + c] = FloatToBf16(normal(rng));
  }
  for (int64_t c = 0; c < 16; ++c) x[ldx + c] = 0;  // a zero block
  std::vector<float> xf(static_cast<size_t>(m * k));
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t c = 0; c < k; ++c) xf[i * k + c] = Bf16ToFloat(x[i * ldx + c]);
  }
  const float input_scale = 9.0f / (6.0f * 448.0f);
  std::vector<uint8_t> ref_codes(static_cast<size_t>(m * ldc), 0xee);
  std::vector<uint8_t> ref_scales(static_cast<size_t>(m * lds), 0xee);
  Nvfp4QuantizeActivationReference(xf.data(), m, k, k, input_scale, ref_codes.data(), ldc,
                                   ref_scales.data(), lds);
  std::vector<uint8_t> codes(ref_codes.size(), 0xee), scales(ref_scales.size(), 0xee);
  ASSERT_EQ(LaunchQuantizeActivation(x.data(), ldx, m, k, input_scale, codes.data(), ldc,
                                     scales.data(), lds, nullptr),
            cudaSuccess)
      << emu::LastKernelFailure();
  EXPECT_EQ(codes, ref_codes);
  EXPECT_EQ(scales, ref_scales);
}

TEST_F(Nvfp4EmulatedTest, QuantizeWeightMatchesModelOptReferenceBitForBit) {
  const int64_t n = 37, k = 208, ldc = k / 2 + 3, lds = k / 16 + 1;
  for (QuantInType type : {QuantInType::kF32, QuantInType::kBF16}) {
    const int64_t ldw = k + 8;  // 16-byte rows in both types
    std::mt19937 rng(type == QuantInType::kF32 ? 5 : 6);
    std::student_t_distribution<float> heavy(3.0f);
    std::vector<float> w(static_cast<size_t>(n * ldw), NAN);
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t c = 0; c < k; ++c) w[r * ldw + c] = heavy(rng) * 0.02f;
    }
    for (int64_t c = 0; c < k; ++c) w[ldw + c] = 0.0f;         // a zero row
    for (int64_t c = 0; c < 16; ++c) w[2 * ldw + c] = 1e-30f;  // a tiny block
    std::vector<uint16_t> wb(w.size());
    for (size_t i = 0; i < w.size(); ++i) {
      wb[i] = FloatToBf16(w[i]);
      if (type == QuantInType::kBF16) w[i] = Bf16ToFloat(wb[i]);
    }
    std::vector<float> dense(static_cast<size_t>(n * k));
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t c = 0; c < k; ++c) dense[r * k + c] = w[r * ldw + c];
    }
    std::vector<uint8_t> ref_codes(static_cast<size_t>(n * ldc), 0xee);
    std::vector<uint8_t> ref_scales(static_cast<size_t>(n * lds), 0xee);
    float ref_global = 0.0f;
    Nvfp4QuantizeWeightReference(dense.data(), n, k, k, ref_codes.data(), ldc, ref_scales.data(),
                                 lds, &ref_global);
    std::vector<uint8_t> codes(ref_codes.size(), 0xee), scales(ref_scales.size(), 0xee);
    float global = 0.0f;
    uint32_t workspace = 0xffffffffu;
    const void* src = type == QuantInType::kF32 ? static_cast<const void*>(w.data()) : wb.data();
    ASSERT_EQ(LaunchQuantizeWeight(src, type, ldw, n, k, codes.data(), ldc, scales.data(), lds,
                                   &global, &workspace, nullptr),
              cudaSuccess)
        << emu::LastKernelFailure();
    EXPECT_EQ(global, ref_global);
    EXPECT_EQ(codes, ref_codes);
    EXPECT_EQ(scales, ref_scales);
  }
}

TEST_F(Nvfp4EmulatedTest, SelfCheckKeepsThePreferredVariantOnGb10AndH100) {
  for (const emu::DeviceProperties& d : {emu::Gb10Device(), emu::H100Device()}) {
    emu::SetEmulatedDevice(d);
    auto device = QueryDeviceInfo(0);
    ASSERT_TRUE(device.ok()) << device.status();
    for (GemmOp op : {GemmOp::kDecode, GemmOp::kPrefill}) {
      const std::vector<Variant> candidates = CandidateVariants(op, *device, {});
      ASSERT_FALSE(candidates.empty());
      const auto chosen = SelectVerifiedVariant(op, *device, {});
      ASSERT_TRUE(chosen.ok()) << chosen.status();
      EXPECT_EQ(*chosen, candidates.front()) << d.name;
    }
  }
}

}  // namespace
}  // namespace sparkstack::kernels::nvfp4
