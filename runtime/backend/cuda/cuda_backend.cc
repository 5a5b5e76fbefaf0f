#include "runtime/backend/cuda/cuda_backend.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/ops/add_bias.h"
#include "kernels/cuda/ops/copy_rows.h"
#include "kernels/cuda/ops/dense_linear.h"
#include "kernels/cuda/ops/elementwise.h"
#include "kernels/cuda/ops/embedding.h"
#include "kernels/cuda/ops/latent_attention.h"
#include "kernels/cuda/ops/moe_experts.h"
#include "kernels/cuda/ops/moe_route.h"
#include "kernels/cuda/ops/paged_attention.h"
#include "kernels/cuda/ops/rms_norm.h"
#include "kernels/cuda/ops/rope.h"
#include "kernels/cuda/ops/sampling.h"
#include "kernels/cuda/ops/store_kv.h"
#include "kernels/nvfp4/gemm.h"
#include "kernels/nvfp4/self_check.h"
#include "runtime/backend/cuda/device.h"
#include "runtime/backend/cuda/device_arena.h"
#include "runtime/core/status_macros.h"

namespace sparkstack {
namespace {

namespace ops = kernels::cuda_ops;
namespace nvfp4 = kernels::nvfp4;
using cuda_backend::DeviceArena;
using cuda_backend::Stream;

absl::Status ShapeError(std::string_view op, std::string_view what, const Tensor& t,
                        const std::string& expected) {
  return absl::InvalidArgumentError(absl::StrCat(std::string(op), ": ", std::string(what), " is ", t.DebugString(),
                                                 t.device() == Device::kCuda ? "" : " on the host",
                                                 ", expected ", expected, " on the device"));
}

// `t` is a device tensor of `dtype` and exactly `shape`.
absl::Status Expect(std::string_view op, std::string_view what, const Tensor& t, DType dtype,
                    const Shape& shape) {
  if (t.dtype() != dtype || t.device() != Device::kCuda || t.shape() != shape) {
    return ShapeError(op, what, t, absl::StrCat(std::string(DTypeName(dtype)), ShapeToString(shape)));
  }
  return absl::OkStatus();
}

// The block-table walk both attention kernels share (ops::PagedAttentionArgs and
// ops::LatentAttentionArgs name these fields alike).
template <typename Args>
void SetBlockTableArgs(const AttentionMetadata& m, float scale, Args& a) {
  a.block_size = m.block_size;
  a.query_start = m.query_start.data_as<const int32_t>();
  a.seq_lens = m.seq_lens.data_as<const int32_t>();
  a.block_table = m.block_table.data_as<const int32_t>();
  a.max_blocks = std::max<int64_t>(m.block_table.dim(1), 1);
  a.scale = scale;
}

absl::Status ExpectF32(std::string_view op, std::string_view what, const Tensor& t,
                       const Shape& shape) {
  return Expect(op, what, t, DType::kF32, shape);
}

absl::Status ExpectIndices(std::string_view op, std::string_view what, const Tensor& t,
                           int64_t count) {
  return Expect(op, what, t, DType::kI32, {count});
}

absl::StatusOr<ops::ElemType> FloatType(std::string_view op, std::string_view what,
                                        const Tensor& t) {
  switch (t.dtype()) {
    case DType::kF32:
      return ops::ElemType::kF32;
    case DType::kBF16:
      return ops::ElemType::kBF16;
    case DType::kF16:
      return ops::ElemType::kF16;
    default:
      return ShapeError(op, what, t, "f32, f16 or bf16");
  }
}

absl::Status TooLarge(std::string_view op, std::string_view limit, int64_t needed,
                      int64_t allowed) {
  return absl::ResourceExhaustedError(absl::StrCat(
      std::string(op), ": needs ", std::string(limit), " = ", needed,
      " but the CUDA backend was sized for ", allowed, " (CudaBackendOptions::",
      std::string(limit), ")"));
}

int64_t DecodeContextCapacity(const CudaBackendOptions& o) {
  return std::max<int64_t>(o.max_context, 1);
}

class CudaBackend final : public Backend, public CudaBackendControl {
 public:
  static absl::StatusOr<std::unique_ptr<CudaBackend>> Create(const CudaBackendOptions& options);

  std::string_view name() const override { return "cuda"; }
  Device device() const override { return Device::kCuda; }

  absl::StatusOr<Tensor> Allocate(DType dtype, const Shape& shape) override;
  int64_t AvailableMemory() const override;
  absl::StatusOr<Tensor> Upload(const Tensor& host) override;
  absl::StatusOr<Weight> PrepareWeight(const Weight& weight) override;
  absl::Status CopyFromHost(const void* src, Tensor& dst) override;
  absl::Status CopyToHost(const Tensor& src, void* dst) override;
  absl::Status Synchronize() override { return stream_->Synchronize(); }

  absl::Status Embedding(const Tensor& table, const Tensor& ids, int64_t first_id,
                         Tensor& out) override;
  absl::Status RmsNorm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) override;
  absl::Status AddRmsNorm(Tensor& residual, const Tensor& delta, const Tensor& weight, float eps,
                          Tensor& out) override;
  absl::Status Linear(const Tensor& x, const Weight& weight, Tensor& out) override;
  absl::Status Add(Tensor& x, const Tensor& y) override;
  absl::Status SwiGlu(const Tensor& gate, const Tensor& up, Tensor& out) override;
  absl::Status Rope(Tensor& x, const Tensor& positions, const RopeTables& tables) override;
  absl::Status StoreKv(const Tensor& k, const Tensor& v, const Tensor& slot_mapping,
                       Tensor& k_cache, Tensor& v_cache) override;
  absl::Status PagedAttention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                              const AttentionMetadata& metadata, float scale,
                              Tensor& out) override;
  absl::Status GatherRows(const Tensor& x, const Tensor& rows, Tensor& out) override;
  absl::Status CopyColumns(const Tensor& src, int64_t src_column, Tensor& dst,
                           int64_t dst_column, int64_t width) override;
  absl::Status Sample(const Tensor& logits, int64_t vocab_limit, std::span<const SamplingRow> rows,
                      std::span<SampledToken> out) override;

  absl::Status AddBias(Tensor& x, const Tensor& bias) override;
  absl::Status MoeRoute(const Tensor& logits, const Tensor& bias, const MoeRouting& routing,
                        Tensor& ids, Tensor& weights) override;
  int64_t MoeExpertsWorkspaceBytes(int64_t tokens, int64_t top_k,
                                   const ExpertSet& experts) const override;
  absl::Status MoeExperts(const Tensor& x, const Tensor& ids, const Tensor& weights,
                          const ExpertSet& experts, Tensor& workspace, Tensor& out) override;
  absl::Status StoreLatent(const Tensor& latent, const Tensor& slot_mapping,
                           Tensor& cache) override;
  absl::Status PagedLatentAttention(const Tensor& q, const Tensor& cache, int64_t value_offset,
                                    int64_t value_width, const AttentionMetadata& metadata,
                                    float scale, Tensor& out) override;

  // CudaBackendControl
  absl::Status BeginCapture() override { return stream_->BeginCapture(); }
  absl::StatusOr<int> EndCapture() override { return stream_->EndCapture(); }
  absl::Status Replay(int graph) override { return stream_->Replay(graph); }
  void* compute_stream() const override { return stream_->handle(); }
  int64_t arena_used() const override { return arena_->used(); }
  int64_t arena_remaining() const override { return arena_->remaining(); }
  const KernelConfig& kernels() const override { return options_.kernels; }
  void set_kernels(const KernelConfig& config) override { options_.kernels = config; }

