// Plain C++ vocabulary of the CUDA ops' launchers (kernels/cuda/ops/*.h): element types and the
// rule every launcher follows. No CUDA types: the runtime includes these headers from .cc files.
//
// Launchers take raw device pointers, sizes, strides and a stream (a cudaStream_t as void*), enqueue
// their kernels and return a cudaError_t value as int: 0 on success, cudaErrorInvalidValue (1)
// when the arguments break the launcher's stated rules (nothing is launched), or the launch's
// error. They never allocate and never synchronize, so they can be captured into CUDA graphs.
#ifndef SPARKSTACK_KERNELS_CUDA_OPS_TYPES_H_
#define SPARKSTACK_KERNELS_CUDA_OPS_TYPES_H_

#include <cstdint>

namespace sparkstack::kernels::cuda_ops {

// Element type of a floating-point operand the ops read (weights, tables, caches).
enum class ElemType : int { kF32 = 0, kBF16 = 1, kF16 = 2 };

inline constexpr int kInvalidValue = 1;  // cudaErrorInvalidValue

inline int ElemBytes(ElemType t) { return t == ElemType::kF32 ? 4 : 2; }

}  // namespace sparkstack::kernels::cuda_ops

#endif  // SPARKSTACK_KERNELS_CUDA_OPS_TYPES_H_
