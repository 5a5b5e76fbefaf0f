#include "runtime/backend/cpu/cpu_backend.h"

#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/convert.h"
#include "kernels/cpu/dense_linear.h"
#include "kernels/cpu/nvfp4_linear.h"
#include "kernels/cpu/nvfp4_self_check.h"
#include "kernels/cpu/rms_norm.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/swiglu.h"

namespace sparkstack {
namespace {

absl::Status ShapeError(std::string_view op, std::string_view what, const Tensor& t,
                        const std::string& expected) {
  return absl::InvalidArgumentError(absl::StrCat(std::string(op), ": ", std::string(what), " is ",
                                                 t.DebugString(), ", expected ", expected));
}

// Checks that `t` is a host f32 tensor of exactly `shape`.
absl::Status ExpectF32(std::string_view op, std::string_view what, const Tensor& t,
                       const Shape& shape) {
  if (t.dtype() != DType::kF32 || t.device() != Device::kCpu || t.shape() != shape) {
    return ShapeError(op, what, t, absl::StrCat("f32", ShapeToString(shape)));
  }
  return absl::OkStatus();
}

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(const CpuBackendOptions& options)
      : options_(options), nvfp4_path_(VerifiedNvfp4Path()) {}

  std::string_view name() const override { return "cpu"; }
  Device device() const override { return Device::kCpu; }

  Tensor Allocate(DType dtype, const Shape& shape) override { return Tensor::Zeros(dtype, shape); }

  absl::Status Embedding(const Tensor& table, std::span<const int32_t> ids, int64_t first_id,
                         Tensor& out) override {
    if (table.rank() != 2 || !kernels::IsFloatDType(table.dtype())) {
      return ShapeError("embedding", "table", table, "f32/f16/bf16 [vocab, hidden]");
    }
    const int64_t rows = table.dim(0);
    const int64_t hidden = table.dim(1);
    auto status = ExpectF32("embedding", "out", out, {static_cast<int64_t>(ids.size()), hidden});
    if (!status.ok()) return status;
    for (size_t t = 0; t < ids.size(); ++t) {
      float* row = out.data_as<float>() + t * hidden;
      const int64_t local = ids[t] - first_id;
      if (local < 0 || local >= rows) {
        std::memset(row, 0, hidden * sizeof(float));
      } else {
        kernels::LoadAsFloat(table.data(), table.dtype(), local * hidden, hidden, row);
      }
    }
    return absl::OkStatus();
  }

  absl::Status RmsNorm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) override {
    if (x.rank() != 2 || x.dtype() != DType::kF32) {
      return ShapeError("rms_norm", "x", x, "f32 [rows, width]");
    }
    if (weight.rank() != 1 || weight.dim(0) != x.dim(1) || !kernels::IsFloatDType(weight.dtype())) {
      return ShapeError("rms_norm", "weight", weight, absl::StrCat("[", x.dim(1), "]"));
    }
    auto status = ExpectF32("rms_norm", "out", out, x.shape());
    if (!status.ok()) return status;
    kernels::RmsNormF32(x.data_as<float>(), x.dim(0), x.dim(1), weight.data(), weight.dtype(), eps,
                        out.data_as<float>());
    return absl::OkStatus();
  }

  absl::Status Linear(const Tensor& x, const Weight& weight, Tensor& out) override {
    if (x.rank() != 2 || x.dtype() != DType::kF32 || x.dim(1) != weight.cols()) {
      return ShapeError("linear", "x", x,
                        absl::StrCat("f32 [M, ", weight.cols(), "] for weight ",
                                     weight.DebugString()));
    }
    auto status = ExpectF32("linear", "out", out, {x.dim(0), weight.rows()});
    if (!status.ok()) return status;
    switch (weight.format()) {
      case WeightFormat::kDense:
        kernels::DenseLinearF32(x.data_as<float>(), x.dim(0), x.dim(1), weight.dense().data(),
                                weight.dense().dtype(), weight.rows(), out.data_as<float>(),
                                options_.threads);
        return absl::OkStatus();
      case WeightFormat::kNvfp4:
        return Nvfp4Linear(x, weight.nvfp4(), weight.rows(), out);
    }
    return absl::InternalError("linear: unknown weight format");
  }

  absl::Status Nvfp4Linear(const Tensor& x, const Nvfp4Parts& w, int64_t n, Tensor& out) {
    const auto* codes = w.codes.data_as<uint8_t>();
    const auto* scales = w.block_scales.data_as<uint8_t>();
    if (nvfp4_path_ == kernels::BestNvfp4CpuPath()) {  // verified: the threaded dispatcher
      kernels::Nvfp4LinearF32(x.data_as<float>(), x.dim(0), x.dim(1), codes, scales,
                              w.global_scale, n, out.data_as<float>(), options_.threads);
    } else {
      kernels::Nvfp4LinearF32WithPath(nvfp4_path_, x.data_as<float>(), x.dim(0), x.dim(1), codes,
                                      scales, w.global_scale, n, out.data_as<float>());
    }
    return absl::OkStatus();
  }