 private:
  CudaBackend() = default;
  absl::StatusOr<void*> Scratch(size_t bytes, const std::string& what);
  absl::Status Nvfp4Linear(const Tensor& x, const Weight& weight, Tensor& out);
  absl::Status DenseLinear(const Tensor& x, const Weight& weight, Tensor& out);
  absl::Status SampleChunk(const Tensor& logits, int64_t vocab_limit,
                           std::span<const SamplingRow> rows, std::span<SampledToken> out,
                           int64_t first_row);
  absl::StatusOr<Tensor> ToDevice(const Tensor& host, const std::string& what);

  CudaBackendOptions options_;
  std::unique_ptr<Stream> stream_;
  std::unique_ptr<DeviceArena> arena_;
  int smem_limit_ = 0;
  nvfp4::Variant nvfp4_decode_ = nvfp4::Variant::kDecodeSimt;
  nvfp4::Variant nvfp4_prefill_ = nvfp4::Variant::kDecodeSimt;

  // Scratch, sized from the options at creation.
  uint16_t* act_bf16_ = nullptr;  // [max_tokens, max_linear_k] bf16
  float* attn_partials_ = nullptr;
  int64_t attn_partials_floats_ = 0;
  ops::SamplingRowArgs* sample_rows_ = nullptr;       // [max_logit_rows]
  ops::SamplingResult* sample_results_ = nullptr;     // [max_logit_rows]
  ops::SamplingEdit* sample_edits_ = nullptr;         // [sampling_edits]
  // Host staging of the sampler (reserved at creation; history_ grows to the vocabulary).
  std::vector<ops::SamplingRowArgs> host_rows_;
  std::vector<ops::SamplingResult> host_results_;
  std::vector<ops::SamplingEdit> host_edits_;
  std::vector<uint32_t> history_;  // per id: output count | kSeen | kBanned; zero between calls
  std::vector<int32_t> touched_;   // ids of history_ set by the current row
  std::vector<std::shared_ptr<const void>> owners_;  // the scratch blocks' storage
};

constexpr uint32_t kSeen = 0x80000000u;
constexpr uint32_t kBanned = 0x40000000u;
constexpr uint32_t kCountMask = 0x3fffffffu;

absl::StatusOr<std::unique_ptr<CudaBackend>> CudaBackend::Create(
    const CudaBackendOptions& options) {
  std::unique_ptr<CudaBackend> b(new CudaBackend());
  b->options_ = options;
  SPARKSTACK_ASSIGN_OR_RETURN(b->stream_, Stream::Create(options.device));
  SPARKSTACK_ASSIGN_OR_RETURN(b->arena_, DeviceArena::Create(options.arena_bytes));

  SPARKSTACK_ASSIGN_OR_RETURN(nvfp4::DeviceInfo info, nvfp4::QueryDeviceInfo(options.device));
  SPARKSTACK_ASSIGN_OR_RETURN(nvfp4::SelectOptions select, nvfp4::SelectOptionsFromEnv());
  b->smem_limit_ = nvfp4::EffectiveSmemLimit(info, select);
  // Each NVFP4 variant runs its start-up check against the float64 reference; a failing one is
  // skipped loudly (selector.h).
  SPARKSTACK_ASSIGN_OR_RETURN(b->nvfp4_decode_,
                              nvfp4::SelectVerifiedVariant(nvfp4::GemmOp::kDecode, info, select));
  SPARKSTACK_ASSIGN_OR_RETURN(b->nvfp4_prefill_,
                              nvfp4::SelectVerifiedVariant(nvfp4::GemmOp::kPrefill, info, select));

  const CudaBackendOptions& o = b->options_;
  SPARKSTACK_ASSIGN_OR_RETURN(
      void* act, b->Scratch(static_cast<size_t>(o.max_tokens * o.max_linear_k) * 2,
                            "bf16 activation scratch"));
  b->act_bf16_ = static_cast<uint16_t*>(act);
  b->attn_partials_floats_ = ops::DecodeScratchFloats(o.max_decode_seqs, o.max_heads,
                                                      o.max_head_dim, DecodeContextCapacity(o));
  SPARKSTACK_ASSIGN_OR_RETURN(
      void* partials,
      b->Scratch(static_cast<size_t>(b->attn_partials_floats_) * 4, "attention split partials"));
  b->attn_partials_ = static_cast<float*>(partials);
  SPARKSTACK_ASSIGN_OR_RETURN(
      void* rows, b->Scratch(sizeof(ops::SamplingRowArgs) * o.max_logit_rows, "sampling rows"));
  b->sample_rows_ = static_cast<ops::SamplingRowArgs*>(rows);
  SPARKSTACK_ASSIGN_OR_RETURN(
      void* results,
      b->Scratch(sizeof(ops::SamplingResult) * o.max_logit_rows, "sampling results"));
  b->sample_results_ = static_cast<ops::SamplingResult*>(results);
  SPARKSTACK_ASSIGN_OR_RETURN(
      void* edits, b->Scratch(sizeof(ops::SamplingEdit) * o.sampling_edits, "sampling edits"));
  b->sample_edits_ = static_cast<ops::SamplingEdit*>(edits);
  b->host_rows_.resize(o.max_logit_rows);
  b->host_results_.resize(o.max_logit_rows);
  b->host_edits_.reserve(o.sampling_edits);
  return b;
}

absl::StatusOr<void*> CudaBackend::Scratch(size_t bytes, const std::string& what) {
  SPARKSTACK_ASSIGN_OR_RETURN(DeviceArena::Block block, arena_->Allocate(bytes, what));
  owners_.push_back(std::move(block.owner));
  return block.data;
}

// ---- Memory

absl::StatusOr<Tensor> CudaBackend::Allocate(DType dtype, const Shape& shape) {
  for (int64_t d : shape) {
    if (d < 0) return absl::InvalidArgumentError(absl::StrCat("allocate ", ShapeToString(shape)));
  }
  const size_t bytes = DTypeByteSize(dtype, NumElements(shape));
  SPARKSTACK_ASSIGN_OR_RETURN(
      DeviceArena::Block block,
      arena_->Allocate(bytes, absl::StrCat("allocate ", std::string(DTypeName(dtype)), ShapeToString(shape))));
  Tensor t = Tensor::Borrow(block.data, dtype, shape, std::move(block.owner), Device::kCuda);
  SPARKSTACK_RETURN_IF_ERROR(stream_->Fill(block.data, 0, bytes));
  return t;
}

int64_t CudaBackend::AvailableMemory() const {
  if (arena_->reserved()) return arena_->remaining();
  absl::StatusOr<cuda_backend::MemoryFacts> facts = cuda_backend::QueryMemory(options_.device);
  if (!facts.ok()) return 0;
  // On unified memory a device allocation takes host RAM: never count more than the host has.
  return facts->unified_memory ? std::min(facts->device_free, facts->host_available)
                               : facts->device_free;
}

absl::StatusOr<Tensor> CudaBackend::ToDevice(const Tensor& host, const std::string& what) {
  if (host.device() == Device::kCuda) return host;
  if (!host.defined()) return absl::InvalidArgumentError(absl::StrCat(what, ": undefined tensor"));
  const size_t bytes = host.nbytes();
  SPARKSTACK_ASSIGN_OR_RETURN(DeviceArena::Block block, arena_->Allocate(bytes, what));
  Tensor t = Tensor::Borrow(block.data, host.dtype(), host.shape(), std::move(block.owner),
                            Device::kCuda);
  SPARKSTACK_RETURN_IF_ERROR(stream_->CopyToDevice(block.data, host.data(), bytes));
  // Load time: the host tensor may go away once this returns.
  SPARKSTACK_RETURN_IF_ERROR(stream_->Synchronize());
  return t;
}

absl::StatusOr<Tensor> CudaBackend::Upload(const Tensor& host) {
  return ToDevice(host, absl::StrCat("upload ", host.DebugString()));
}

