// The CUDA backend's start-up self-check: it passes on the kernels as they are and refuses,
// naming the kernel, when one disagrees with the CPU backend (emulated, and on a device when
// present).
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "runtime/backend/cpu/cpu_backend.h"
#include "runtime/backend/cuda/cuda_backend.h"
#include "runtime/backend/cuda/self_check.h"

#if defined(SPARKSTACK_CUDA_EMULATION)
#include "kernels/emu/runtime.h"
#endif

namespace sparkstack {
namespace {

// The CPU backend with one op made wrong: what a broken kernel looks like to the self-check.
class SkewedRmsNorm final : public Backend {
 public:
  std::string_view name() const override { return "skewed"; }
  Device device() const override { return Device::kCpu; }
  absl::StatusOr<Tensor> Allocate(DType d, const Shape& s) override { return cpu_->Allocate(d, s); }
  int64_t AvailableMemory() const override { return cpu_->AvailableMemory(); }
  absl::StatusOr<Tensor> Upload(const Tensor& t) override { return cpu_->Upload(t); }
  absl::StatusOr<Weight> PrepareWeight(const Weight& w) override { return cpu_->PrepareWeight(w); }
  absl::Status CopyFromHost(const void* s, Tensor& d) override { return cpu_->CopyFromHost(s, d); }
  absl::Status CopyToHost(const Tensor& s, void* d) override { return cpu_->CopyToHost(s, d); }
  absl::Status Synchronize() override { return cpu_->Synchronize(); }
  absl::Status Embedding(const Tensor& t, const Tensor& i, int64_t f, Tensor& o) override {
    return cpu_->Embedding(t, i, f, o);
  }
  absl::Status RmsNorm(const Tensor& x, const Tensor& w, float eps, Tensor& out) override {
    if (absl::Status s = cpu_->RmsNorm(x, w, eps, out); !s.ok()) return s;
    out.data_as<float>()[out.numel() / 2] += 0.5f;
    return absl::OkStatus();
  }
  absl::Status AddRmsNorm(Tensor& r, const Tensor& d, const Tensor& w, float eps,
                          Tensor& o) override {
    return cpu_->AddRmsNorm(r, d, w, eps, o);
  }
  absl::Status Linear(const Tensor& x, const Weight& w, Tensor& o) override {
    return cpu_->Linear(x, w, o);
  }
  absl::Status Add(Tensor& x, const Tensor& y) override { return cpu_->Add(x, y); }
  absl::Status SwiGlu(const Tensor& g, const Tensor& u, Tensor& o) override {
    return cpu_->SwiGlu(g, u, o);
  }
  absl::Status Rope(Tensor& x, const Tensor& p, const RopeTables& t) override {
    return cpu_->Rope(x, p, t);
  }
  absl::Status StoreKv(const Tensor& k, const Tensor& v, const Tensor& s, Tensor& kc,
                       Tensor& vc) override {
    return cpu_->StoreKv(k, v, s, kc, vc);
  }
  absl::Status PagedAttention(const Tensor& q, const Tensor& k, const Tensor& v,
                              const AttentionMetadata& m, float s, Tensor& o) override {
    return cpu_->PagedAttention(q, k, v, m, s, o);
  }
  absl::Status GatherRows(const Tensor& x, const Tensor& r, Tensor& o) override {
    return cpu_->GatherRows(x, r, o);
  }
  absl::Status CopyColumns(const Tensor& s, int64_t sc, Tensor& d, int64_t dc,
                           int64_t w) override {
    return cpu_->CopyColumns(s, sc, d, dc, w);
  }
  absl::Status Sample(const Tensor& l, int64_t v, std::span<const SamplingRow> r,
                      std::span<SampledToken> o) override {
    return cpu_->Sample(l, v, r, o);
  }
  absl::Status AddBias(Tensor& x, const Tensor& b) override { return cpu_->AddBias(x, b); }
  absl::Status MoeRoute(const Tensor& l, const Tensor& b, const MoeRouting& r, Tensor& i,
                        Tensor& w) override {
    return cpu_->MoeRoute(l, b, r, i, w);
  }
  int64_t MoeExpertsWorkspaceBytes(int64_t t, int64_t k, const ExpertSet& e) const override {
    return cpu_->MoeExpertsWorkspaceBytes(t, k, e);
  }
  absl::Status MoeExperts(const Tensor& x, const Tensor& i, const Tensor& w, const ExpertSet& e,
                          Tensor& ws, Tensor& o) override {
    return cpu_->MoeExperts(x, i, w, e, ws, o);
  }
  absl::Status StoreLatent(const Tensor& l, const Tensor& s, Tensor& c) override {
    return cpu_->StoreLatent(l, s, c);
  }
  absl::Status PagedLatentAttention(const Tensor& q, const Tensor& c, int64_t vo, int64_t vw,
                                    const AttentionMetadata& m, float s, Tensor& o) override {
    return cpu_->PagedLatentAttention(q, c, vo, vw, m, s, o);
  }

 private:
  std::unique_ptr<Backend> cpu_ = MakeCpuBackend();
};

CudaBackendOptions SelfCheckOptions() {
  CudaBackendOptions o;
  o.max_tokens = 128;
  o.max_linear_k = 512;
  o.max_heads = 8;
  o.max_head_dim = 64;
  o.max_context = 1024;
  o.max_decode_seqs = 4;
  o.max_logit_rows = 8;
  return o;
}

class CudaSelfCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
#if defined(SPARKSTACK_CUDA_EMULATION)
    emu::SetEmulatedDevice(emu::Gb10Device());
#endif
    auto backend = MakeCudaBackend(SelfCheckOptions());
#if !defined(SPARKSTACK_CUDA_EMULATION)
    if (!backend.ok() && absl::IsFailedPrecondition(backend.status())) {
      GTEST_SKIP() << backend.status().message();
    }
#endif
    ASSERT_TRUE(backend.ok()) << backend.status();
    cuda_ = *std::move(backend);
  }
  std::unique_ptr<Backend> cuda_;
};

TEST_F(CudaSelfCheckTest, EveryKernelAgreesWithTheCpuBackend) {
  auto cpu = MakeCpuBackend({.threads = 2});
  const absl::Status status = SelfCheckCudaOps(*cuda_, *cpu, 3);
  EXPECT_TRUE(status.ok()) << status;
}

TEST_F(CudaSelfCheckTest, AMismatchRefusesNamingTheKernel) {
  SkewedRmsNorm skewed;
  const absl::Status status = SelfCheckCudaOps(*cuda_, skewed, 3);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("kernel 'rms_norm' disagrees"), std::string::npos) << status;
}

}  // namespace
}  // namespace sparkstack
