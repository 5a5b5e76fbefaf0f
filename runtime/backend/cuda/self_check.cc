#include "runtime/backend/cuda/self_check.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/nvfp4_reference.h"
#include "runtime/backend/cuda/cuda_backend.h"
#include "runtime/core/half.h"
#include "runtime/core/status_macros.h"

namespace sparkstack {
namespace {

class Checker {
 public:
  Checker(Backend& cuda, Backend& cpu, uint64_t seed) : cuda_(cuda), cpu_(cpu), rng_(seed) {}

  Tensor Random(const Shape& shape, DType dtype = DType::kF32, float scale = 1.0f) {
    std::normal_distribution<float> dist(0.0f, scale);
    Tensor t = Tensor::Zeros(dtype, shape);
    for (int64_t i = 0; i < t.numel(); ++i) {
      const float v = dist(rng_);
      if (dtype == DType::kBF16) {
        t.data_as<uint16_t>()[i] = FloatToBf16(v);
      } else {
        t.data_as<float>()[i] = v;
      }
    }
    return t;
  }
  static Tensor Indices(const std::vector<int32_t>& v) {
    Tensor t = Tensor::Zeros(DType::kI32, {std::ssize(v)});
    std::copy(v.begin(), v.end(), t.data_as<int32_t>());
    return t;
  }
  absl::StatusOr<Tensor> Dev(const Tensor& host) { return cuda_.Upload(host); }
  absl::StatusOr<Tensor> Poisoned(const Shape& shape) {
    Tensor host = Tensor::Zeros(DType::kF32, shape);
    std::fill_n(host.data_as<float>(), host.numel(), std::numeric_limits<float>::quiet_NaN());
    return cuda_.Upload(host);
  }

  // Compares the device tensor `got` with the host tensor `want`: max |diff| over max |want|.
  absl::Status Compare(const std::string& kernel, const std::string& problem, const Tensor& got,
                       const Tensor& want, double tolerance) {
    std::vector<float> g(got.numel());
    SPARKSTACK_RETURN_IF_ERROR(cuda_.CopyToHost(got, g.data()));
    double worst = 0.0, scale = 1e-30;
    for (int64_t i = 0; i < want.numel(); ++i) {
      const double w = want.data_as<float>()[i];
      scale = std::max(scale, std::fabs(w));
      const double d = std::fabs(static_cast<double>(g[i]) - w);
      worst = std::isfinite(g[i]) ? std::max(worst, d) : std::numeric_limits<double>::infinity();
    }
    if (!(worst <= tolerance * scale)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cuda self-check: kernel '", kernel, "' disagrees with the CPU backend on ", problem,
          ": max |error| ", worst, " > ", tolerance, " x max |value| ", scale,
          "; refusing to serve with it"));
    }
    return absl::OkStatus();
  }

  absl::Status Linear(const std::string& kernel, int64_t m, int64_t n, int64_t k, DType dtype,
                      bool nvfp4, double tolerance) {
    Tensor x = Random({m, k});
    Weight host;
    if (nvfp4) {
      Tensor w = Random({n, k});
      Tensor codes = Tensor::Zeros(DType::kU8, {n, k / 2});
      Tensor scales = Tensor::Zeros(DType::kF8E4M3, {n, k / 16});
      float global = 0;
      kernels::Nvfp4QuantizeWeightReference(w.data_as<float>(), n, k, k, codes.data_as<uint8_t>(),
                                            k / 2, scales.data_as<uint8_t>(), k / 16, &global);
      SPARKSTACK_ASSIGN_OR_RETURN(
          host, Weight::Nvfp4({.codes = codes, .block_scales = scales, .global_scale = global}));
    } else {
      SPARKSTACK_ASSIGN_OR_RETURN(host, Weight::Dense(Random({n, k}, dtype, 0.3f)));
    }
    SPARKSTACK_ASSIGN_OR_RETURN(Weight prepared, cuda_.PrepareWeight(host));
    SPARKSTACK_ASSIGN_OR_RETURN(Tensor dx, Dev(x));
    SPARKSTACK_ASSIGN_OR_RETURN(Tensor y, Poisoned({m, n}));
    SPARKSTACK_RETURN_IF_ERROR(cuda_.Linear(dx, prepared, y));
    Tensor want = Tensor::Zeros(DType::kF32, {m, n});
    SPARKSTACK_ASSIGN_OR_RETURN(Weight host_prepared, cpu_.PrepareWeight(host));
    SPARKSTACK_RETURN_IF_ERROR(cpu_.Linear(x, host_prepared, want));
    return Compare(kernel, absl::StrCat("m=", m, " n=", n, " k=", k), y, want, tolerance);
  }