absl::StatusOr<Weight> CudaBackend::PrepareWeight(const Weight& weight) {
  const std::string what = absl::StrCat("weight ", weight.DebugString());
  switch (weight.format()) {
    case WeightFormat::kDense: {
      SPARKSTACK_ASSIGN_OR_RETURN(Tensor dense, ToDevice(weight.dense(), what));
      return Weight::Dense(std::move(dense));
    }
    case WeightFormat::kNvfp4: {
      Nvfp4Parts parts = weight.nvfp4();
      SPARKSTACK_ASSIGN_OR_RETURN(parts.codes, ToDevice(parts.codes, what + " codes"));
      SPARKSTACK_ASSIGN_OR_RETURN(parts.block_scales,
                                  ToDevice(parts.block_scales, what + " block scales"));
      return Weight::Nvfp4(std::move(parts));
    }
  }
  return absl::InternalError("prepare weight: unknown weight format");
}

absl::Status CudaBackend::CopyFromHost(const void* src, Tensor& dst) {
  if (dst.device() != Device::kCuda) {
    return ShapeError("copy_from_host", "dst", dst, "a device tensor");
  }
  return stream_->CopyToDevice(dst.data(), src, dst.nbytes());
}

absl::Status CudaBackend::CopyToHost(const Tensor& src, void* dst) {
  if (src.device() != Device::kCuda) {
    return ShapeError("copy_to_host", "src", src, "a device tensor");
  }
  return stream_->CopyToHost(dst, src.data(), src.nbytes());
}

// ---- Ops

absl::Status CudaBackend::Embedding(const Tensor& table, const Tensor& ids, int64_t first_id,
                                    Tensor& out) {
  if (table.rank() != 2 || table.device() != Device::kCuda) {
    return ShapeError("embedding", "table", table, "f32/f16/bf16 [vocab, hidden]");
  }
  SPARKSTACK_ASSIGN_OR_RETURN(ops::ElemType type, FloatType("embedding", "table", table));
  if (ids.rank() != 1) return ShapeError("embedding", "ids", ids, "i32 [tokens]");
  const int64_t tokens = ids.dim(0);
  const int64_t hidden = table.dim(1);
  SPARKSTACK_RETURN_IF_ERROR(ExpectIndices("embedding", "ids", ids, tokens));
  SPARKSTACK_RETURN_IF_ERROR(ExpectF32("embedding", "out", out, {tokens, hidden}));
  const void* t = table.data();
  const int64_t rows = table.dim(0);
  const auto* id = ids.data_as<const int32_t>();
  float* o = out.data_as<float>();
  void* s = stream_->handle();
  return stream_->Run("embedding", [=] {
    return ops::LaunchEmbedding(t, type, rows, hidden, id, tokens, first_id, o, s);
  });
}

absl::Status CheckNorm(std::string_view op, const Tensor& x, const Tensor& weight) {
  if (x.rank() != 2 || x.dtype() != DType::kF32 || x.device() != Device::kCuda) {
    return ShapeError(op, "x", x, "f32 [rows, width]");
  }
  if (weight.rank() != 1 || weight.dim(0) != x.dim(1) || weight.device() != Device::kCuda) {
    return ShapeError(op, "weight", weight, absl::StrCat("[", x.dim(1), "]"));
  }
  return absl::OkStatus();
}

absl::Status CudaBackend::RmsNorm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) {
  SPARKSTACK_RETURN_IF_ERROR(CheckNorm("rms_norm", x, weight));
  SPARKSTACK_ASSIGN_OR_RETURN(ops::ElemType type, FloatType("rms_norm", "weight", weight));
  SPARKSTACK_RETURN_IF_ERROR(ExpectF32("rms_norm", "out", out, x.shape()));
  const float* in = x.data_as<const float>();
  const void* w = weight.data();
  float* o = out.data_as<float>();
  const int64_t rows = x.dim(0), width = x.dim(1);
  void* s = stream_->handle();
  return stream_->Run("rms_norm", [=] {
    return ops::LaunchRmsNorm(in, rows, width, w, type, eps, o, s);
  });
}

absl::Status CudaBackend::AddRmsNorm(Tensor& residual, const Tensor& delta, const Tensor& weight,
                                     float eps, Tensor& out) {
  SPARKSTACK_RETURN_IF_ERROR(CheckNorm("add_rms_norm", residual, weight));
  SPARKSTACK_ASSIGN_OR_RETURN(ops::ElemType type, FloatType("add_rms_norm", "weight", weight));
  SPARKSTACK_RETURN_IF_ERROR(ExpectF32("add_rms_norm", "delta", delta, residual.shape()));
  SPARKSTACK_RETURN_IF_ERROR(ExpectF32("add_rms_norm", "out", out, residual.shape()));
  if (out.data() == residual.data()) {
    return absl::InvalidArgumentError("add_rms_norm: out may alias delta, not residual");
  }
  float* r = residual.data_as<float>();
  const float* d = delta.data_as<const float>();
  const void* w = weight.data();
  float* o = out.data_as<float>();
  const int64_t rows = residual.dim(0), width = residual.dim(1);
  void* s = stream_->handle();
  return stream_->Run("add_rms_norm", [=] {
    return ops::LaunchAddRmsNorm(r, d, rows, width, w, type, eps, o, s);
  });
}

absl::Status CudaBackend::Linear(const Tensor& x, const Weight& weight, Tensor& out) {
  if (x.rank() != 2 || x.dtype() != DType::kF32 || x.dim(1) != weight.cols() ||
      x.device() != Device::kCuda) {
    return ShapeError("linear", "x", x,
                      absl::StrCat("f32 [M, ", weight.cols(), "] for weight ",
                                   weight.DebugString()));
  }
  SPARKSTACK_RETURN_IF_ERROR(ExpectF32("linear", "out", out, {x.dim(0), weight.rows()}));
  if (x.dim(0) == 0 || weight.rows() == 0) return absl::OkStatus();
  switch (weight.format()) {
    case WeightFormat::kDense:
      return DenseLinear(x, weight, out);
    case WeightFormat::kNvfp4:
      return Nvfp4Linear(x, weight, out);
  }
  return absl::InternalError("linear: unknown weight format");
}

absl::Status CudaBackend::DenseLinear(const Tensor& x, const Weight& weight, Tensor& out) {
  const Tensor& w = weight.dense();
  if (w.device() != Device::kCuda) {
    return ShapeError("linear", "weight", w, "a prepared (device) weight");
  }
  SPARKSTACK_ASSIGN_OR_RETURN(ops::ElemType type, FloatType("linear", "weight", w));
  ops::DenseLinearArgs a;
  a.x = x.data_as<const float>();
  a.ldx = x.dim(1);
  a.w = w.data();
  a.ldw = w.dim(1);
  a.w_type = type;
  a.y = out.data_as<float>();
  a.ldy = out.dim(1);
  a.m = x.dim(0);
  a.n = weight.rows();
  a.k = weight.cols();
  if (const char* why = ops::ValidateDenseLinearArgs(a)) {
    return absl::InvalidArgumentError(absl::StrCat("linear ", weight.DebugString(), ": ", why));
  }
  void* s = stream_->handle();
  if (a.m <= options_.kernels.dense_gemv_max_m) {
    return stream_->Run("linear (dense gemv)", [=] { return ops::LaunchDenseGemv(a, s); });
  }
  if (type == ops::ElemType::kBF16) {
    return stream_->Run("linear (dense mma gemm)", [=] { return ops::LaunchDenseGemmMma(a, s); });
  }
  return stream_->Run("linear (dense simt gemm)", [=] { return ops::LaunchDenseGemmSimt(a, s); });
}

