// Argument checks shared by the CPU backend's ops: each failure names the op, the argument, what
// it is and what was expected.
#ifndef SPARKSTACK_RUNTIME_BACKEND_CPU_CPU_CHECKS_H_
#define SPARKSTACK_RUNTIME_BACKEND_CPU_CPU_CHECKS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "runtime/core/tensor.h"

namespace sparkstack::cpu {

// InvalidArgument "<op>: <what> is <t>, expected <expected>".
absl::Status ShapeError(std::string_view op, std::string_view what, const Tensor& t,
                        const std::string& expected);

// Checks that `t` is a host tensor of `dtype` and exactly `shape`.
absl::Status Expect(std::string_view op, std::string_view what, const Tensor& t, DType dtype,
                    const Shape& shape);

}  // namespace sparkstack::cpu

#endif  // SPARKSTACK_RUNTIME_BACKEND_CPU_CPU_CHECKS_H_
