#include "runtime/backend/cpu/cpu_backend.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/convert.h"
#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/isa_kernels.h"
#include "kernels/cpu/nvfp4_linear.h"
#include "kernels/cpu/nvfp4_self_check.h"
#include "kernels/cpu/packed_dense.h"
#include "kernels/cpu/paged_attention.h"
#include "kernels/cpu/parallel_columns.h"
#include "kernels/cpu/rms_norm.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/sampling.h"
#include "kernels/cpu/swiglu.h"
#include "kernels/cpu/thread_pool.h"
#include "runtime/backend/cpu/cpu_checks.h"
#include "runtime/core/memory_budget.h"
#include "runtime/backend/cpu/cpu_moe_ops.h"

namespace sparkstack {
namespace {

using cpu::Expect;
using cpu::ShapeError;

absl::Status ExpectF32(std::string_view op, std::string_view what, const Tensor& t,
                       const Shape& shape) {
  return Expect(op, what, t, DType::kF32, shape);
}

// A rank-1 i32 tensor of `count` entries (ids, positions, slots, rows).
absl::Status ExpectIndices(std::string_view op, std::string_view what, const Tensor& t,
                           int64_t count) {
  return Expect(op, what, t, DType::kI32, {count});
}

// What this process may still allocate (runtime/core/memory_budget.h).
int64_t HostAvailableMemory() {
  return static_cast<int64_t>(std::min<uint64_t>(AvailableMemory().bytes, INT64_MAX));
}

// A dense weight prepared by PrepareWeight is its row-major tensor owned by a shared_ptr with this
// deleter, which holds the packing (kernels/cpu/packed_dense.h) and the row-major storage's owner:
// the deleter's type marks the tensor as packed (std::get_deleter), and it records what was
// packed, so a view that is not the whole prepared weight is refused.
struct PackedDense {
  void* data = nullptr;          // the packed copy (aligned_alloc)
  const void* source = nullptr;  // the row-major tensor's data
  DType dtype = DType::kF32;
  int64_t n = 0;
  int64_t k = 0;
  std::shared_ptr<const void> source_owner;
  void operator()(void*) const { std::free(data); }
};

// The packing of a prepared dense weight, or null for any other tensor.
const PackedDense* PackedDenseOf(const Weight& weight) {
  const Tensor& t = weight.dense();
  const PackedDense* packed = std::get_deleter<PackedDense>(t.owner());
  if (packed == nullptr || packed->source != t.data() || packed->dtype != t.dtype() ||
      packed->n != weight.rows() || packed->k != weight.cols()) {
    return nullptr;
  }
  return packed;
}

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(const CpuBackendOptions& options)
      : options_(options),
        pool_(std::max(1, options.threads)),
        isa_(kernels::BestCpuIsa()),
        kernels_(kernels::KernelsFor(isa_)),
        nvfp4_path_(VerifiedNvfp4Path()) {
    attention_tiles_.resize(4097);  // grows only for a step of more sequences
  }

  std::string_view name() const override { return "cpu"; }
  Device device() const override { return Device::kCpu; }

