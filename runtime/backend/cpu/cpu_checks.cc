#include "runtime/backend/cpu/cpu_checks.h"

#include "absl/strings/str_cat.h"

namespace sparkstack::cpu {

absl::Status ShapeError(std::string_view op, std::string_view what, const Tensor& t,
                        const std::string& expected) {
  return absl::InvalidArgumentError(absl::StrCat(std::string(op), ": ", std::string(what), " is ",
                                                 t.DebugString(), ", expected ", expected));
}

absl::Status Expect(std::string_view op, std::string_view what, const Tensor& t, DType dtype,
                    const Shape& shape) {
  if (t.dtype() != dtype || t.device() != Device::kCpu || t.shape() != shape) {
    return ShapeError(op, what, t,
                      absl::StrCat(std::string(DTypeName(dtype)), ShapeToString(shape)));
  }
  return absl::OkStatus();
}

}  // namespace sparkstack::cpu
