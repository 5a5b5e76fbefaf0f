// The CUDA runtime as the CUDA backend uses it: device discovery and memory facts, device memory,
// and the compute stream with its copies, launches and graph capture. One implementation
// (device.cc) serves the real runtime (nvcc builds) and the host emulation (kernels/emu; the
// emulated backend of the tests): where the emulation has no counterpart (streams, graphs, memory
// queries) it is emulated here, with the same observable rules. No CUDA types in this header.
//
// Thread safety: a Stream is used by one thread at a time (the backend's); the free functions may
// be called from any thread.
#ifndef SPARKSTACK_RUNTIME_BACKEND_CUDA_DEVICE_H_
#define SPARKSTACK_RUNTIME_BACKEND_CUDA_DEVICE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace sparkstack::cuda_backend {

struct DeviceProperties {
  std::string name;
  int cc_major = 0;
  int cc_minor = 0;
  int sm_count = 0;
  int smem_per_block_optin = 0;  // bytes
  int64_t total_memory = 0;      // bytes
  // The device shares the host's memory (GB10, Jetson): device allocations take host RAM.
  bool unified_memory = false;
};

// OK when a CUDA device `device` can be used; otherwise FailedPrecondition saying why (built
// without CUDA, no driver, no device), for `--backend cuda` to fail at once with that message.
absl::Status DeviceAvailable(int device = 0);

// Properties of device `device`; the DeviceAvailable error when there is none.
absl::StatusOr<DeviceProperties> QueryDevice(int device = 0);

struct MemoryFacts {
  int64_t device_free = 0;   // cudaMemGetInfo
  int64_t device_total = 0;
  bool unified_memory = false;
  int64_t host_available = 0;  // MemAvailable (bounded by a cgroup limit), for unified memory
};

// The memory facts of the current device (cudaMemGetInfo, /proc/meminfo, the cgroup limit).
absl::StatusOr<MemoryFacts> QueryMemory(int device = 0);

// MemAvailable from /proc/meminfo, bounded by a cgroup v2 memory limit when one is set.
int64_t HostAvailableMemory();

#if defined(SPARKSTACK_CUDA_EMULATION)
// Emulation only: what QueryMemory reports (tests of the memory plan). Default: 8 GiB free of
// 8 GiB, unified, host_available as the machine reports.
void SetEmulatedMemoryFacts(const MemoryFacts& facts);
#endif

// Device memory; cudaFree on release. ResourceExhausted naming the size when it fails.
absl::StatusOr<void*> DeviceMalloc(size_t bytes);
void DeviceFree(void* p);

// A CUDA error value (cudaError_t as int) as a status naming `what`; OK for 0.
absl::Status CudaStatus(int error, std::string_view what);

// The backend's compute stream: every op, copy and collective of a step is ordered on it.
class Stream {
 public:
  static absl::StatusOr<std::unique_ptr<Stream>> Create(int device = 0);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // The cudaStream_t, for launchers and NCCL.
  void* handle() const { return handle_; }

  // Enqueues `launch` (a call that enqueues kernels on handle() and returns a cudaError_t as
  // int) and checks its result, naming `what`. While an emulated capture is open the call is
  // recorded instead (arguments bound by value, as a CUDA graph's kernel nodes are) and replayed
  // by Replay; on a device the capture is CUDA's own stream capture.
  template <typename Launch>
  absl::Status Run(std::string_view what, Launch&& launch) {
#if defined(SPARKSTACK_CUDA_EMULATION)
    if (capturing_) {
      recording_.push_back({std::string(what), std::function<int()>(launch)});
      return absl::OkStatus();
    }
#endif
    return CudaStatus(launch(), what);
  }

  // Stream-ordered copies and fills. Host-to-device and device-to-host copies are refused while
  // capturing (a graph would replay them from the same host memory).
  absl::Status CopyToDevice(void* dst, const void* src, size_t bytes);
  absl::Status CopyToHost(void* dst, const void* src, size_t bytes);
  absl::Status CopyOnDevice(void* dst, const void* src, size_t bytes);
  absl::Status Fill(void* dst, int byte, size_t bytes);
  // Waits for the stream's work.
  absl::Status Synchronize();

  // Graphs: everything Run between BeginCapture and EndCapture becomes one graph that Replay
  // enqueues again. Graphs live as long as the stream.
  absl::Status BeginCapture();
  absl::StatusOr<int> EndCapture();
  absl::Status Replay(int graph);
  bool capturing() const { return capturing_; }

 private:
  Stream() = default;
  void* handle_ = nullptr;
  bool capturing_ = false;
  struct Graph;
  std::vector<std::unique_ptr<Graph>> graphs_;
#if defined(SPARKSTACK_CUDA_EMULATION)
  struct Recorded {
    std::string what;
    std::function<int()> launch;
  };
  std::vector<Recorded> recording_;
#endif
};

}  // namespace sparkstack::cuda_backend

#endif  // SPARKSTACK_RUNTIME_BACKEND_CUDA_DEVICE_H_