  absl::StatusOr<Tensor> Allocate(DType dtype, const Shape& shape) override {
    for (int64_t d : shape) {
      if (d < 0) return absl::InvalidArgumentError(absl::StrCat("allocate ", ShapeToString(shape)));
    }
    try {
      return Tensor::Zeros(dtype, shape);
    } catch (const std::bad_alloc&) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "out of host memory allocating ", std::string(DTypeName(dtype)), ShapeToString(shape),
          " (", DTypeByteSize(dtype, NumElements(shape)), " bytes)"));
    }
  }

  int64_t AvailableMemory() const override { return HostAvailableMemory(); }

  absl::StatusOr<Tensor> Upload(const Tensor& host) override { return host; }

  // Dense float weights are also packed into column groups in their own dtype (packed_dense.h):
  // the same bytes as the checkpoint plus padding of N to a multiple of 64, read by Linear. The
  // returned weight still shows the row-major tensor (the MoE expert kernels read rows of it), so
  // its storage stays referenced: a checkpoint's file mapping, whose pages Linear never touches.
  // An f32/f16/bf16 tensor at a byte offset its dtype does not align (a checkpoint mapping can
  // leave one after an FP8 or u8 tensor) gets an aligned copy first. Other dtypes (FP8 experts)
  // are returned as they are.
  absl::StatusOr<Weight> PrepareWeight(const Weight& weight) override {
    if (weight.format() != WeightFormat::kDense || PackedDenseOf(weight) != nullptr) return weight;
    Tensor w = weight.dense();
    if (w.device() != Device::kCpu) {
      return ShapeError("prepare_weight", "weight", w, "a host tensor");
    }
    if (!kernels::IsFloatDType(w.dtype())) return weight;
    if (reinterpret_cast<uintptr_t>(w.data()) % DTypeByteSize(w.dtype(), 1) != 0) w = w.Clone();
    const int64_t n = weight.rows();
    const int64_t k = weight.cols();
    const size_t bytes = DTypeByteSize(w.dtype(), kernels::PackedDenseElements(n, k));
    const size_t aligned = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
    void* data = std::aligned_alloc(64, aligned);
    if (data == nullptr) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "out of host memory packing weight ", weight.DebugString(), " (", aligned, " bytes)"));
    }
    kernels::PackDense(w.data(), w.dtype(), n, k, data, pool_);
    std::shared_ptr<void> owner(w.data(), PackedDense{data, w.data(), w.dtype(), n, k, w.owner()});
    return Weight::Dense(Tensor::Borrow(w.data(), w.dtype(), {n, k}, std::move(owner)));
  }

  absl::Status CopyFromHost(const void* src, Tensor& dst) override {
    if (dst.nbytes() > 0) std::memcpy(dst.data(), src, dst.nbytes());
    return absl::OkStatus();
  }

  absl::Status CopyToHost(const Tensor& src, void* dst) override {
    if (src.nbytes() > 0) std::memcpy(dst, src.data(), src.nbytes());
    return absl::OkStatus();
  }

  absl::Status Synchronize() override { return absl::OkStatus(); }

  absl::Status Embedding(const Tensor& table, const Tensor& ids, int64_t first_id,
                         Tensor& out) override {
    if (table.rank() != 2 || !kernels::IsFloatDType(table.dtype())) {
      return ShapeError("embedding", "table", table, "f32/f16/bf16 [vocab, hidden]");
    }
    if (ids.rank() != 1) return ShapeError("embedding", "ids", ids, "i32 [tokens]");
    const int64_t tokens = ids.dim(0);
    const int64_t rows = table.dim(0);
    const int64_t hidden = table.dim(1);
    if (auto s = ExpectIndices("embedding", "ids", ids, tokens); !s.ok()) return s;
    if (auto s = ExpectF32("embedding", "out", out, {tokens, hidden}); !s.ok()) return s;
    const int32_t* id = ids.data_as<int32_t>();
    const auto* base = static_cast<const unsigned char*>(table.data());
    const size_t row_bytes = DTypeByteSize(table.dtype(), hidden);
    kernels::ParallelRanges(pool_, tokens, tokens * hidden, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        float* row = out.data_as<float>() + t * hidden;
        const int64_t local = id[t] - first_id;
        if (local < 0 || local >= rows) {
          std::memset(row, 0, hidden * sizeof(float));
        } else {
          kernels_.widen(base + local * row_bytes, table.dtype(), hidden, row);
        }
      }
    });
    return absl::OkStatus();
  }

  absl::Status RmsNorm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) override {
    if (auto s = CheckNorm("rms_norm", x, weight); !s.ok()) return s;
    if (auto s = ExpectF32("rms_norm", "out", out, x.shape()); !s.ok()) return s;
    kernels::RmsNormF32(x.data_as<float>(), x.dim(0), x.dim(1), weight.data(), weight.dtype(), eps,
                        out.data_as<float>(), pool_, isa_);
    return absl::OkStatus();
  }

  absl::Status AddRmsNorm(Tensor& residual, const Tensor& delta, const Tensor& weight, float eps,
                          Tensor& out) override {
    if (auto s = CheckNorm("add_rms_norm", residual, weight); !s.ok()) return s;
    if (auto s = ExpectF32("add_rms_norm", "delta", delta, residual.shape()); !s.ok()) return s;
    if (auto s = ExpectF32("add_rms_norm", "out", out, residual.shape()); !s.ok()) return s;
    kernels::AddRmsNormF32(residual.data_as<float>(), delta.data_as<float>(), residual.dim(0),
                           residual.dim(1), weight.data(), weight.dtype(), eps,
                           out.data_as<float>(), pool_, isa_);
    return absl::OkStatus();
  }

  absl::Status Linear(const Tensor& x, const Weight& weight, Tensor& out) override {
    if (x.rank() != 2 || x.dtype() != DType::kF32 || x.dim(1) != weight.cols()) {
      return ShapeError(
          "linear", "x", x,
          absl::StrCat("f32 [M, ", weight.cols(), "] for weight ", weight.DebugString()));
    }
    if (auto s = ExpectF32("linear", "out", out, {x.dim(0), weight.rows()}); !s.ok()) return s;
    switch (weight.format()) {
      case WeightFormat::kDense: {
        const PackedDense* packed = PackedDenseOf(weight);
        if (packed == nullptr) {
          return absl::InvalidArgumentError(
              absl::StrCat("linear: dense weight ", weight.DebugString(),
                           " was not prepared by the CPU backend (call PrepareWeight first; a "
                           "slice of a prepared weight is not one)"));
        }
        kernels::PackedDenseLinear(x.data_as<float>(), x.dim(0), x.dim(1), packed->data,
                                   packed->dtype, weight.rows(), out.data_as<float>(), pool_, isa_);
        return absl::OkStatus();
      }
      case WeightFormat::kNvfp4:
        return Nvfp4Linear(x, weight.nvfp4(), weight.rows(), out);
    }
    return absl::InternalError("linear: unknown weight format");
  }

  absl::Status Add(Tensor& x, const Tensor& y) override {
    if (x.dtype() != DType::kF32) return ShapeError("add", "x", x, "f32");
    if (auto s = ExpectF32("add", "y", y, x.shape()); !s.ok()) return s;
    kernels::AddF32(x.data_as<float>(), y.data_as<float>(), x.numel(), pool_, isa_);
    return absl::OkStatus();
  }

  absl::Status SwiGlu(const Tensor& gate, const Tensor& up, Tensor& out) override {
    if (gate.dtype() != DType::kF32) return ShapeError("swiglu", "gate", gate, "f32");
    if (auto s = ExpectF32("swiglu", "up", up, gate.shape()); !s.ok()) return s;
    if (auto s = ExpectF32("swiglu", "out", out, gate.shape()); !s.ok()) return s;
    kernels::SwiGluF32(gate.data_as<float>(), up.data_as<float>(), gate.numel(),
                       out.data_as<float>(), pool_, isa_);
    return absl::OkStatus();
  }

  absl::Status Rope(Tensor& x, const Tensor& positions, const RopeTables& tables) override {
    const int64_t half = tables.rotary_dim / 2;
    if (x.rank() != 3 || x.dtype() != DType::kF32 || tables.rotary_dim % 2 != 0 ||
        tables.rotary_dim > x.dim(2) || tables.rotary_dim <= 0) {
      return ShapeError("rope", "x", x,
                        absl::StrCat("f32 [tokens, heads, head_dim >= rotary_dim ",
                                     tables.rotary_dim, " (even)]"));
    }
    const int64_t max_positions = tables.max_positions();
    if (auto s = ExpectF32("rope", "cos", tables.cos, {max_positions, half}); !s.ok()) return s;
    if (auto s = ExpectF32("rope", "sin", tables.sin, {max_positions, half}); !s.ok()) return s;
    if (auto s = ExpectIndices("rope", "positions", positions, x.dim(0)); !s.ok()) return s;
    const int64_t row = x.dim(1) * x.dim(2);
    kernels::ParallelRanges(pool_, x.dim(0), x.numel(), [&](int64_t begin, int64_t end) {
      kernels::RopeF32(x.data_as<float>() + begin * row, end - begin, x.dim(1), x.dim(2),
                       positions.data_as<int32_t>() + begin, tables.cos.data_as<float>(),
                       tables.sin.data_as<float>(), tables.rotary_dim, tables.interleaved);
    });
    return absl::OkStatus();
  }

  absl::Status StoreKv(const Tensor& k, const Tensor& v, const Tensor& slot_mapping,
                       Tensor& k_cache, Tensor& v_cache) override {
    if (k_cache.rank() != 4 || k_cache.dtype() != DType::kF32) {
      return ShapeError("store_kv", "k_cache", k_cache,
                        "f32 [blocks, block_size, kv_heads, head_dim]");
    }
    if (v_cache.rank() != 4 || v_cache.dtype() != DType::kF32 || v_cache.dim(0) != k_cache.dim(0) ||
        v_cache.dim(1) != k_cache.dim(1) || v_cache.dim(2) != k_cache.dim(2)) {
      return ShapeError("store_kv", "v_cache", v_cache,
                        absl::StrCat("f32 [", k_cache.dim(0), ", ", k_cache.dim(1), ", ",
                                     k_cache.dim(2), ", v_head_dim]"));
    }
    const int64_t tokens = k.rank() == 3 ? k.dim(0) : -1;
    const Shape k_shape = {tokens, k_cache.dim(2), k_cache.dim(3)};
    const Shape v_shape = {tokens, v_cache.dim(2), v_cache.dim(3)};
    if (auto s = ExpectF32("store_kv", "k", k, k_shape); !s.ok()) return s;
    if (auto s = ExpectF32("store_kv", "v", v, v_shape); !s.ok()) return s;
    if (auto s = ExpectIndices("store_kv", "slot_mapping", slot_mapping, tokens); !s.ok()) return s;
    const int64_t k_row = k_cache.dim(2) * k_cache.dim(3);
    const int64_t v_row = v_cache.dim(2) * v_cache.dim(3);
    const int32_t* slots = slot_mapping.data_as<int32_t>();
    for (int64_t t = 0; t < tokens; ++t) {
      if (slots[t] < 0) continue;
      std::memcpy(k_cache.data_as<float>() + int64_t{slots[t]} * k_row,
                  k.data_as<float>() + t * k_row, k_row * sizeof(float));
      std::memcpy(v_cache.data_as<float>() + int64_t{slots[t]} * v_row,
                  v.data_as<float>() + t * v_row, v_row * sizeof(float));
    }
    return absl::OkStatus();
  }

  absl::Status PagedAttention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                              const AttentionMetadata& m, float scale, Tensor& out) override {
    if (q.rank() != 3 || q.dtype() != DType::kF32 || q.dim(0) != m.num_tokens) {
      return ShapeError("paged_attention", "q", q,
                        absl::StrCat("f32 [", m.num_tokens, ", heads, head_dim]"));
    }
    if (k_cache.rank() != 4 || k_cache.dtype() != DType::kF32 || k_cache.dim(3) != q.dim(2) ||
        q.dim(1) % k_cache.dim(2) != 0 || k_cache.dim(1) != m.block_size) {
      return ShapeError("paged_attention", "k_cache", k_cache,
                        absl::StrCat("f32 [blocks, ", m.block_size, ", a divisor of ", q.dim(1),
                                     ", ", q.dim(2), "]"));
    }
    if (v_cache.rank() != 4 || v_cache.dtype() != DType::kF32 || v_cache.dim(0) != k_cache.dim(0) ||
        v_cache.dim(1) != k_cache.dim(1) || v_cache.dim(2) != k_cache.dim(2)) {
      return ShapeError("paged_attention", "v_cache", v_cache, "f32 like k_cache");
    }
    if (auto s = ExpectF32("paged_attention", "out", out, {q.dim(0), q.dim(1), v_cache.dim(3)});
        !s.ok()) {
      return s;
    }
    if (auto s = CheckMetadata(m); !s.ok()) return s;
    if (std::ssize(attention_tiles_) < m.num_seqs + 1) attention_tiles_.resize(m.num_seqs + 1);
    const kernels::AttentionArgs args{.q = q.data_as<float>(),
                                      .heads = q.dim(1),
                                      .head_dim = q.dim(2),
                                      .v_head_dim = v_cache.dim(3),
                                      .k_cache = k_cache.data_as<float>(),
                                      .v_cache = v_cache.data_as<float>(),
                                      .block_size = m.block_size,
                                      .kv_heads = k_cache.dim(2),
                                      .query_start = m.query_start.data_as<int32_t>(),
                                      .seq_lens = m.seq_lens.data_as<int32_t>(),
                                      .block_table = m.block_table.data_as<int32_t>(),
                                      .max_blocks = m.block_table.dim(1),
                                      .scale = scale,
                                      .out = out.data_as<float>()};
    kernels::PagedAttentionF32(args, m.num_seqs, attention_tiles_, pool_, isa_);
    return absl::OkStatus();
  }

  absl::Status GatherRows(const Tensor& x, const Tensor& rows, Tensor& out) override {
    if (x.rank() != 2 || x.dtype() != DType::kF32) {
      return ShapeError("gather_rows", "x", x, "f32 [rows, width]");
    }
    if (rows.rank() != 1) return ShapeError("gather_rows", "rows", rows, "i32 [R]");
    if (auto s = ExpectIndices("gather_rows", "rows", rows, rows.dim(0)); !s.ok()) return s;
    if (auto s = ExpectF32("gather_rows", "out", out, {rows.dim(0), x.dim(1)}); !s.ok()) return s;
    const int64_t width = x.dim(1);
    for (int64_t r = 0; r < rows.dim(0); ++r) {
      std::memcpy(out.data_as<float>() + r * width,
                  x.data_as<float>() + int64_t{rows.data_as<int32_t>()[r]} * width,
                  width * sizeof(float));
    }
    return absl::OkStatus();
  }

  absl::Status CopyColumns(const Tensor& src, int64_t src_column, Tensor& dst, int64_t dst_column,
                           int64_t width) override {
    if (src.rank() != 2 || src.dtype() != DType::kF32 || src_column < 0 || width < 0 ||
        src_column + width > src.dim(1)) {
      return ShapeError("copy_columns", "src", src,
                        absl::StrCat("f32 [rows, >= ", src_column + width, "]"));
    }
    if (dst.rank() != 2 || dst.dtype() != DType::kF32 || dst.dim(0) != src.dim(0) ||
        dst_column < 0 || dst_column + width > dst.dim(1)) {
      return ShapeError("copy_columns", "dst", dst,
                        absl::StrCat("f32 [", src.dim(0), ", >= ", dst_column + width, "]"));
    }
    for (int64_t r = 0; r < src.dim(0); ++r) {
      std::memcpy(dst.data_as<float>() + r * dst.dim(1) + dst_column,
                  src.data_as<float>() + r * src.dim(1) + src_column, width * sizeof(float));
    }
    return absl::OkStatus();
  }

  absl::Status AddBias(Tensor& x, const Tensor& bias) override { return cpu::AddBias(x, bias); }

  absl::Status MoeRoute(const Tensor& logits, const Tensor& bias, const MoeRouting& routing,
                        Tensor& ids, Tensor& weights) override {
    return cpu::MoeRoute(logits, bias, routing, ids, weights, options_.threads);
  }

  int64_t MoeExpertsWorkspaceBytes(int64_t tokens, int64_t top_k,
                                   const ExpertSet& experts) const override {
    return cpu::MoeExpertsWorkspaceBytes(tokens, top_k, experts, options_.threads);
  }

  absl::Status MoeExperts(const Tensor& x, const Tensor& ids, const Tensor& weights,
                          const ExpertSet& experts, Tensor& workspace, Tensor& out) override {
    return cpu::MoeExperts(x, ids, weights, experts, workspace, out, options_.threads);
  }

  absl::Status StoreLatent(const Tensor& latent, const Tensor& slot_mapping,
                           Tensor& cache) override {
    return cpu::StoreLatent(latent, slot_mapping, cache);
  }

  absl::Status PagedLatentAttention(const Tensor& q, const Tensor& cache, int64_t value_offset,
                                    int64_t value_width, const AttentionMetadata& metadata,
                                    float scale, Tensor& out) override {
    return cpu::PagedLatentAttention(q, cache, value_offset, value_width, metadata, scale, out,
                                     options_.threads);
  }

  absl::Status Sample(const Tensor& logits, int64_t vocab_limit, std::span<const SamplingRow> rows,
                      std::span<SampledToken> out) override {
    if (logits.rank() != 2 || logits.dtype() != DType::kF32 || logits.dim(0) != std::ssize(rows) ||
        std::ssize(out) != std::ssize(rows)) {
      return ShapeError("sample", "logits", logits,
                        absl::StrCat("f32 [", rows.size(), ", vocab] with as many outputs"));
    }
    return sampler_.Sample(logits.data_as<float>(), logits.dim(1), logits.dim(1),
                           std::min(logits.dim(1), vocab_limit), rows, out);
  }

 private:
  static absl::Status CheckNorm(std::string_view op, const Tensor& x, const Tensor& weight) {
    if (x.rank() != 2 || x.dtype() != DType::kF32)
      return ShapeError(op, "x", x, "f32 [rows, width]");
    if (weight.rank() != 1 || weight.dim(0) != x.dim(1) || !kernels::IsFloatDType(weight.dtype())) {
      return ShapeError(op, "weight", weight, absl::StrCat("[", x.dim(1), "]"));
    }
    return absl::OkStatus();
  }

  static absl::Status CheckMetadata(const AttentionMetadata& m) {
    if (auto s = ExpectIndices("paged_attention", "query_start", m.query_start, m.num_seqs + 1);
        !s.ok()) {
      return s;
    }
    if (auto s = ExpectIndices("paged_attention", "seq_lens", m.seq_lens, m.num_seqs); !s.ok()) {
      return s;
    }
    if (m.block_table.rank() != 2 || m.block_table.dim(0) != m.num_seqs ||
        m.block_table.dtype() != DType::kI32) {
      return ShapeError("paged_attention", "block_table", m.block_table,
                        absl::StrCat("i32 [", m.num_seqs, ", max_blocks]"));
    }
    return absl::OkStatus();
  }

  absl::Status Nvfp4Linear(const Tensor& x, const Nvfp4Parts& w, int64_t n, Tensor& out) {
    const auto* codes = w.codes.data_as<uint8_t>();
    const auto* scales = w.block_scales.data_as<uint8_t>();
    kernels::Nvfp4LinearF32(x.data_as<float>(), x.dim(0), x.dim(1), codes, scales, w.global_scale,
                            n, out.data_as<float>(), pool_, nvfp4_path_);
    return absl::OkStatus();
  }

  // Checked once per process: every backend shares the verdict.
  static kernels::Nvfp4CpuPath VerifiedNvfp4Path() {
    static const kernels::Nvfp4CpuPath path = kernels::SelectVerifiedNvfp4CpuPath();
    return path;
  }

  CpuBackendOptions options_;
  kernels::ThreadPool pool_;  // every op's threads, created once
  kernels::CpuIsa isa_;
  const kernels::IsaKernels& kernels_;
  kernels::Nvfp4CpuPath nvfp4_path_;
  std::vector<int64_t> attention_tiles_;  // PagedAttention's scratch
  kernels::CpuSampler sampler_;           // scratch reused by every Sample call
};

}  // namespace

std::unique_ptr<Backend> MakeCpuBackend(const CpuBackendOptions& options) {
  return std::make_unique<CpuBackend>(options);
}

}  // namespace sparkstack