  absl::Status Rope(Tensor& x, std::span<const int32_t> positions,
                    std::span<const float> inv_freq) override {
    if (x.rank() != 3 || x.dtype() != DType::kF32 || x.dim(0) != std::ssize(positions) ||
        x.dim(2) != 2 * std::ssize(inv_freq)) {
      return ShapeError("rope", "x", x,
                        absl::StrCat("f32 [", positions.size(), ", heads, ", 2 * inv_freq.size(),
                                     "]"));
    }
    kernels::RopeRotateHalfF32(x.data_as<float>(), x.dim(0), x.dim(1), x.dim(2), positions.data(),
                               inv_freq.data());
    return absl::OkStatus();
  }

  absl::Status StoreKv(const Tensor& k, const Tensor& v, int64_t start, Tensor& k_cache,
                       Tensor& v_cache) override {
    if (k_cache.rank() != 3 || k_cache.dtype() != DType::kF32) {
      return ShapeError("store_kv", "k_cache", k_cache, "f32 [capacity, kv_heads, head_dim]");
    }
    auto status = ExpectF32("store_kv", "v_cache", v_cache, k_cache.shape());
    if (!status.ok()) return status;
    if (k.rank() != 3) return ShapeError("store_kv", "k", k, "f32 [tokens, kv_heads, head_dim]");
    const Shape kv_shape = {k.dim(0), k_cache.dim(1), k_cache.dim(2)};
    if (status = ExpectF32("store_kv", "k", k, kv_shape); !status.ok()) return status;
    if (status = ExpectF32("store_kv", "v", v, kv_shape); !status.ok()) return status;
    if (start < 0 || start + k.dim(0) > k_cache.dim(0)) {
      return absl::OutOfRangeError(absl::StrCat("store_kv: rows [", start, ", ", start + k.dim(0),
                                                ") exceed the cache capacity ", k_cache.dim(0)));
    }
    const size_t row_bytes = k_cache.dim(1) * k_cache.dim(2) * sizeof(float);
    std::memcpy(k_cache.data_as<char>() + start * row_bytes, k.data(), k.nbytes());
    std::memcpy(v_cache.data_as<char>() + start * row_bytes, v.data(), v.nbytes());
    return absl::OkStatus();
  }

  absl::Status Attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                         int64_t start, float scale, Tensor& out) override {
    if (q.rank() != 3 || q.dtype() != DType::kF32) {
      return ShapeError("attention", "q", q, "f32 [tokens, heads, head_dim]");
    }
    if (k_cache.rank() != 3 || k_cache.dtype() != DType::kF32 || k_cache.dim(2) != q.dim(2) ||
        q.dim(1) % k_cache.dim(1) != 0) {
      return ShapeError("attention", "k_cache", k_cache,
                        absl::StrCat("f32 [capacity, a divisor of ", q.dim(1), ", ", q.dim(2), "]"));
    }
    auto status = ExpectF32("attention", "v_cache", v_cache, k_cache.shape());
    if (!status.ok()) return status;
    if (status = ExpectF32("attention", "out", out, q.shape()); !status.ok()) return status;
    if (start < 0 || start + q.dim(0) > k_cache.dim(0)) {
      return absl::OutOfRangeError(absl::StrCat("attention: positions [", start, ", ",
                                                start + q.dim(0), ") exceed the cache capacity ",
                                                k_cache.dim(0)));
    }
    kernels::CausalAttentionF32(q.data_as<float>(), q.dim(0), q.dim(1), k_cache.dim(1), q.dim(2),
                                k_cache.data_as<float>(), v_cache.data_as<float>(), start, scale,
                                out.data_as<float>());
    return absl::OkStatus();
  }

  absl::Status SwiGlu(const Tensor& gate, const Tensor& up, Tensor& out) override {
    if (gate.dtype() != DType::kF32) return ShapeError("swiglu", "gate", gate, "f32");
    auto status = ExpectF32("swiglu", "up", up, gate.shape());
    if (!status.ok()) return status;
    if (status = ExpectF32("swiglu", "out", out, gate.shape()); !status.ok()) return status;
    kernels::SwiGluF32(gate.data_as<float>(), up.data_as<float>(), gate.numel(),
                       out.data_as<float>());
    return absl::OkStatus();
  }

  absl::Status AddInPlace(Tensor& x, const Tensor& y) override {
    if (x.dtype() != DType::kF32) return ShapeError("add", "x", x, "f32");
    auto status = ExpectF32("add", "y", y, x.shape());
    if (!status.ok()) return status;
    float* a = x.data_as<float>();
    const float* b = y.data_as<float>();
    for (int64_t i = 0; i < x.numel(); ++i) a[i] += b[i];
    return absl::OkStatus();
  }

  absl::StatusOr<Tensor> ToHost(const Tensor& x) override { return x; }

 private:
  // Checked once per process: every backend shares the verdict.
  static kernels::Nvfp4CpuPath VerifiedNvfp4Path() {
    static const kernels::Nvfp4CpuPath path = kernels::SelectVerifiedNvfp4CpuPath();
    return path;
  }

  CpuBackendOptions options_;
  kernels::Nvfp4CpuPath nvfp4_path_;
};

}  // namespace

std::unique_ptr<Backend> MakeCpuBackend(const CpuBackendOptions& options) {
  return std::make_unique<CpuBackend>(options);
}

}  // namespace sparkstack