  absl::Status Attention(const std::string& kernel, std::vector<int32_t> query_lens,
                         std::vector<int32_t> seq_lens, double tolerance) {
    const int64_t heads = 8, kv = 2, d = 48, block = 16;
    const int64_t seqs = std::ssize(seq_lens);
    int64_t max_blocks = 1;
    for (int32_t len : seq_lens) max_blocks = std::max<int64_t>(max_blocks, (len + 15) / 16);
    const int64_t blocks = seqs * max_blocks + 1;
    std::vector<int32_t> order(blocks);
    for (int64_t i = 0; i < blocks; ++i) order[i] = static_cast<int32_t>(i);
    std::shuffle(order.begin(), order.end(), rng_);
    std::vector<int32_t> table(order.begin(), order.begin() + seqs * max_blocks);
    std::vector<int32_t> query_start = {0};
    int64_t decodes = 0, max_query = 0, max_len = 0;
    for (int64_t b = 0; b < seqs; ++b) {
      query_start.push_back(query_start.back() + query_lens[b]);
      if (query_lens[b] == 1 && decodes == b) ++decodes;
      max_query = std::max<int64_t>(max_query, query_lens[b]);
      max_len = std::max<int64_t>(max_len, seq_lens[b]);
    }
    const int64_t tokens = query_start.back();
    Tensor k_cache = Random({blocks, block, kv, d});
    Tensor v_cache = Random({blocks, block, kv, d});
    Tensor q = Random({tokens, heads, d});
    AttentionMetadata host{.num_seqs = seqs, .num_decodes = decodes, .num_tokens = tokens,
                           .max_query_len = max_query, .max_seq_len = max_len,
                           .block_size = block};
    host.query_start = Indices(query_start);
    host.seq_lens = Indices(seq_lens);
    SPARKSTACK_ASSIGN_OR_RETURN(host.block_table, Indices(table).Reshape({seqs, max_blocks}));
    host.slot_mapping = Indices(std::vector<int32_t>(tokens, -1));
    AttentionMetadata dev = host;
    SPARKSTACK_ASSIGN_OR_RETURN(dev.query_start, Dev(host.query_start));
    SPARKSTACK_ASSIGN_OR_RETURN(dev.seq_lens, Dev(host.seq_lens));
    SPARKSTACK_ASSIGN_OR_RETURN(dev.block_table, Dev(host.block_table));
    SPARKSTACK_ASSIGN_OR_RETURN(dev.slot_mapping, Dev(host.slot_mapping));
    SPARKSTACK_ASSIGN_OR_RETURN(Tensor dk, Dev(k_cache));
    SPARKSTACK_ASSIGN_OR_RETURN(Tensor dv, Dev(v_cache));
    SPARKSTACK_ASSIGN_OR_RETURN(Tensor dq, Dev(q));
    SPARKSTACK_ASSIGN_OR_RETURN(Tensor out, Poisoned({tokens, heads, d}));
    const float scale = 1.0f / std::sqrt(static_cast<float>(d));
    SPARKSTACK_RETURN_IF_ERROR(cuda_.PagedAttention(dq, dk, dv, dev, scale, out));
    Tensor want = Tensor::Zeros(DType::kF32, {tokens, heads, d});
    SPARKSTACK_RETURN_IF_ERROR(cpu_.PagedAttention(q, k_cache, v_cache, host, scale, want));
    return Compare(kernel, absl::StrCat(seqs, " sequences up to ", max_len, " positions"), out,
                   want, tolerance);
  }

