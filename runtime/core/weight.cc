#include "runtime/core/weight.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace sparkstack {
namespace {

// Copies columns [begin, end) of a row-major [rows, cols] byte matrix with `elem_bits` per element.
Tensor CopyColumns(const Tensor& t, int64_t begin, int64_t end) {
  const int64_t rows = t.dim(0);
  const int64_t cols = t.dim(1);
  Tensor out = Tensor::Zeros(t.dtype(), {rows, end - begin});
  const size_t row_bytes = DTypeByteSize(t.dtype(), cols);
  const size_t offset = DTypeByteSize(t.dtype(), begin);
  const size_t width = DTypeByteSize(t.dtype(), end - begin);
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(out.data_as<char>() + r * width, t.data_as<const char>() + r * row_bytes + offset,
                width);
  }
  return out;
}

}  // namespace

absl::StatusOr<Weight> Weight::Dense(Tensor matrix) {
  if (matrix.rank() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("a dense weight must be rank 2, got ", matrix.DebugString()));
  }
  if (matrix.dtype() != DType::kF32 && matrix.dtype() != DType::kF16 &&
      matrix.dtype() != DType::kBF16) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a dense weight must be f32, f16 or bf16, got ", matrix.DebugString()));
  }
  Weight w;
  w.format_ = WeightFormat::kDense;
  w.rows_ = matrix.dim(0);
  w.cols_ = matrix.dim(1);
  w.dense_ = std::move(matrix);
  return w;
}

absl::StatusOr<Weight> Weight::Nvfp4(Nvfp4Parts parts) {
  const Tensor& codes = parts.codes;
  const Tensor& scales = parts.block_scales;
  if (codes.rank() != 2 || codes.dtype() != DType::kU8) {
    return absl::InvalidArgumentError(
        absl::StrCat("nvfp4 codes must be u8 [N, K/2], got ", codes.DebugString()));
  }
  const int64_t n = codes.dim(0);
  const int64_t k = codes.dim(1) * 2;
  if (k % kNvfp4BlockSize != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("nvfp4 K = ", k, " is not a multiple of the block size 16"));
  }
  if (scales.rank() != 2 || scales.dtype() != DType::kF8E4M3 || scales.dim(0) != n ||
      scales.dim(1) != k / kNvfp4BlockSize) {
    return absl::InvalidArgumentError(absl::StrCat("nvfp4 block scales must be fp8_e4m3[", n, ", ",
                                                   k / kNvfp4BlockSize, "], got ",
                                                   scales.DebugString()));
  }
  Weight w;
  w.format_ = WeightFormat::kNvfp4;
  w.rows_ = n;
  w.cols_ = k;
  w.nvfp4_ = std::move(parts);
  return w;
}

absl::StatusOr<Weight> Weight::SliceRows(int64_t begin, int64_t end) const {
  Weight w = *this;
  w.rows_ = end - begin;
  if (format_ == WeightFormat::kDense) {
    auto rows = dense_.SliceRows(begin, end);
    if (!rows.ok()) return rows.status();
    w.dense_ = *std::move(rows);
    return w;
  }
  auto codes = nvfp4_.codes.SliceRows(begin, end);
  if (!codes.ok()) return codes.status();
  auto scales = nvfp4_.block_scales.SliceRows(begin, end);
  if (!scales.ok()) return scales.status();
  w.nvfp4_.codes = *std::move(codes);
  w.nvfp4_.block_scales = *std::move(scales);
  return w;
}

absl::StatusOr<Weight> Weight::SliceCols(int64_t begin, int64_t end) const {
  if (begin < 0 || end < begin || end > cols_) {
    return absl::OutOfRangeError(
        absl::StrCat("column slice [", begin, ", ", end, ") of ", DebugString()));
  }
  Weight w = *this;
  w.cols_ = end - begin;
  if (format_ == WeightFormat::kDense) {
    w.dense_ = CopyColumns(dense_, begin, end);
    return w;
  }
  if (begin % kNvfp4BlockSize != 0 || end % kNvfp4BlockSize != 0) {
    return absl::InvalidArgumentError(absl::StrCat("column slice [", begin, ", ", end, ") of ",
                                                   DebugString(),
                                                   " would split a 16-element scale block"));
  }
  w.nvfp4_.codes = CopyColumns(nvfp4_.codes, begin / 2, end / 2);
  w.nvfp4_.block_scales =
      CopyColumns(nvfp4_.block_scales, begin / kNvfp4BlockSize, end / kNvfp4BlockSize);
  return w;
}

std::string Weight::DebugString() const {
  const std::string type =
      format_ == WeightFormat::kNvfp4 ? "nvfp4" : std::string(DTypeName(dense_.dtype()));
  return absl::StrCat(type, "[", rows_, ", ", cols_, "]");
}

}  // namespace sparkstack