absl::Status CudaBackend::Nvfp4Linear(const Tensor& x, const Weight& weight, Tensor& out) {
  const Nvfp4Parts& w = weight.nvfp4();
  if (w.codes.device() != Device::kCuda || w.block_scales.device() != Device::kCuda) {
    return ShapeError("linear", "nvfp4 codes", w.codes, "a prepared (device) weight");
  }
  const int64_t m = x.dim(0);
  const int64_t k = weight.cols();
  if (m > options_.max_tokens) return TooLarge("linear", "max_tokens", m, options_.max_tokens);
  if (k > options_.max_linear_k) {
    return TooLarge("linear", "max_linear_k", k, options_.max_linear_k);
  }
  // The NVFP4 GEMMs read bf16 activations.
  uint16_t* act = act_bf16_;
  const float* xf = x.data_as<const float>();
  void* s = stream_->handle();
  SPARKSTACK_RETURN_IF_ERROR(stream_->Run("linear (activations to bf16)", [=] {
    return ops::LaunchConvertToBf16(xf, m, k, act, k, s);
  }));
  nvfp4::GemmArgs a;
  a.x = act;
  a.ldx = k;
  a.codes = w.codes.data_as<const uint8_t>();
  a.ldw = w.codes.dim(1);
  a.scales = w.block_scales.data_as<const uint8_t>();
  a.lds = w.block_scales.dim(1);
  a.global_scale = w.global_scale;
  a.input_scale = w.input_scale.value_or(0.0f);
  a.y = out.data();
  a.ldy = out.dim(1);
  a.out_type = nvfp4::OutType::kF32;
  a.m = m;
  a.n = weight.rows();
  a.k = k;
  const nvfp4::Variant v =
      m <= options_.kernels.nvfp4_decode_max_m ? nvfp4_decode_ : nvfp4_prefill_;
  if (v == nvfp4::Variant::kPrefillFp4Mma && !w.input_scale.has_value()) {
    // W4A4 needs the checkpoint's static activation scale; W4A16 weights take the bf16 GEMM.
    const nvfp4::Variant fallback = nvfp4::Variant::kPrefillMmaLarge;
    const int limit = smem_limit_;
    return stream_->Run("linear (nvfp4 prefill_mma)", [=] {
      return nvfp4::LaunchGemm(fallback, a, limit, s);
    });
  }
  const int limit = smem_limit_;
  return stream_->Run(absl::StrCat("linear (nvfp4 ", std::string(nvfp4::VariantName(v)), ")"), [=] {
    return nvfp4::LaunchGemm(v, a, limit, s);
  });
}

absl::Status CudaBackend::Add(Tensor& x, const Tensor& y) {
  if (x.dtype() != DType::kF32 || x.device() != Device::kCuda) {
    return ShapeError("add", "x", x, "f32");
  }
  SPARKSTACK_RETURN_IF_ERROR(ExpectF32("add", "y", y, x.shape()));
  float* a = x.data_as<float>();
  const float* b = y.data_as<const float>();
  const int64_t n = x.numel();
  void* s = stream_->handle();
  return stream_->Run("add", [=] { return ops::LaunchAdd(a, b, n, s); });
}

absl::Status CudaBackend::SwiGlu(const Tensor& gate, const Tensor& up, Tensor& out) {
  if (gate.dtype() != DType::kF32 || gate.device() != Device::kCuda) {
    return ShapeError("swiglu", "gate", gate, "f32");
  }
  SPARKSTACK_RETURN_IF_ERROR(ExpectF32("swiglu", "up", up, gate.shape()));
  SPARKSTACK_RETURN_IF_ERROR(ExpectF32("swiglu", "out", out, gate.shape()));
  const float* g = gate.data_as<const float>();
  const float* u = up.data_as<const float>();
  float* o = out.data_as<float>();
  const int64_t n = gate.numel();
  void* s = stream_->handle();
  return stream_->Run("swiglu", [=] { return ops::LaunchSwiGlu(g, u, n, o, s); });
}

absl::Status CudaBackend::Rope(Tensor& x, const Tensor& positions, const RopeTables& tables) {
  const int64_t half = tables.rotary_dim / 2;
  if (x.rank() != 3 || x.dtype() != DType::kF32 || x.device() != Device::kCuda ||
      tables.rotary_dim % 2 != 0 || tables.rotary_dim > x.dim(2) || tables.rotary_dim <= 0) {
    return ShapeError("rope", "x", x,
                      absl::StrCat("f32 [tokens, heads, head_dim >= rotary_dim ",
                                   tables.rotary_dim, " (even)]"));
  }
  const int64_t max_positions = tables.max_positions();
  SPARKSTACK_RETURN_IF_ERROR(ExpectF32("rope", "cos", tables.cos, {max_positions, half}));
  SPARKSTACK_RETURN_IF_ERROR(ExpectF32("rope", "sin", tables.sin, {max_positions, half}));
  SPARKSTACK_RETURN_IF_ERROR(ExpectIndices("rope", "positions", positions, x.dim(0)));
  float* v = x.data_as<float>();
  const int64_t tokens = x.dim(0), heads = x.dim(1), head_dim = x.dim(2);
  const auto* pos = positions.data_as<const int32_t>();
  const float* c = tables.cos.data_as<const float>();
  const float* sn = tables.sin.data_as<const float>();
  const int64_t rotary = tables.rotary_dim;
  const bool interleaved = tables.interleaved;
  void* s = stream_->handle();
  return stream_->Run("rope", [=] {
    return ops::LaunchRope(v, tokens, heads, head_dim, pos, c, sn, rotary, interleaved, s);
  });
}

absl::StatusOr<ops::ElemType> CacheType(std::string_view op, std::string_view what,
                                        const Tensor& cache) {
  if (cache.rank() == 4 && cache.device() == Device::kCuda) {
    if (cache.dtype() == DType::kF32) return ops::ElemType::kF32;
    if (cache.dtype() == DType::kBF16) return ops::ElemType::kBF16;
  }
  return ShapeError(op, what, cache, "f32 or bf16 [blocks, block_size, kv_heads, head_dim]");
}

absl::Status CudaBackend::StoreKv(const Tensor& k, const Tensor& v, const Tensor& slot_mapping,
                                  Tensor& k_cache, Tensor& v_cache) {
  SPARKSTACK_ASSIGN_OR_RETURN(ops::ElemType type, CacheType("store_kv", "k_cache", k_cache));
  if (v_cache.rank() != 4 || v_cache.dtype() != k_cache.dtype() ||
      v_cache.device() != Device::kCuda || v_cache.dim(0) != k_cache.dim(0) ||
      v_cache.dim(1) != k_cache.dim(1) || v_cache.dim(2) != k_cache.dim(2)) {
    return ShapeError("store_kv", "v_cache", v_cache,
                      absl::StrCat(std::string(DTypeName(k_cache.dtype())), " [", k_cache.dim(0), ", ",
                                   k_cache.dim(1), ", ", k_cache.dim(2), ", v_head_dim]"));
  }
  const int64_t tokens = k.rank() == 3 ? k.dim(0) : -1;
  SPARKSTACK_RETURN_IF_ERROR(
      ExpectF32("store_kv", "k", k, {tokens, k_cache.dim(2), k_cache.dim(3)}));
  SPARKSTACK_RETURN_IF_ERROR(
      ExpectF32("store_kv", "v", v, {tokens, v_cache.dim(2), v_cache.dim(3)}));
  SPARKSTACK_RETURN_IF_ERROR(ExpectIndices("store_kv", "slot_mapping", slot_mapping, tokens));
  const float* kp = k.data_as<const float>();
  const float* vp = v.data_as<const float>();
  const int64_t k_row = k_cache.dim(2) * k_cache.dim(3);
  const int64_t v_row = v_cache.dim(2) * v_cache.dim(3);
  const auto* slots = slot_mapping.data_as<const int32_t>();
  void* kc = k_cache.data();
  void* vc = v_cache.data();
  void* s = stream_->handle();
  return stream_->Run("store_kv", [=] {
    return ops::LaunchStoreKv(kp, vp, tokens, k_row, v_row, slots, kc, vc, type, s);
  });
}

