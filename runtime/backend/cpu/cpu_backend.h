// The CPU backend: float32 activations, kernels from kernels/cpu (vectorizable loops, portable to
// aarch64). Keeps every model buildable and testable on any machine.
#ifndef SPARKSTACK_RUNTIME_BACKEND_CPU_CPU_BACKEND_H_
#define SPARKSTACK_RUNTIME_BACKEND_CPU_CPU_BACKEND_H_

#include <memory>

#include "runtime/backend/backend.h"

namespace sparkstack {

struct CpuBackendOptions {
  int threads = 1;  // worker threads for the linear layers
};

std::unique_ptr<Backend> MakeCpuBackend(const CpuBackendOptions& options = {});

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_BACKEND_CPU_CPU_BACKEND_H_
