// The CPU backend: float32 activations, the kernels of kernels/cpu, vectorized for the CPU it runs
// on (AVX-512, AVX2 or NEON, chosen at run time; a portable scalar path elsewhere) and
// bit-identical across those paths. Keeps every model buildable and testable on any machine.
//
// Threads: one pool of `threads` threads (the caller counted) is created with the backend and
// used by every op; ops allocate nothing (scratch lives on the stack or was sized at creation), so
// a step allocates nothing after the first.
//
// Weights: PrepareWeight packs a dense weight into column groups (kernels/cpu/packed_dense.h) in
// its own dtype (f16/bf16 stay 2 bytes an element and are widened in registers); Linear refuses a
// dense weight that was not prepared. The prepared Weight's tensor is still the row-major matrix
// (the MoE expert kernels read it; its storage stays referenced), the packing rides on its owner.
// NVFP4 weights and non-float dense dtypes (FP8) are used as they are.
#ifndef SPARKSTACK_RUNTIME_BACKEND_CPU_CPU_BACKEND_H_
#define SPARKSTACK_RUNTIME_BACKEND_CPU_CPU_BACKEND_H_

#include <memory>

#include "runtime/backend/backend.h"

namespace sparkstack {

struct CpuBackendOptions {
  int threads = 1;  // threads of the backend's pool, the calling thread included
};

std::unique_ptr<Backend> MakeCpuBackend(const CpuBackendOptions& options = {});

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_BACKEND_CPU_CPU_BACKEND_H_
