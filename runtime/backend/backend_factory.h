// Choosing a backend by name: `--backend cpu|cuda` on generate, bench (and serve/node), carried
// in EngineOptions so every rank builds the same kind.
#ifndef SPARKSTACK_RUNTIME_BACKEND_BACKEND_FACTORY_H_
#define SPARKSTACK_RUNTIME_BACKEND_BACKEND_FACTORY_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "runtime/backend/backend.h"
#include "runtime/backend/cpu/cpu_backend.h"
#include "runtime/backend/cuda/cuda_backend.h"

namespace sparkstack {

enum class BackendKind : int { kCpu, kCuda };

std::string_view BackendKindName(BackendKind kind);  // "cpu", "cuda"

// "cpu" or "cuda"; InvalidArgument naming the accepted values otherwise.
absl::StatusOr<BackendKind> ParseBackendKind(std::string_view name);

// kCuda when this build has CUDA and a device is visible, else kCpu.
BackendKind DefaultBackendKind();

// OK when `kind` can run here; for kCuda without a device (or a CUDA build), FailedPrecondition
// saying why. Cheap: callers check it before loading anything.
absl::Status BackendAvailable(BackendKind kind);

struct BackendOptions {
  CpuBackendOptions cpu;
  CudaBackendOptions cuda;
};

absl::StatusOr<std::unique_ptr<Backend>> MakeBackend(BackendKind kind,
                                                     const BackendOptions& options);

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_BACKEND_BACKEND_FACTORY_H_
