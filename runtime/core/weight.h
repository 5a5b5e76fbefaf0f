// Weight: the matrix of a linear layer, y = x W^T with W of shape [N (out), K (in)], held in one of
// the formats the kernels dispatch on. Dense weights are f32/f16/bf16 row-major [N, K]; NVFP4
// weights are packed e2m1 codes [N, K/2] (element 2i in the low nibble), E4M3 block scales
// [N, K/16] (one per 16 consecutive elements along K) and one FP32 global scale.
#ifndef SPARKSTACK_RUNTIME_CORE_WEIGHT_H_
#define SPARKSTACK_RUNTIME_CORE_WEIGHT_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/core/tensor.h"

namespace sparkstack {

enum class WeightFormat : uint8_t { kDense, kNvfp4 };

inline constexpr int64_t kNvfp4BlockSize = 16;

struct Nvfp4Parts {
  Tensor codes;         // u8 [N, K/2]
  Tensor block_scales;  // f8e4m3 [N, K/16], plain row-major
  float global_scale = 1.0f;                // dequant: e2m1 * block_scale * global_scale
  std::optional<float> input_scale;         // static activation scale, W4A4 only
};

// Copyable handle; copies share storage.
class Weight {
 public:
  Weight() = default;

  // `matrix` must be rank 2 and f32, f16 or bf16.
  static absl::StatusOr<Weight> Dense(Tensor matrix);
  // Checks the shapes and dtypes of the parts against each other; K is derived from codes.
  static absl::StatusOr<Weight> Nvfp4(Nvfp4Parts parts);

  WeightFormat format() const { return format_; }
  int64_t rows() const { return rows_; }  // N
  int64_t cols() const { return cols_; }  // K
  const Tensor& dense() const { return dense_; }
  const Nvfp4Parts& nvfp4() const { return nvfp4_; }

  // Output rows [begin, end) (column-parallel sharding). Shares storage.
  absl::StatusOr<Weight> SliceRows(int64_t begin, int64_t end) const;
  // Input columns [begin, end) (row-parallel sharding). NVFP4 slices must keep whole 16-element
  // blocks. Copies into owned memory: the columns are not contiguous.
  absl::StatusOr<Weight> SliceCols(int64_t begin, int64_t end) const;

  std::string DebugString() const;  // "nvfp4[N, K]" / "bf16[N, K]"

 private:
  WeightFormat format_ = WeightFormat::kDense;
  int64_t rows_ = 0;
  int64_t cols_ = 0;
  Tensor dense_;
  Nvfp4Parts nvfp4_;
};

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_CORE_WEIGHT_H_
