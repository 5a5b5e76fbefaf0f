#include "runtime/backend/cuda/device.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/runtime.h"
#include "runtime/core/memory_budget.h"

#if defined(SPARKSTACK_CUDA_EMULATION)
#include "kernels/emu/runtime.h"
#endif

namespace sparkstack::cuda_backend {

int64_t HostAvailableMemory() {
  const uint64_t bytes = AvailableMemory().bytes;
  return static_cast<int64_t>(std::min<uint64_t>(bytes, INT64_MAX));
}

absl::Status CudaStatus(int error, std::string_view what) {
  if (error == 0) return absl::OkStatus();
  const auto e = static_cast<cudaError_t>(error);
  std::string message = absl::StrCat("cuda: ", std::string(what), ": ", cudaGetErrorName(e), " (",
                                     cudaGetErrorString(e), ")");
#if defined(SPARKSTACK_CUDA_EMULATION)
  if (const std::string failure = emu::LastKernelFailure(); !failure.empty()) {
    absl::StrAppend(&message, ": ", failure);
  }
#endif
  if (e == cudaErrorMemoryAllocation) return absl::ResourceExhaustedError(message);
  if (e == cudaErrorInvalidValue) return absl::InvalidArgumentError(message);
  return absl::InternalError(message);
}

#if defined(SPARKSTACK_CUDA_EMULATION)

namespace {
std::mutex g_facts_mu;
MemoryFacts* g_facts = nullptr;
}  // namespace

void SetEmulatedMemoryFacts(const MemoryFacts& facts) {
  std::lock_guard<std::mutex> lock(g_facts_mu);
  delete g_facts;
  g_facts = new MemoryFacts(facts);
}

absl::Status DeviceAvailable(int device) {
  if (device != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cuda: no CUDA device ", device, " (the emulation has device 0 only)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<DeviceProperties> QueryDevice(int device) {
  if (absl::Status s = DeviceAvailable(device); !s.ok()) return s;
  const emu::DeviceProperties d = emu::EmulatedDevice();
  DeviceProperties p;
  p.name = d.name;
  p.cc_major = d.cc_major;
  p.cc_minor = d.cc_minor;
  p.sm_count = d.sm_count;
  p.smem_per_block_optin = d.smem_per_block_optin;
  p.unified_memory = d.cc_major == 12 && d.cc_minor == 1;  // GB10
  std::lock_guard<std::mutex> lock(g_facts_mu);
  p.total_memory = g_facts != nullptr ? g_facts->device_total : int64_t{8} << 30;
  return p;
}

absl::StatusOr<MemoryFacts> QueryMemory(int device) {
  if (absl::Status s = DeviceAvailable(device); !s.ok()) return s;
  std::lock_guard<std::mutex> lock(g_facts_mu);
  if (g_facts != nullptr) return *g_facts;
  return MemoryFacts{.device_free = int64_t{8} << 30,
                     .device_total = int64_t{8} << 30,
                     .unified_memory = true,
                     .host_available = HostAvailableMemory()};
}

#else  // the CUDA runtime

absl::Status DeviceAvailable(int device) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return absl::FailedPreconditionError(absl::StrCat(
        "cuda: no usable CUDA device: ", cudaGetErrorName(e), " (", cudaGetErrorString(e),
        "); use --backend cpu"));
  }
  if (device < 0 || device >= count) {
    return absl::FailedPreconditionError(absl::StrCat("cuda: no CUDA device ", device, " (",
                                                      count, " visible); use --backend cpu"));
  }
  return absl::OkStatus();
}

absl::StatusOr<DeviceProperties> QueryDevice(int device) {
  if (absl::Status s = DeviceAvailable(device); !s.ok()) return s;
  cudaDeviceProp prop{};
  if (absl::Status s = CudaStatus(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
      !s.ok()) {
    return s;
  }
  DeviceProperties p;
  p.name = prop.name;
  p.cc_major = prop.major;
  p.cc_minor = prop.minor;
  p.sm_count = prop.multiProcessorCount;
  p.smem_per_block_optin = static_cast<int>(prop.sharedMemPerBlockOptin);
  p.total_memory = static_cast<int64_t>(prop.totalGlobalMem);
  // GB10 shares LPDDR5X with the CPU; its allocations are host memory.
  p.unified_memory = prop.integrated != 0 || (prop.major == 12 && prop.minor == 1);
  return p;
}

absl::StatusOr<MemoryFacts> QueryMemory(int device) {
  absl::StatusOr<DeviceProperties> props = QueryDevice(device);
  if (!props.ok()) return props.status();
  if (absl::Status s = CudaStatus(cudaSetDevice(device), "cudaSetDevice"); !s.ok()) return s;
  size_t free_bytes = 0, total_bytes = 0;
  if (absl::Status s = CudaStatus(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
      !s.ok()) {
    return s;
  }
  return MemoryFacts{.device_free = static_cast<int64_t>(free_bytes),
                     .device_total = static_cast<int64_t>(total_bytes),
                     .unified_memory = props->unified_memory,
                     .host_available = HostAvailableMemory()};
}

#endif

absl::StatusOr<void*> DeviceMalloc(size_t bytes) {
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, bytes == 0 ? 1 : bytes);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return absl::ResourceExhaustedError(absl::StrCat("cuda: cudaMalloc of ", bytes,
                                                     " bytes failed: ", cudaGetErrorString(e)));
  }
  return p;
}

void DeviceFree(void* p) {
  if (p != nullptr) cudaFree(p);
}

// ---- Stream

#if defined(SPARKSTACK_CUDA_EMULATION)
struct Stream::Graph {
  std::vector<Recorded> launches;
};
#else
struct Stream::Graph {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  ~Graph() {
    if (exec != nullptr) cudaGraphExecDestroy(exec);
    if (graph != nullptr) cudaGraphDestroy(graph);
  }
};
#endif

absl::StatusOr<std::unique_ptr<Stream>> Stream::Create(int device) {
  if (absl::Status s = DeviceAvailable(device); !s.ok()) return s;
  std::unique_ptr<Stream> stream(new Stream());
#if !defined(SPARKSTACK_CUDA_EMULATION)
  if (absl::Status s = CudaStatus(cudaSetDevice(device), "cudaSetDevice"); !s.ok()) return s;
  cudaStream_t handle = nullptr;
  if (absl::Status s = CudaStatus(cudaStreamCreateWithFlags(&handle, cudaStreamNonBlocking),
                                  "cudaStreamCreate");
      !s.ok()) {
    return s;
  }
  stream->handle_ = handle;
#endif
  return stream;
}

Stream::~Stream() {
  graphs_.clear();
#if !defined(SPARKSTACK_CUDA_EMULATION)
  if (handle_ != nullptr) {
    cudaStreamSynchronize(static_cast<cudaStream_t>(handle_));
    cudaStreamDestroy(static_cast<cudaStream_t>(handle_));
  }
#endif
}

absl::Status Stream::CopyToDevice(void* dst, const void* src, size_t bytes) {
  if (capturing_) return absl::FailedPreconditionError("cuda: a host copy inside a graph capture");
  if (bytes == 0) return absl::OkStatus();
  return CudaStatus(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice,
                                    static_cast<cudaStream_t>(handle_)),
                    "copy to the device");
}

