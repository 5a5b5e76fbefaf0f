#include "runtime/core/arena.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/str_cat.h"

namespace sparkstack {

Arena::Arena(Tensor buffer) : buffer_(std::move(buffer)) {
  // Skip to the first aligned byte so every tensor is aligned whatever the buffer's alignment.
  const auto address = reinterpret_cast<uintptr_t>(buffer_.data());
  const size_t skip = (kAlignment - address % kAlignment) % kAlignment;
  capacity_ = buffer_.nbytes() > skip ? buffer_.nbytes() - skip : 0;
  used_ = 0;
  base_offset_ = skip;
}

absl::StatusOr<Tensor> Arena::Take(DType dtype, const Shape& shape) {
  for (int64_t d : shape) {
    if (d < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("workspace: negative dimension in ", ShapeToString(shape)));
    }
  }
  const size_t bytes = Reserved(DTypeByteSize(dtype, NumElements(shape)));
  if (bytes > capacity_ - used_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "workspace: ", std::string(DTypeName(dtype)), ShapeToString(shape), " needs ", bytes, " bytes but ",
        capacity_ - used_, " of ", capacity_, " are left; the step is larger than the workspace "
        "was sized for"));
  }
  char* data = static_cast<char*>(buffer_.data()) + base_offset_ + used_;
  used_ += bytes;
  high_water_ = std::max(high_water_, used_);
  return Tensor::Borrow(data, dtype, shape, buffer_.owner(), buffer_.device());
}

}  // namespace sparkstack
