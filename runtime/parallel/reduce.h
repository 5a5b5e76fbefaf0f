// Element-wise sums used by the host collectives. f16/bf16 are widened to f32 for the addition and
// rounded back once per call (so a sum of N inputs in one call rounds once); i32 wraps around
// (two's complement) instead of overflowing into undefined behaviour.
#ifndef SPARKSTACK_RUNTIME_PARALLEL_REDUCE_H_
#define SPARKSTACK_RUNTIME_PARALLEL_REDUCE_H_

#include <cstddef>

#include "absl/status/status.h"
#include "runtime/core/dtype.h"

namespace sparkstack {

// InvalidArgument naming the dtype unless it is f32, f16, bf16 or i32.
absl::Status CheckReducibleDType(DType dtype);

// out[i] = inputs[0][i] + inputs[1][i] + ... + inputs[n-1][i], added in that order. `out` may be
// one of the inputs. dtype must have passed CheckReducibleDType.
void SumInOrder(void* out, const void* const* inputs, int n, size_t count, DType dtype);

// dst[i] = dst[i] + src[i].
void SumInto(void* dst, const void* src, size_t count, DType dtype);

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_PARALLEL_REDUCE_H_