absl::Status CudaBackend::PagedAttention(const Tensor& q, const Tensor& k_cache,
                                         const Tensor& v_cache, const AttentionMetadata& m,
                                         float scale, Tensor& out) {
  constexpr std::string_view kOp = "paged_attention";
  if (q.rank() != 3 || q.dtype() != DType::kF32 || q.dim(0) != m.num_tokens ||
      q.device() != Device::kCuda) {
    return ShapeError(kOp, "q", q, absl::StrCat("f32 [", m.num_tokens, ", heads, head_dim]"));
  }
  SPARKSTACK_ASSIGN_OR_RETURN(ops::ElemType type, CacheType(kOp, "k_cache", k_cache));
  if (k_cache.dim(3) != q.dim(2) || q.dim(1) % k_cache.dim(2) != 0 ||
      k_cache.dim(1) != m.block_size) {
    return ShapeError(kOp, "k_cache", k_cache,
                      absl::StrCat("[blocks, ", m.block_size, ", a divisor of ", q.dim(1), ", ",
                                   q.dim(2), "]"));
  }
  if (v_cache.rank() != 4 || v_cache.dtype() != k_cache.dtype() ||
      v_cache.device() != Device::kCuda || v_cache.dim(0) != k_cache.dim(0) ||
      v_cache.dim(1) != k_cache.dim(1) || v_cache.dim(2) != k_cache.dim(2)) {
    return ShapeError(kOp, "v_cache", v_cache, "like k_cache");
  }
  SPARKSTACK_RETURN_IF_ERROR(ExpectF32(kOp, "out", out, {q.dim(0), q.dim(1), v_cache.dim(3)}));
  SPARKSTACK_RETURN_IF_ERROR(ExpectIndices(kOp, "query_start", m.query_start, m.num_seqs + 1));
  SPARKSTACK_RETURN_IF_ERROR(ExpectIndices(kOp, "seq_lens", m.seq_lens, m.num_seqs));
  if (m.block_table.rank() != 2 || m.block_table.dim(0) != m.num_seqs ||
      m.block_table.dtype() != DType::kI32 || m.block_table.device() != Device::kCuda) {
    return ShapeError(kOp, "block_table", m.block_table,
                      absl::StrCat("i32 [", m.num_seqs, ", max_blocks]"));
  }
  if (m.num_decodes < 0 || m.num_decodes > m.num_seqs) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(kOp), ": num_decodes ", m.num_decodes,
                                                   " of ", m.num_seqs, " sequences"));
  }
  if (m.num_seqs == 0) return absl::OkStatus();
  ops::PagedAttentionArgs a;
  a.q = q.data_as<const float>();
  a.out = out.data_as<float>();
  a.heads = q.dim(1);
  a.kv_heads = k_cache.dim(2);
  a.head_dim = q.dim(2);
  a.v_head_dim = v_cache.dim(3);
  a.k_cache = k_cache.data();
  a.v_cache = v_cache.data();
  a.cache_type = type;
  SetBlockTableArgs(m, scale, a);
  if (const char* why = ops::ValidatePagedAttentionArgs(a)) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(kOp), ": ", why));
  }
  void* s = stream_->handle();
  if (m.num_decodes > 0) {
    // A captured graph serves every later step of its bucket: size the split grid for the
    // longest sequence the block table can describe, not this step's.
    const int64_t context = stream_->capturing() ? m.block_table.dim(1) * m.block_size
                                                 : std::max<int64_t>(m.max_seq_len, 1);
    if (m.num_decodes > options_.max_decode_seqs) {
      return TooLarge(kOp, "max_decode_seqs", m.num_decodes, options_.max_decode_seqs);
    }
    const int64_t floats = ops::DecodeScratchFloats(m.num_decodes, a.heads, a.v_head_dim, context);
    if (floats > attn_partials_floats_) {
      return absl::ResourceExhaustedError(absl::StrCat(
          std::string(kOp), ": ", m.num_decodes, " decodes of ", a.heads, " heads over ", context,
          " positions need ", floats, " floats of split partials; the CUDA backend has ",
          attn_partials_floats_, " (CudaBackendOptions max_decode_seqs, max_heads, "
          "max_head_dim, max_context)"));
    }
    const int64_t decodes = m.num_decodes;
    float* partials = attn_partials_;
    SPARKSTACK_RETURN_IF_ERROR(stream_->Run("paged_attention (decode)", [=] {
      return ops::LaunchPagedAttentionDecode(a, decodes, context, partials, s);
    }));
  }
  if (m.num_decodes < m.num_seqs) {
    const int64_t first = m.num_decodes, seqs = m.num_seqs;
    const int64_t max_query = std::max<int64_t>(m.max_query_len, 1);
    const int limit = smem_limit_;
    SPARKSTACK_RETURN_IF_ERROR(stream_->Run("paged_attention (prefill)", [=] {
      return ops::LaunchPagedAttentionPrefill(a, first, seqs, max_query, limit, s);
    }));
  }
  return absl::OkStatus();
}

// ---- Multi-head latent attention

absl::Status CudaBackend::StoreLatent(const Tensor& latent, const Tensor& slot_mapping,
                                      Tensor& cache) {
  constexpr std::string_view kOp = "store_latent";
  if (cache.rank() != 4 || cache.dtype() != DType::kF32 || cache.dim(2) != 1 ||
      cache.device() != Device::kCuda) {
    return ShapeError(kOp, "cache", cache, "f32 [blocks, block_size, 1, width]");
  }
  const int64_t width = cache.dim(3);
  const int64_t tokens = latent.rank() == 2 ? latent.dim(0) : -1;
  SPARKSTACK_RETURN_IF_ERROR(ExpectF32(kOp, "latent", latent, {tokens, width}));
  SPARKSTACK_RETURN_IF_ERROR(ExpectIndices(kOp, "slot_mapping", slot_mapping, tokens));
  // One pool of latent rows: StoreKv's kernel with no value rows.
  const float* lp = latent.data_as<const float>();
  const auto* slots = slot_mapping.data_as<const int32_t>();
  void* c = cache.data();
  void* s = stream_->handle();
  return stream_->Run("store_latent", [=] {
    return ops::LaunchStoreKv(lp, nullptr, tokens, width, 0, slots, c, nullptr,
                              ops::ElemType::kF32, s);
  });
}

absl::Status CudaBackend::PagedLatentAttention(const Tensor& q, const Tensor& cache,
                                               int64_t value_offset, int64_t value_width,
                                               const AttentionMetadata& m, float scale,
                                               Tensor& out) {
  constexpr std::string_view kOp = "paged_latent_attention";
  if (cache.rank() != 4 || cache.dtype() != DType::kF32 || cache.dim(2) != 1 ||
      cache.dim(1) != m.block_size || cache.device() != Device::kCuda) {
    return ShapeError(kOp, "cache", cache,
                      absl::StrCat("f32 [blocks, ", m.block_size, ", 1, width]"));
  }
  const int64_t width = cache.dim(3);
  if (q.rank() != 3 || q.dim(0) != m.num_tokens) {
    return ShapeError(kOp, "q", q, absl::StrCat("f32 [", m.num_tokens, ", heads, ", width, "]"));
  }
  const int64_t heads = q.dim(1);
  SPARKSTACK_RETURN_IF_ERROR(ExpectF32(kOp, "q", q, {m.num_tokens, heads, width}));
  if (value_offset < 0 || value_width <= 0 || value_offset + value_width > width) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(kOp), ": values [", value_offset,
                                                   ", ", value_offset + value_width,
                                                   ") outside rows of width ", width));
  }
  if (width > ops::kLatentMaxWidth || value_width > ops::kLatentMaxValueWidth) {
    return absl::InvalidArgumentError(absl::StrCat(
        std::string(kOp), ": rows of width ", width, " with values of width ", value_width,
        " exceed the CUDA kernel's limits (width <= ", ops::kLatentMaxWidth,
        ", value_width <= ", ops::kLatentMaxValueWidth, ")"));
  }
  SPARKSTACK_RETURN_IF_ERROR(ExpectF32(kOp, "out", out, {m.num_tokens, heads, value_width}));
  SPARKSTACK_RETURN_IF_ERROR(ExpectIndices(kOp, "query_start", m.query_start, m.num_seqs + 1));
  SPARKSTACK_RETURN_IF_ERROR(ExpectIndices(kOp, "seq_lens", m.seq_lens, m.num_seqs));
  if (m.block_table.rank() != 2 || m.block_table.dim(0) != m.num_seqs ||
      m.block_table.dtype() != DType::kI32 || m.block_table.device() != Device::kCuda) {
    return ShapeError(kOp, "block_table", m.block_table,
                      absl::StrCat("i32 [", m.num_seqs, ", max_blocks]"));
  }
  if (m.num_seqs == 0 || m.num_tokens == 0) return absl::OkStatus();
  ops::LatentAttentionArgs a;
  a.q = q.data_as<const float>();
  a.out = out.data_as<float>();
  a.cache = cache.data_as<const float>();
  a.tokens = m.num_tokens;
  a.heads = heads;
  a.width = width;
  a.value_offset = value_offset;
  a.value_width = value_width;
  a.num_seqs = m.num_seqs;
  SetBlockTableArgs(m, scale, a);
  if (const char* why = ops::ValidateLatentAttentionArgs(a)) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(kOp), ": q ", q.DebugString(),
                                                   ", cache ", cache.DebugString(), ": ", why));
  }
  const int limit = smem_limit_;
  void* s = stream_->handle();
  return stream_->Run("paged_latent_attention",
                      [=] { return ops::LaunchPagedLatentAttention(a, limit, s); });
}

