// Every vector ISA this CPU runs gives the same bits as the scalar kernels (isa_kernels.h), for
// every kernel of the table, at odd sizes with tails; the scalar path's own accuracy is checked
// against float64 by the backend tests (tests/unit/backend).
#include "kernels/cpu/isa_kernels.h"

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/paged_attention.h"
#include "kernels/cpu/rms_norm.h"
#include "kernels/cpu/swiglu.h"
#include "runtime/core/half.h"

namespace sparkstack::kernels {
namespace {

std::vector<CpuIsa> VectorIsas() {
  std::vector<CpuIsa> isas;
  for (CpuIsa isa : {CpuIsa::kAvx2, CpuIsa::kAvx512, CpuIsa::kNeon}) {
    if (CpuIsaSupported(isa)) isas.push_back(isa);
  }
  return isas;
}

std::vector<float> Random(std::mt19937& rng, int64_t count, float scale = 1.0f) {
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(count);
  for (float& x : v) x = normal(rng);
  return v;
}

void ExpectSameBits(const std::vector<float>& got, const std::vector<float>& want,
                    const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  int reported = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0 && reported++ < 5) {
      ADD_FAILURE() << what << " element " << i << ": " << got[i] << " vs scalar " << want[i];
    }
  }
}

TEST(IsaKernelsTest, KernelsForFallsBackToScalar) {
  EXPECT_EQ(KernelsFor(CpuIsa::kScalar).isa, CpuIsa::kScalar);
  for (CpuIsa isa : {CpuIsa::kAvx2, CpuIsa::kAvx512, CpuIsa::kNeon}) {
    EXPECT_EQ(KernelsFor(isa).isa, CpuIsaSupported(isa) ? isa : CpuIsa::kScalar);
  }
  EXPECT_TRUE(CpuIsaSupported(BestCpuIsa()));
}

TEST(IsaKernelsTest, ElementWiseKernelsEqualScalar) {
  std::mt19937 rng(5);
  ThreadPool pool(2);
  for (int64_t count : {1, 7, 16, 63, 64, 65, 1000, 4099}) {
    const std::vector<float> gate = Random(rng, count, 6.0f), up = Random(rng, count);
    std::vector<float> want(count), sum_want = gate;
    SwiGluF32(gate.data(), up.data(), count, want.data(), pool, CpuIsa::kScalar);
    AddF32(sum_want.data(), up.data(), count, pool, CpuIsa::kScalar);
    for (CpuIsa isa : VectorIsas()) {
      std::vector<float> got(count), sum = gate;
      SwiGluF32(gate.data(), up.data(), count, got.data(), pool, isa);
      AddF32(sum.data(), up.data(), count, pool, isa);
      ExpectSameBits(got, want, std::string("swiglu ") + CpuIsaName(isa));
      ExpectSameBits(sum, sum_want, std::string("add ") + CpuIsaName(isa));
    }
  }
}

TEST(IsaKernelsTest, ExpCoversItsRangeAndSaturates) {
  // silu(x) for large |x| through the clamped exp: finite, with the right limits.
  ThreadPool pool(1);
  const std::vector<float> gate = {-1000.0f, -90.0f, -20.0f, 0.0f, 20.0f, 90.0f, 1000.0f};
  const std::vector<float> up(gate.size(), 1.0f);
  for (CpuIsa isa : {CpuIsa::kScalar, BestCpuIsa()}) {
    std::vector<float> out(gate.size());
    SwiGluF32(gate.data(), up.data(), std::ssize(gate), out.data(), pool, isa);
    for (size_t i = 0; i < gate.size(); ++i) {
      const double g = gate[i];
      const double want = g / (1.0 + std::exp(-g));
      EXPECT_NEAR(out[i], want, 1e-6 * std::max(1.0, std::fabs(want))) << "silu(" << g << ")";
    }
  }
}