  absl::Status Run() {
    const float eps = 1e-5f;
    {  // embedding
      Tensor table = Random({37, 67}, DType::kBF16);
      const std::vector<int32_t> ids = {100, 136, 5, 120, 137, 101, 99};
      SPARKSTACK_ASSIGN_OR_RETURN(Tensor dt, Dev(table));
      SPARKSTACK_ASSIGN_OR_RETURN(Tensor di, Dev(Indices(ids)));
      SPARKSTACK_ASSIGN_OR_RETURN(Tensor out, Poisoned({7, 67}));
      SPARKSTACK_RETURN_IF_ERROR(cuda_.Embedding(dt, di, 100, out));
      Tensor want = Tensor::Zeros(DType::kF32, {7, 67});
      SPARKSTACK_RETURN_IF_ERROR(cpu_.Embedding(table, Indices(ids), 100, want));
      SPARKSTACK_RETURN_IF_ERROR(Compare("embedding", "37 x 67 bf16", out, want, 0.0));
    }
    {  // rms_norm, add_rms_norm
      Tensor x = Random({9, 333});
      Tensor delta = Random({9, 333});
      Tensor w = Random({333}, DType::kBF16);
      SPARKSTACK_ASSIGN_OR_RETURN(Tensor dx, Dev(x));
      SPARKSTACK_ASSIGN_OR_RETURN(Tensor dw, Dev(w));
      SPARKSTACK_ASSIGN_OR_RETURN(Tensor out, Poisoned({9, 333}));
      SPARKSTACK_RETURN_IF_ERROR(cuda_.RmsNorm(dx, dw, eps, out));
      Tensor want = Tensor::Zeros(DType::kF32, {9, 333});
      SPARKSTACK_RETURN_IF_ERROR(cpu_.RmsNorm(x, w, eps, want));
      SPARKSTACK_RETURN_IF_ERROR(Compare("rms_norm", "9 x 333", out, want, 1e-5));
      SPARKSTACK_ASSIGN_OR_RETURN(Tensor dd, Dev(delta));
      SPARKSTACK_RETURN_IF_ERROR(cuda_.AddRmsNorm(dx, dd, dw, eps, out));
      SPARKSTACK_RETURN_IF_ERROR(cpu_.AddRmsNorm(x, delta, w, eps, want));
      SPARKSTACK_RETURN_IF_ERROR(Compare("add_rms_norm", "9 x 333", out, want, 1e-5));
      SPARKSTACK_RETURN_IF_ERROR(Compare("add_rms_norm (residual)", "9 x 333", dx, x, 1e-6));
    }
    {  // rope (partial, interleaved)
      const int64_t tokens = 11, heads = 3, d = 40, rotary = 24, positions = 64;
      Tensor cos = Random({positions, rotary / 2});
      Tensor sin = Random({positions, rotary / 2});
      std::vector<int32_t> pos(tokens);
      for (auto& p : pos) p = static_cast<int32_t>(rng_() % positions);
      Tensor x = Random({tokens, heads, d});
      SPARKSTACK_ASSIGN_OR_RETURN(Tensor dx, Dev(x));
      SPARKSTACK_ASSIGN_OR_RETURN(Tensor dpos, Dev(Indices(pos)));
      RopeTables dev{.rotary_dim = rotary, .interleaved = true};
      SPARKSTACK_ASSIGN_OR_RETURN(dev.cos, Dev(cos));
      SPARKSTACK_ASSIGN_OR_RETURN(dev.sin, Dev(sin));
      SPARKSTACK_RETURN_IF_ERROR(cuda_.Rope(dx, dpos, dev));
      RopeTables host{.cos = cos, .sin = sin, .rotary_dim = rotary, .interleaved = true};
      SPARKSTACK_RETURN_IF_ERROR(cpu_.Rope(x, Indices(pos), host));
      SPARKSTACK_RETURN_IF_ERROR(Compare("rope", "partial interleaved", dx, x, 1e-6));
    }
    {  // store_kv
      Tensor k = Random({5, 2, 48});
      Tensor v = Random({5, 2, 48});
      const std::vector<int32_t> slots = {17, 3, -1, 40, 0};
      Tensor kc = Tensor::Zeros(DType::kF32, {3, 16, 2, 48});
      Tensor vc = Tensor::Zeros(DType::kF32, {3, 16, 2, 48});
      SPARKSTACK_ASSIGN_OR_RETURN(Tensor dkc, cuda_.Allocate(DType::kF32, kc.shape()));
      SPARKSTACK_ASSIGN_OR_RETURN(Tensor dvc, cuda_.Allocate(DType::kF32, vc.shape()));
      SPARKSTACK_ASSIGN_OR_RETURN(Tensor dk, Dev(k));
      SPARKSTACK_ASSIGN_OR_RETURN(Tensor dv, Dev(v));
      SPARKSTACK_ASSIGN_OR_RETURN(Tensor ds, Dev(Indices(slots)));
      SPARKSTACK_RETURN_IF_ERROR(cuda_.StoreKv(dk, dv, ds, dkc, dvc));
      SPARKSTACK_RETURN_IF_ERROR(cpu_.StoreKv(k, v, Indices(slots), kc, vc));
      SPARKSTACK_RETURN_IF_ERROR(Compare("store_kv", "5 tokens", dkc, kc, 0.0));
      SPARKSTACK_RETURN_IF_ERROR(Compare("store_kv", "5 tokens", dvc, vc, 0.0));
    }
    SPARKSTACK_RETURN_IF_ERROR(
        Attention("paged_attention (decode)", {1, 1, 1}, {1, 40, 590}, 2e-5));
    SPARKSTACK_RETURN_IF_ERROR(
        Attention("paged_attention (prefill)", {1, 70, 9}, {33, 75, 9}, 1.5e-2));
    SPARKSTACK_RETURN_IF_ERROR(Linear("linear (dense gemv)", 3, 37, 77, DType::kBF16, false, 1e-5));
    SPARKSTACK_RETURN_IF_ERROR(
        Linear("linear (dense mma gemm)", 70, 37, 96, DType::kBF16, false, 1e-2));
    SPARKSTACK_RETURN_IF_ERROR(
        Linear("linear (dense simt gemm)", 70, 37, 77, DType::kF32, false, 1e-5));
    SPARKSTACK_RETURN_IF_ERROR(Linear("linear (nvfp4 decode)", 3, 37, 272, DType::kF32, true, 1e-2));
    SPARKSTACK_RETURN_IF_ERROR(
        Linear("linear (nvfp4 prefill)", 70, 37, 272, DType::kF32, true, 1e-2));
    {  // swiglu, add, gather_rows, copy_columns
      Tensor a = Random({7, 129});
      Tensor b = Random({7, 129});
      SPARKSTACK_ASSIGN_OR_RETURN(Tensor da, Dev(a));
      SPARKSTACK_ASSIGN_OR_RETURN(Tensor db, Dev(b));
      SPARKSTACK_ASSIGN_OR_RETURN(Tensor out, Poisoned({7, 129}));
      SPARKSTACK_RETURN_IF_ERROR(cuda_.SwiGlu(da, db, out));
      Tensor want = Tensor::Zeros(DType::kF32, {7, 129});
      SPARKSTACK_RETURN_IF_ERROR(cpu_.SwiGlu(a, b, want));
      SPARKSTACK_RETURN_IF_ERROR(Compare("swiglu", "7 x 129", out, want, 1e-6));
      SPARKSTACK_RETURN_IF_ERROR(cuda_.Add(da, db));
      SPARKSTACK_RETURN_IF_ERROR(cpu_.Add(a, b));
      SPARKSTACK_RETURN_IF_ERROR(Compare("add", "7 x 129", da, a, 0.0));
      const std::vector<int32_t> rows = {6, 0, 3};
      SPARKSTACK_ASSIGN_OR_RETURN(Tensor dr, Dev(Indices(rows)));
      SPARKSTACK_ASSIGN_OR_RETURN(Tensor g, Poisoned({3, 129}));
      SPARKSTACK_RETURN_IF_ERROR(cuda_.GatherRows(da, dr, g));
      Tensor gw = Tensor::Zeros(DType::kF32, {3, 129});
      SPARKSTACK_RETURN_IF_ERROR(cpu_.GatherRows(a, Indices(rows), gw));
      SPARKSTACK_RETURN_IF_ERROR(Compare("gather_rows", "3 of 7 rows", g, gw, 0.0));
      SPARKSTACK_RETURN_IF_ERROR(cuda_.CopyColumns(da, 3, db, 50, 70));
      SPARKSTACK_RETURN_IF_ERROR(cpu_.CopyColumns(a, 3, b, 50, 70));
      SPARKSTACK_RETURN_IF_ERROR(Compare("copy_columns", "70 of 129 columns", db, b, 0.0));
    }
    {  // sample: the same tokens for the same uniforms
      const int64_t rows = 6, vocab = 1031;
      Tensor logits = Random({rows, vocab}, DType::kF32, 2.0f);
      SPARKSTACK_ASSIGN_OR_RETURN(Tensor dl, Dev(logits));
      const std::vector<int32_t> history = {5, 77, 77, 1000};
      std::vector<SamplingRow> sampling(rows);
      for (int64_t r = 0; r < rows; ++r) {
        sampling[r].params = {.temperature = r == 0 ? 0.0f : 0.7f,
                              .top_k = r == 2 ? 20 : 0,
                              .top_p = r == 3 ? 0.8f : 1.0f,
                              .min_p = r == 4 ? 0.02f : 0.0f,
                              .repetition_penalty = r == 5 ? 1.2f : 1.0f,
                              .seed = 77 + static_cast<uint64_t>(r),
                              .logprobs = r == 1 ? 3 : -1};
        sampling[r].output_index = r;
        sampling[r].output_tokens = history;
      }
      std::vector<SampledToken> got(rows), want(rows);
      SPARKSTACK_RETURN_IF_ERROR(cuda_.Sample(dl, vocab, sampling, got));
      SPARKSTACK_RETURN_IF_ERROR(cpu_.Sample(logits, vocab, sampling, want));
      for (int64_t r = 0; r < rows; ++r) {
        if (got[r].token != want[r].token ||
            std::fabs(got[r].logprob - want[r].logprob) > 1e-4f) {
          return absl::FailedPreconditionError(absl::StrCat(
              "cuda self-check: kernel 'sample' disagrees with the CPU backend on row ", r,
              ": token ", got[r].token, " vs ", want[r].token, "; refusing to serve with it"));
        }
      }
    }
    return cuda_.Synchronize();
  }

 private:
  Backend& cuda_;
  Backend& cpu_;
  std::mt19937 rng_;
};

}  // namespace

absl::Status SelfCheckCudaOps(Backend& cuda, Backend& cpu, uint64_t seed) {
  return Checker(cuda, cpu, seed).Run();
}

}  // namespace sparkstack