absl::Status CudaBackend::GatherRows(const Tensor& x, const Tensor& rows, Tensor& out) {
  if (x.rank() != 2 || x.dtype() != DType::kF32 || x.device() != Device::kCuda) {
    return ShapeError("gather_rows", "x", x, "f32 [rows, width]");
  }
  if (rows.rank() != 1) return ShapeError("gather_rows", "rows", rows, "i32 [R]");
  SPARKSTACK_RETURN_IF_ERROR(ExpectIndices("gather_rows", "rows", rows, rows.dim(0)));
  SPARKSTACK_RETURN_IF_ERROR(ExpectF32("gather_rows", "out", out, {rows.dim(0), x.dim(1)}));
  const float* xp = x.data_as<const float>();
  const int64_t width = x.dim(1), count = rows.dim(0);
  const auto* r = rows.data_as<const int32_t>();
  float* o = out.data_as<float>();
  void* s = stream_->handle();
  return stream_->Run("gather_rows", [=] {
    return ops::LaunchGatherRows(xp, width, r, count, o, s);
  });
}

absl::Status CudaBackend::CopyColumns(const Tensor& src, int64_t src_column, Tensor& dst,
                                      int64_t dst_column, int64_t width) {
  if (src.rank() != 2 || src.dtype() != DType::kF32 || src.device() != Device::kCuda ||
      src_column < 0 || width < 0 || src_column + width > src.dim(1)) {
    return ShapeError("copy_columns", "src", src,
                      absl::StrCat("f32 [rows, >= ", src_column + width, "]"));
  }
  if (dst.rank() != 2 || dst.dtype() != DType::kF32 || dst.device() != Device::kCuda ||
      dst.dim(0) != src.dim(0) || dst_column < 0 || dst_column + width > dst.dim(1)) {
    return ShapeError("copy_columns", "dst", dst,
                      absl::StrCat("f32 [", src.dim(0), ", >= ", dst_column + width, "]"));
  }
  const float* sp = src.data_as<const float>();
  float* dp = dst.data_as<float>();
  const int64_t ld_src = src.dim(1), ld_dst = dst.dim(1), rows = src.dim(0);
  void* s = stream_->handle();
  return stream_->Run("copy_columns", [=] {
    return ops::LaunchCopyColumns(sp, ld_src, src_column, dp, ld_dst, dst_column, rows, width, s);
  });
}

// ---- Projection biases and mixture of experts

absl::Status CudaBackend::AddBias(Tensor& x, const Tensor& bias) {
  if (x.rank() != 2 || x.dtype() != DType::kF32 || x.device() != Device::kCuda) {
    return ShapeError("add_bias", "x", x, "f32 [rows, width]");
  }
  const int64_t width = x.dim(1);
  if (bias.rank() != 1 || bias.dim(0) != width || bias.device() != Device::kCuda) {
    return ShapeError("add_bias", "bias", bias, absl::StrCat("f32/f16/bf16 [", width, "]"));
  }
  SPARKSTACK_ASSIGN_OR_RETURN(ops::ElemType type, FloatType("add_bias", "bias", bias));
  float* v = x.data_as<float>();
  const void* b = bias.data();
  const int64_t rows = x.dim(0);
  void* s = stream_->handle();
  return stream_->Run("add_bias", [=] { return ops::LaunchAddBias(v, rows, width, b, type, s); });
}

absl::Status CudaBackend::MoeRoute(const Tensor& logits, const Tensor& bias,
                                   const MoeRouting& routing, Tensor& ids, Tensor& weights) {
  const int64_t e = routing.num_experts;
  const int64_t k = routing.top_k;
  const int64_t per_group = routing.n_group > 0 ? e / routing.n_group : 0;
  const bool limited = routing.n_group > 1 && routing.topk_group < routing.n_group;
  // The rule of kernels::MoeRouterParamsError (kernels/cpu/moe_router.h), plus the kernel's limits.
  const char* error = "";
  if (e < 1 || e > ops::kMoeRouteMaxExperts) {
    error = "num_experts must be in [1, 512] on the CUDA backend";
  } else if (k < 1 || k > e || k > ops::kMoeRouteMaxTopK) {
    error = "top_k must be in [1, num_experts] and at most 32 on the CUDA backend";
  } else if (routing.n_group < 1 || routing.n_group > ops::kMoeRouteMaxGroups ||
             e % routing.n_group != 0) {
    error = "n_group must be positive, at most 64 and divide num_experts";
  } else if (routing.topk_group < 1 || routing.topk_group > routing.n_group) {
    error = "topk_group must be in [1, n_group]";
  } else if (limited && per_group < 2) {
    error = "a limited group needs at least two experts";
  } else if (routing.topk_group * per_group < k) {
    error = "topk_group groups cannot supply top_k experts";
  } else if (!(routing.routed_scaling_factor > 0.0f) ||
             !std::isfinite(routing.routed_scaling_factor)) {
    error = "routed_scaling_factor must be positive and finite";
  }
  if (*error != '\0') return absl::InvalidArgumentError(absl::StrCat("moe_route: ", error));
  if (logits.rank() != 2) return ShapeError("moe_route", "logits", logits, "f32 [tokens, experts]");
  const int64_t tokens = logits.dim(0);
  SPARKSTACK_RETURN_IF_ERROR(ExpectF32("moe_route", "logits", logits, {tokens, e}));
  const bool has_bias = bias.defined() && bias.numel() > 0;
  if (has_bias) SPARKSTACK_RETURN_IF_ERROR(ExpectF32("moe_route", "bias", bias, {e}));
  SPARKSTACK_RETURN_IF_ERROR(Expect("moe_route", "ids", ids, DType::kI32, {tokens, k}));
  SPARKSTACK_RETURN_IF_ERROR(ExpectF32("moe_route", "weights", weights, {tokens, k}));
  ops::MoeRouteArgs a;
  a.logits = logits.data_as<const float>();
  a.bias = has_bias ? bias.data_as<const float>() : nullptr;
  a.ids = ids.data_as<int32_t>();
  a.weights = weights.data_as<float>();
  a.tokens = tokens;
  a.num_experts = static_cast<int>(e);
  a.top_k = static_cast<int>(k);
  a.sigmoid = routing.sigmoid;
  a.norm_topk_prob = routing.norm_topk_prob;
  a.routed_scaling_factor = routing.routed_scaling_factor;
  a.n_group = static_cast<int>(routing.n_group);
  a.topk_group = static_cast<int>(routing.topk_group);
  void* s = stream_->handle();
  return stream_->Run("moe_route", [=] { return ops::LaunchMoeRoute(a, s); });
}