absl::Status Stream::CopyToHost(void* dst, const void* src, size_t bytes) {
  if (capturing_) return absl::FailedPreconditionError("cuda: a host copy inside a graph capture");
  if (bytes == 0) return Synchronize();
  if (absl::Status s = CudaStatus(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost,
                                                  static_cast<cudaStream_t>(handle_)),
                                  "copy to the host");
      !s.ok()) {
    return s;
  }
  return Synchronize();
}

absl::Status Stream::CopyOnDevice(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return absl::OkStatus();
  auto* h = static_cast<cudaStream_t>(handle_);
  return Run("device copy", [=] {
    return static_cast<int>(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, h));
  });
}

absl::Status Stream::Fill(void* dst, int byte, size_t bytes) {
  if (bytes == 0) return absl::OkStatus();
  auto* h = static_cast<cudaStream_t>(handle_);
  return Run("memset", [=] { return static_cast<int>(cudaMemsetAsync(dst, byte, bytes, h)); });
}

absl::Status Stream::Synchronize() {
  if (capturing_) return absl::FailedPreconditionError("cuda: synchronize inside a graph capture");
  return CudaStatus(cudaStreamSynchronize(static_cast<cudaStream_t>(handle_)),
                    "stream synchronize (a kernel of this step failed)");
}

absl::Status Stream::BeginCapture() {
  if (capturing_) return absl::FailedPreconditionError("cuda: graph capture already open");
#if !defined(SPARKSTACK_CUDA_EMULATION)
  if (absl::Status s = CudaStatus(
          cudaStreamBeginCapture(static_cast<cudaStream_t>(handle_),
                                 cudaStreamCaptureModeThreadLocal),
          "cudaStreamBeginCapture");
      !s.ok()) {
    return s;
  }
#else
  recording_.clear();
#endif
  capturing_ = true;
  return absl::OkStatus();
}

absl::StatusOr<int> Stream::EndCapture() {
  if (!capturing_) return absl::FailedPreconditionError("cuda: no graph capture open");
  capturing_ = false;
  auto graph = std::make_unique<Graph>();
#if defined(SPARKSTACK_CUDA_EMULATION)
  graph->launches = std::move(recording_);
  recording_.clear();
#else
  if (absl::Status s = CudaStatus(
          cudaStreamEndCapture(static_cast<cudaStream_t>(handle_), &graph->graph),
          "cudaStreamEndCapture");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CudaStatus(cudaGraphInstantiate(&graph->exec, graph->graph, 0),
                                  "cudaGraphInstantiate");
      !s.ok()) {
    return s;
  }
#endif
  graphs_.push_back(std::move(graph));
  return static_cast<int>(graphs_.size()) - 1;
}

absl::Status Stream::Replay(int graph) {
  if (capturing_) return absl::FailedPreconditionError("cuda: graph replay inside a capture");
  if (graph < 0 || graph >= static_cast<int>(graphs_.size())) {
    return absl::InvalidArgumentError(absl::StrCat("cuda: no graph ", graph));
  }
#if defined(SPARKSTACK_CUDA_EMULATION)
  for (const Recorded& r : graphs_[graph]->launches) {
    if (absl::Status s = CudaStatus(r.launch(), r.what); !s.ok()) return s;
  }
  return absl::OkStatus();
#else
  return CudaStatus(cudaGraphLaunch(graphs_[graph]->exec, static_cast<cudaStream_t>(handle_)),
                    "cudaGraphLaunch");
#endif
}

}  // namespace sparkstack::cuda_backend
