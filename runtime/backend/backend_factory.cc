#include "runtime/backend/backend_factory.h"

#include "absl/strings/str_cat.h"
#include "runtime/backend/cuda/device.h"

namespace sparkstack {

std::string_view BackendKindName(BackendKind kind) {
  switch (kind) {
    case BackendKind::kCpu:
      return "cpu";
    case BackendKind::kCuda:
      return "cuda";
  }
  return "unknown";
}

absl::StatusOr<BackendKind> ParseBackendKind(std::string_view name) {
  if (name == "cpu") return BackendKind::kCpu;
  if (name == "cuda") return BackendKind::kCuda;
  return absl::InvalidArgumentError(
      absl::StrCat("backend '", std::string(name), "' is not one of: cpu, cuda"));
}

BackendKind DefaultBackendKind() {
  return cuda_backend::DeviceAvailable(0).ok() ? BackendKind::kCuda : BackendKind::kCpu;
}

absl::Status BackendAvailable(BackendKind kind) {
  switch (kind) {
    case BackendKind::kCpu:
      return absl::OkStatus();
    case BackendKind::kCuda:
      return cuda_backend::DeviceAvailable(0);
  }
  return absl::InvalidArgumentError("unknown backend kind");
}

absl::StatusOr<std::unique_ptr<Backend>> MakeBackend(BackendKind kind,
                                                     const BackendOptions& options) {
  switch (kind) {
    case BackendKind::kCpu:
      return MakeCpuBackend(options.cpu);
    case BackendKind::kCuda:
      return MakeCudaBackend(options.cuda);
  }
  return absl::InvalidArgumentError("unknown backend kind");
}

}  // namespace sparkstack