namespace {

// A prepared expert weight as the MoE kernels read it, or an error naming the expert and matrix.
absl::StatusOr<ops::MoeWeightView> ExpertView(const Weight& w, int64_t expert, const char* which,
                                              int64_t n, int64_t k) {
  const std::string what = absl::StrCat("moe_experts: expert ", expert, " ", which);
  if (w.rows() != n || w.cols() != k) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is ", w.DebugString(), ", expected [", n, ", ", k, "]"));
  }
  ops::MoeWeightView v;
  v.n = n;
  v.k = k;
  switch (w.format()) {
    case WeightFormat::kDense: {
      const Tensor& t = w.dense();
      if (t.device() != Device::kCuda || t.rank() != 2) {
        return ShapeError("moe_experts", absl::StrCat("expert ", expert, " ", which), t,
                          "a prepared (device) 2-D weight");
      }
      SPARKSTACK_ASSIGN_OR_RETURN(v.type, FloatType("moe_experts", what, t));
      v.data = t.data();
      v.ld = t.dim(1);
      return v;
    }
    case WeightFormat::kNvfp4: {
      const Nvfp4Parts& p = w.nvfp4();
      if (p.codes.device() != Device::kCuda || p.block_scales.device() != Device::kCuda) {
        return ShapeError("moe_experts", absl::StrCat("expert ", expert, " ", which, " codes"),
                          p.codes, "a prepared (device) weight");
      }
      if (k % 16 != 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": NVFP4 needs K a multiple of 16, found ", k));
      }
      v.nvfp4 = true;
      v.data = p.codes.data();
      v.ld = p.codes.dim(1);
      v.scales = p.block_scales.data_as<const uint8_t>();
      v.ld_scales = p.block_scales.dim(1);
      v.global_scale = p.global_scale;
      return v;
    }
  }
  return absl::InternalError(absl::StrCat(what, ": unknown weight format"));
}

}  // namespace

int64_t CudaBackend::MoeExpertsWorkspaceBytes(int64_t tokens, int64_t top_k,
                                              const ExpertSet& experts) const {
  return ops::MoeExpertsWorkspaceLayout(tokens * top_k, std::ssize(experts.experts), experts.hidden,
                                        experts.max_width)
      .total;
}

absl::Status CudaBackend::MoeExperts(const Tensor& x, const Tensor& ids, const Tensor& weights,
                                     const ExpertSet& experts, Tensor& workspace, Tensor& out) {
  if (x.rank() != 2 || ids.rank() != 2) {
    return ShapeError("moe_experts", "x", x, "f32 [tokens, hidden] with ids [tokens, top_k]");
  }
  const int64_t tokens = x.dim(0);
  const int64_t hidden = experts.hidden;
  const int64_t top_k = ids.dim(1);
  SPARKSTACK_RETURN_IF_ERROR(ExpectF32("moe_experts", "x", x, {tokens, hidden}));
  SPARKSTACK_RETURN_IF_ERROR(Expect("moe_experts", "ids", ids, DType::kI32, {tokens, top_k}));
  SPARKSTACK_RETURN_IF_ERROR(ExpectF32("moe_experts", "weights", weights, {tokens, top_k}));
  SPARKSTACK_RETURN_IF_ERROR(ExpectF32("moe_experts", "out", out, {tokens, hidden}));
  if (experts.first < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("moe_experts: first expert ", experts.first, " is negative"));
  }
  const int64_t local = std::ssize(experts.experts);
  struct Views {
    ops::MoeWeightView gate, up, down;
  };
  std::vector<Views> views;
  views.reserve(local);
  for (int64_t e = 0; e < local; ++e) {
    const ExpertMlp& m = experts.experts[e];
    const int64_t global = experts.first + e;
    const int64_t width = m.gate.rows();
    if (width < 1 || width > experts.max_width) {
      return absl::InvalidArgumentError(absl::StrCat("moe_experts: expert ", global, " gate is ",
                                                     m.gate.DebugString(), ", expected [1..",
                                                     experts.max_width, ", ", hidden, "]"));
    }
    Views v;
    SPARKSTACK_ASSIGN_OR_RETURN(v.gate, ExpertView(m.gate, global, "gate", width, hidden));
    SPARKSTACK_ASSIGN_OR_RETURN(v.up, ExpertView(m.up, global, "up", width, hidden));
    SPARKSTACK_ASSIGN_OR_RETURN(v.down, ExpertView(m.down, global, "down", hidden, width));
    if (v.gate.nvfp4 != v.up.nvfp4 || (!v.gate.nvfp4 && v.gate.type != v.up.type)) {
      return absl::InvalidArgumentError(
          absl::StrCat("moe_experts: expert ", global, " gate ", m.gate.DebugString(), " and up ",
                       m.up.DebugString(), " must share one format on the CUDA backend"));
    }
    views.push_back(v);
  }
  const int64_t slots = tokens * top_k;
  const ops::MoeExpertsLayout l =
      ops::MoeExpertsWorkspaceLayout(slots, local, hidden, experts.max_width);
  if (workspace.device() != Device::kCuda || workspace.nbytes() < static_cast<size_t>(l.total)) {
    return ShapeError("moe_experts", "workspace", workspace,
                      absl::StrCat(">= ", l.total, " bytes"));
  }
  if (tokens == 0 || hidden == 0) return absl::OkStatus();
  char* base = static_cast<char*>(workspace.data());
  auto* offsets = reinterpret_cast<int32_t*>(base + l.offsets);
  auto* perm = reinterpret_cast<int32_t*>(base + l.perm);
  auto* slot_row = reinterpret_cast<int32_t*>(base + l.slot_row);
  auto* g = reinterpret_cast<float*>(base + l.g);
  auto* u = reinterpret_cast<float*>(base + l.u);
  auto* y = reinterpret_cast<float*>(base + l.y);
  const int64_t ldh = experts.max_width;
  const auto* id = ids.data_as<const int32_t>();
  const auto* w = weights.data_as<const float>();
  const float* xp = x.data_as<const float>();
  float* o = out.data_as<float>();
  const int64_t first = experts.first;
  void* s = stream_->handle();
  // Everything below is enqueued without waiting on the device: each expert's kernels read its
  // row count from `offsets` and idle tiles exit.
  SPARKSTACK_RETURN_IF_ERROR(stream_->Run("moe_experts (plan)", [=] {
    return ops::LaunchMoePlan(id, tokens, top_k, first, local, offsets, perm, slot_row, s);
  }));
  for (int64_t e = 0; e < local; ++e) {
    const Views v = views[e];
    SPARKSTACK_RETURN_IF_ERROR(stream_->Run("moe_experts (gate/up)", [=] {
      return ops::LaunchMoeGateUp(xp, offsets, e, perm, v.gate, v.up, g, u, ldh, slots, s);
    }));
  }
  // silu(gate) * up over every row at once (rows past the routed count hold unused values).
  SPARKSTACK_RETURN_IF_ERROR(stream_->Run(
      "moe_experts (swiglu)", [=] { return ops::LaunchSwiGlu(g, u, slots * ldh, g, s); }));
  for (int64_t e = 0; e < local; ++e) {
    const Views v = views[e];
    SPARKSTACK_RETURN_IF_ERROR(stream_->Run("moe_experts (down)", [=] {
      return ops::LaunchMoeDown(g, ldh, offsets, e, v.down, y, hidden, slots, s);
    }));
  }
  return stream_->Run("moe_experts (combine)", [=] {
    return ops::LaunchMoeCombine(y, hidden, slot_row, w, tokens, top_k, o, s);
  });
}

