// Tensor: a shape, a dtype, a device and storage that is either owned (aligned heap memory) or
// borrowed (an mmapped checkpoint, a caller's buffer) and kept alive by a shared owner.
#ifndef SPARKSTACK_RUNTIME_CORE_TENSOR_H_
#define SPARKSTACK_RUNTIME_CORE_TENSOR_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "runtime/core/dtype.h"

namespace sparkstack {

using Shape = absl::InlinedVector<int64_t, 4>;

enum class Device : uint8_t { kCpu, kCuda };

// Product of the dimensions (1 for a scalar).
int64_t NumElements(const Shape& shape);
// "[2, 3]" for messages.
std::string ShapeToString(const Shape& shape);

// Alignment of owned tensor storage: enough for AVX-512 and for cache lines.
inline constexpr size_t kTensorAlignment = 64;

// Allocates `bytes` (rounded up to the alignment) of zeroed host memory aligned to `alignment`.
std::shared_ptr<void> AllocateAligned(size_t bytes, size_t alignment = kTensorAlignment);

// Copyable handle; copies share storage (like a view). Thread-compatible: concurrent reads are
// fine, writes to the same storage need external synchronization.
class Tensor {
 public:
  Tensor() = default;

  // Owned, zero-initialized host tensor.
  static Tensor Zeros(DType dtype, const Shape& shape);

  // Borrowed storage: `data` must stay valid while `owner` is alive (owner may be null when the
  // caller guarantees the lifetime itself).
  static Tensor Borrow(void* data, DType dtype, const Shape& shape,
                       std::shared_ptr<const void> owner, Device device = Device::kCpu);

  bool defined() const { return data_ != nullptr || NumElements(shape_) == 0; }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_[i < 0 ? i + rank() : i]; }
  int64_t numel() const { return NumElements(shape_); }
  size_t nbytes() const { return DTypeByteSize(dtype_, numel()); }

  void* data() const { return data_; }
  // What keeps the storage alive (null for unowned borrowed storage); views share it.
  const std::shared_ptr<const void>& owner() const { return owner_; }
  template <typename T>
  T* data_as() const {
    return static_cast<T*>(data_);
  }

  // Same storage, another shape with the same number of elements.
  absl::StatusOr<Tensor> Reshape(const Shape& shape) const;

  // Rows [begin, end) of the outermost dimension, sharing storage. For nvfp4 a row is the packed
  // inner dimension, so the inner size must be even.
  absl::StatusOr<Tensor> SliceRows(int64_t begin, int64_t end) const;

  // Deep copy into owned host memory.
  Tensor Clone() const;

  std::string DebugString() const;  // "bf16[4, 8]"

 private:
  std::shared_ptr<const void> owner_;
  void* data_ = nullptr;
  DType dtype_ = DType::kF32;
  Device device_ = Device::kCpu;
  Shape shape_;
};

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_CORE_TENSOR_H_
