// The CUDA backend's entry points in a build without CUDA (-DSPARKSTACK_CUDA=OFF, or no nvcc
// found): every one says so, so that `--backend cuda` fails at once with that message.
#include "absl/status/status.h"
#include "runtime/backend/cuda/cuda_backend.h"
#include "runtime/backend/cuda/device.h"

namespace sparkstack {
namespace {

absl::Status NoCuda() {
  return absl::FailedPreconditionError(
      "cuda: this sparkstack was built without CUDA (configure with -DSPARKSTACK_CUDA=ON on a "
      "machine with the CUDA toolkit); use --backend cpu");
}

}  // namespace

namespace cuda_backend {
absl::Status DeviceAvailable(int) { return NoCuda(); }
absl::StatusOr<DeviceProperties> QueryDevice(int) { return NoCuda(); }
absl::StatusOr<MemoryFacts> QueryMemory(int) { return NoCuda(); }
}  // namespace cuda_backend

CudaBackendControl* AsCudaBackend(Backend&) { return nullptr; }

absl::StatusOr<std::unique_ptr<Backend>> MakeCudaBackend(const CudaBackendOptions&) {
  return NoCuda();
}

}  // namespace sparkstack