TEST(IsaKernelsTest, RmsNormAndWidenEqualScalar) {
  std::mt19937 rng(6);
  ThreadPool pool(2);
  for (int64_t width : {1, 15, 64, 100, 1031}) {
    const int64_t rows = 5;
    const std::vector<float> x = Random(rng, rows * width, 3.0f), delta = Random(rng, rows * width);
    std::vector<uint16_t> w16(width);
    for (uint16_t& w : w16) w = FloatToBf16(Random(rng, 1)[0]);
    std::vector<uint16_t> f16(width);
    for (uint16_t& w : f16) w = FloatToF16(Random(rng, 1)[0]);
    for (DType dtype : {DType::kBF16, DType::kF16}) {
      const void* weight = dtype == DType::kBF16 ? w16.data() : f16.data();
      std::vector<float> want(rows * width), residual_want = x, fused_want(rows * width);
      RmsNormF32(x.data(), rows, width, weight, dtype, 1e-5f, want.data(), pool, CpuIsa::kScalar);
      AddRmsNormF32(residual_want.data(), delta.data(), rows, width, weight, dtype, 1e-5f,
                    fused_want.data(), pool, CpuIsa::kScalar);
      std::vector<float> widened_want(width);
      KernelsFor(CpuIsa::kScalar).widen(weight, dtype, width, widened_want.data());
      for (CpuIsa isa : VectorIsas()) {
        std::vector<float> got(rows * width), residual = x, fused(rows * width);
        RmsNormF32(x.data(), rows, width, weight, dtype, 1e-5f, got.data(), pool, isa);
        AddRmsNormF32(residual.data(), delta.data(), rows, width, weight, dtype, 1e-5f,
                      fused.data(), pool, isa);
        std::vector<float> widened(width);
        KernelsFor(isa).widen(weight, dtype, width, widened.data());
        const std::string what = std::string(CpuIsaName(isa)) + " width " + std::to_string(width);
        ExpectSameBits(got, want, "rms_norm " + what);
        ExpectSameBits(residual, residual_want, "add_rms_norm residual " + what);
        ExpectSameBits(fused, fused_want, "add_rms_norm " + what);
        ExpectSameBits(widened, widened_want, "widen " + what);
      }
    }
  }
}

TEST(IsaKernelsTest, PagedAttentionEqualsScalar) {
  std::mt19937 rng(7);
  ThreadPool pool(3);
  const int64_t heads = 12, kv_heads = 3, d = 20, dv = 13, block = 16, blocks = 40;
  const std::vector<int32_t> query_start = {0, 1, 2, 37, 40};
  const std::vector<int32_t> seq_lens = {5, 130, 70, 3};
  std::vector<int32_t> table(4 * 10);
  for (size_t i = 0; i < table.size(); ++i) table[i] = static_cast<int32_t>((i * 7) % blocks);
  const std::vector<float> q = Random(rng, 40 * heads * d);
  const std::vector<float> k = Random(rng, blocks * block * kv_heads * d, 2.0f);
  const std::vector<float> v = Random(rng, blocks * block * kv_heads * dv);
  std::vector<int64_t> tiles(5);
  auto run = [&](CpuIsa isa) {
    std::vector<float> out(40 * heads * dv, NAN);
    const AttentionArgs args{.q = q.data(),
                             .heads = heads,
                             .head_dim = d,
                             .v_head_dim = dv,
                             .k_cache = k.data(),
                             .v_cache = v.data(),
                             .block_size = block,
                             .kv_heads = kv_heads,
                             .query_start = query_start.data(),
                             .seq_lens = seq_lens.data(),
                             .block_table = table.data(),
                             .max_blocks = 10,
                             .scale = 0.3f,
                             .out = out.data()};
    PagedAttentionF32(args, 4, tiles, pool, isa);
    return out;
  };
  const std::vector<float> want = run(CpuIsa::kScalar);
  for (float x : want) ASSERT_TRUE(std::isfinite(x));
  for (CpuIsa isa : VectorIsas()) ExpectSameBits(run(isa), want, CpuIsaName(isa));
}

}  // namespace
}  // namespace sparkstack::kernels