// ---- Sampling

absl::Status CudaBackend::Sample(const Tensor& logits, int64_t vocab_limit,
                                 std::span<const SamplingRow> rows, std::span<SampledToken> out) {
  if (logits.rank() != 2 || logits.dtype() != DType::kF32 || logits.device() != Device::kCuda ||
      logits.dim(0) != std::ssize(rows) || std::ssize(out) != std::ssize(rows)) {
    return ShapeError("sample", "logits", logits,
                      absl::StrCat("f32 [", rows.size(), ", vocab] with as many outputs"));
  }
  const int64_t vocab = logits.dim(1);
  const int64_t limit = std::min(vocab, vocab_limit);
  if (limit <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("Sample: vocab_limit ", vocab_limit,
                                                   " leaves no id of ", vocab));
  }
  for (size_t r = 0; r < rows.size(); ++r) {
    if (absl::Status s = ValidateSamplingRow(rows[r], vocab); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("Sample: row ", r, ": ", s.message()));
    }
  }
  // Launches of at most max_logit_rows rows whose edits fit the edit buffer.
  int64_t first = 0;
  const int64_t total = std::ssize(rows);
  while (first < total) {
    int64_t count = 0;
    int64_t edits = 0;
    while (first + count < total && count < options_.max_logit_rows) {
      const SamplingRow& row = rows[first + count];
      const int64_t upper = std::ssize(row.prompt_tokens) + std::ssize(row.output_tokens) +
                            std::ssize(row.banned_tokens);
      if (count > 0 && edits + std::min(upper, limit) > options_.sampling_edits) break;
      edits += std::min(upper, limit);
      ++count;
    }
    SPARKSTACK_RETURN_IF_ERROR(SampleChunk(logits, limit, rows.subspan(first, count),
                                           out.subspan(first, count), first));
    first += count;
  }
  return absl::OkStatus();
}

absl::Status CudaBackend::SampleChunk(const Tensor& logits, int64_t vocab_limit,
                                      std::span<const SamplingRow> rows,
                                      std::span<SampledToken> out, int64_t first_row) {
  const int64_t vocab = logits.dim(1);
  if (std::ssize(history_) < vocab) history_.assign(vocab, 0u);
  host_edits_.clear();
  for (size_t r = 0; r < rows.size(); ++r) {
    const SamplingRow& row = rows[r];
    const SamplingParams& p = row.params;
    ops::SamplingRowArgs& a = host_rows_[r];
    a.temperature = p.temperature;
    a.top_k = p.top_k;
    a.top_p = p.top_p;
    a.min_p = p.min_p;
    a.repetition_penalty = p.repetition_penalty;
    a.presence_penalty = p.presence_penalty;
    a.frequency_penalty = p.frequency_penalty;
    a.logprobs = p.logprobs;
    a.seed = p.seed;
    a.output_index = row.output_index;
    a.edit_begin = static_cast<int32_t>(host_edits_.size());
    // One edit per distinct history id below the limit (the CPU sampler's Penalize).
    const bool repetition = p.repetition_penalty != 1.0f;
    const bool counted = p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f;
    touched_.clear();
    auto mark = [&](int32_t id, uint32_t bits) {
      if (id >= vocab_limit) return;
      if (history_[id] == 0) touched_.push_back(id);
      history_[id] |= bits;
    };
    if (repetition) {
      for (int32_t id : row.prompt_tokens) mark(id, kSeen);
      for (int32_t id : row.output_tokens) mark(id, kSeen);
    }
    if (repetition || counted) {
      for (int32_t id : row.output_tokens) {
        mark(id, 0);
        if (id < vocab_limit && (history_[id] & kCountMask) < kCountMask) ++history_[id];
      }
    }
    for (int32_t id : row.banned_tokens) mark(id, kBanned);
    for (int32_t id : touched_) {
      const uint32_t h = history_[id];
      history_[id] = 0;
      ops::SamplingEdit e;
      e.id = id;
      e.count = h & kCountMask;
      e.seen = (h & kSeen) != 0;
      e.banned = (h & kBanned) != 0;
      if (e.count == 0 && !e.seen && !e.banned) continue;
      if (std::ssize(host_edits_) >= options_.sampling_edits) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "Sample: row ", first_row + r, " has more penalty and ban entries than the ",
            options_.sampling_edits, " of CudaBackendOptions::sampling_edits"));
      }
      host_edits_.push_back(e);
    }
    a.edit_count = static_cast<int32_t>(host_edits_.size()) - a.edit_begin;
  }
  const int64_t count = std::ssize(rows);
  SPARKSTACK_RETURN_IF_ERROR(stream_->CopyToDevice(sample_rows_, host_rows_.data(),
                                                   sizeof(ops::SamplingRowArgs) * count));
  SPARKSTACK_RETURN_IF_ERROR(stream_->CopyToDevice(
      sample_edits_, host_edits_.data(), sizeof(ops::SamplingEdit) * host_edits_.size()));
  float* x = logits.data_as<float>() + first_row * vocab;
  ops::SamplingRowArgs* dev_rows = sample_rows_;
  ops::SamplingEdit* dev_edits = sample_edits_;
  ops::SamplingResult* dev_results = sample_results_;
  void* s = stream_->handle();
  SPARKSTACK_RETURN_IF_ERROR(stream_->Run("sample", [=] {
    return ops::LaunchSampling(x, count, vocab, vocab_limit, dev_rows, dev_edits, dev_results, s);
  }));
  SPARKSTACK_RETURN_IF_ERROR(stream_->CopyToHost(host_results_.data(), sample_results_,
                                                 sizeof(ops::SamplingResult) * count));
  for (int64_t r = 0; r < count; ++r) {
    const ops::SamplingResult& res = host_results_[r];
    const std::string where = absl::StrCat("Sample: row ", first_row + r, ": ");
    switch (res.status) {
      case ops::SamplingStatus::kOk:
        break;
      case ops::SamplingStatus::kBadLogit: {
        float value = 0.0f;
        SPARKSTACK_RETURN_IF_ERROR(
            stream_->CopyToHost(&value, x + r * vocab + res.bad_id, sizeof(float)));
        return absl::InvalidArgumentError(
            absl::StrCat(where, "logit of id ", res.bad_id, " is ", value));
      }
      case ops::SamplingStatus::kNothingToChoose:
        return absl::InvalidArgumentError(
            absl::StrCat(where, "no token can be chosen: every allowed logit is -inf"));
    }
    SampledToken& o = out[r];
    o = SampledToken{};
    o.token = res.token;
    o.logprob = res.logprob;
    o.num_top = res.num_top;
    for (int32_t j = 0; j < res.num_top; ++j) o.top[j] = {res.top_ids[j], res.top_logprobs[j]};
  }
  return absl::OkStatus();
}

}  // namespace

CudaBackendControl* AsCudaBackend(Backend& backend) {
  return dynamic_cast<CudaBackendControl*>(&backend);
}

absl::StatusOr<std::unique_ptr<Backend>> MakeCudaBackend(const CudaBackendOptions& options) {
  for (int64_t v : {options.max_tokens, options.max_decode_seqs, options.max_logit_rows,
                    options.max_linear_k, options.max_heads, options.max_head_dim,
                    options.max_context, options.sampling_edits}) {
    if (v < 1) {
      return absl::InvalidArgumentError(
          "CudaBackendOptions: every limit (max_tokens, max_decode_seqs, max_logit_rows, "
          "max_linear_k, max_heads, max_head_dim, max_context, sampling_edits) must be >= 1");
    }
  }
  SPARKSTACK_ASSIGN_OR_RETURN(std::unique_ptr<CudaBackend> backend, CudaBackend::Create(options));
  return std::unique_ptr<Backend>(std::move(backend));
}

}  // namespace sparkstack
