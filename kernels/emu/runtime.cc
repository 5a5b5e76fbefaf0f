#include "kernels/emu/runtime.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <set>
#include <vector>

#include "kernels/emu/fiber.h"
#include "kernels/emu/shared_memory.h"
#include "kernels/emu/thread_block.h"

namespace sparkstack::emu {
namespace {

constexpr std::align_val_t kAllocationAlignment{256};  // cudaMalloc's guarantee

struct Global {
  std::mutex mu;
  DeviceProperties device = Gb10Device();
  std::map<const void*, int> max_dynamic_smem;  // cudaFuncAttributeMaxDynamicSharedMemorySize
  std::set<void*> allocations;
  cudaError_t sticky = cudaSuccess;
  std::string last_failure;
};

Global& State() {
  static Global* state = new Global();
  return *state;
}

thread_local cudaError_t t_last_error = cudaSuccess;

cudaError_t Record(cudaError_t e) {
  if (e != cudaSuccess) t_last_error = e;
  return e;
}

cudaError_t Sticky() {
  Global& g = State();
  std::lock_guard<std::mutex> lock(g.mu);
  return g.sticky;
}

}  // namespace

DeviceProperties Gb10Device() { return {"emulated GB10", 12, 1, 101376, 48}; }
DeviceProperties H100Device() { return {"emulated H100", 9, 0, 232448, 132}; }

void SetEmulatedDevice(const DeviceProperties& device) {
  Global& g = State();
  std::lock_guard<std::mutex> lock(g.mu);
  g.device = device;
  g.max_dynamic_smem.clear();
  g.sticky = cudaSuccess;
  g.last_failure.clear();
  t_last_error = cudaSuccess;
}

DeviceProperties EmulatedDevice() {
  Global& g = State();
  std::lock_guard<std::mutex> lock(g.mu);
  return g.device;
}

void ResetEmulatedDevice() { SetEmulatedDevice(EmulatedDevice()); }

std::string LastKernelFailure() {
  Global& g = State();
  std::lock_guard<std::mutex> lock(g.mu);
  return g.last_failure;
}

cudaError_t Launch(const void* kernel, dim3 grid, dim3 block, size_t dynamic_smem,
                   const std::function<void()>& body) {
  DeviceProperties device;
  int max_dynamic = 0;
  {
    Global& g = State();
    std::lock_guard<std::mutex> lock(g.mu);
    if (g.sticky != cudaSuccess) return Record(g.sticky);
    device = g.device;
    const auto it = g.max_dynamic_smem.find(kernel);
    max_dynamic = it != g.max_dynamic_smem.end() ? it->second : device.smem_per_block_default;
  }
  const uint64_t threads = uint64_t{block.x} * block.y * block.z;
  if (threads == 0 || threads > static_cast<uint64_t>(device.max_threads_per_block) ||
      block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 0x7fffffffu ||
      grid.y > 65535 || grid.z > 65535) {
    return Record(cudaErrorInvalidConfiguration);
  }
  if (dynamic_smem > static_cast<size_t>(max_dynamic)) return Record(cudaErrorInvalidValue);
  std::vector<std::unique_ptr<FiberStack>> stacks;
  for (unsigned z = 0; z < grid.z; ++z) {
    for (unsigned y = 0; y < grid.y; ++y) {
      for (unsigned x = 0; x < grid.x; ++x) {
        const BlockResult r =
            RunBlock(grid, block, {x, y, z}, dynamic_smem,
                     static_cast<size_t>(device.smem_per_block_optin), body, stacks);
        if (r.error != cudaSuccess) {
          std::fprintf(stderr, "sparkstack emu: kernel failed (%s): %s\n",
                       cudaGetErrorName(r.error), r.message.c_str());
          Global& g = State();
          std::lock_guard<std::mutex> lock(g.mu);
          g.sticky = r.error;
          g.last_failure = r.message;
          return Record(r.error);
        }
      }
    }
  }
  return cudaSuccess;
}

cudaError_t SetFunctionAttribute(const void* kernel, cudaFuncAttribute attribute, int value) {
  Global& g = State();
  std::lock_guard<std::mutex> lock(g.mu);
  if (attribute != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 ||
      value > g.device.smem_per_block_optin) {
    return Record(cudaErrorInvalidValue);
  }
  g.max_dynamic_smem[kernel] = value;
  return cudaSuccess;
}

cudaError_t GetFunctionAttributes(cudaFuncAttributes* attributes, const void* kernel) {
  Global& g = State();
  std::lock_guard<std::mutex> lock(g.mu);
  if (attributes == nullptr || kernel == nullptr) return Record(cudaErrorInvalidValue);
  *attributes = {};
  attributes->ptxVersion = g.device.cc_major * 10 + g.device.cc_minor;
  attributes->binaryVersion = attributes->ptxVersion;
  attributes->maxThreadsPerBlock = g.device.max_threads_per_block;
  const auto it = g.max_dynamic_smem.find(kernel);
  attributes->maxDynamicSharedSizeBytes =
      it != g.max_dynamic_smem.end() ? it->second : g.device.smem_per_block_default;
  return cudaSuccess;
}

}  // namespace sparkstack::emu

using sparkstack::emu::Record;
using sparkstack::emu::State;
using sparkstack::emu::Sticky;

cudaError_t cudaGetDeviceCount(int* count) {
  if (count == nullptr) return Record(cudaErrorInvalidValue);
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  if (device == nullptr) return Record(cudaErrorInvalidValue);
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  return device == 0 ? cudaSuccess : Record(cudaErrorInvalidDevice);
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attribute, int device) {
  if (device != 0) return Record(cudaErrorInvalidDevice);
  if (value == nullptr) return Record(cudaErrorInvalidValue);
  const sparkstack::emu::DeviceProperties d = sparkstack::emu::EmulatedDevice();
  switch (attribute) {
    case cudaDevAttrMultiProcessorCount:
      *value = d.sm_count;
      return cudaSuccess;
    case cudaDevAttrComputeCapabilityMajor:
      *value = d.cc_major;
      return cudaSuccess;
    case cudaDevAttrComputeCapabilityMinor:
      *value = d.cc_minor;
      return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin:
      *value = d.smem_per_block_optin;
      return cudaSuccess;
  }
  return Record(cudaErrorInvalidValue);
}

cudaError_t cudaMalloc(void** pointer, size_t bytes) {
  if (pointer == nullptr) return Record(cudaErrorInvalidValue);
  void* p = operator new(bytes, sparkstack::emu::kAllocationAlignment, std::nothrow);
  if (p == nullptr) return Record(cudaErrorMemoryAllocation);
  // Device memory is not initialized: poisoned, a kernel reading what nobody wrote fails its test.
  sparkstack::emu::SharedMemory::Poison(p, bytes);
  auto& g = State();
  std::lock_guard<std::mutex> lock(g.mu);
  g.allocations.insert(p);
  *pointer = p;
  return cudaSuccess;
}

cudaError_t cudaFree(void* pointer) {
  if (pointer == nullptr) return cudaSuccess;
  auto& g = State();
  std::lock_guard<std::mutex> lock(g.mu);
  if (g.allocations.erase(pointer) == 0) return Record(cudaErrorInvalidValue);
  operator delete(pointer, sparkstack::emu::kAllocationAlignment);
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind) {
  if (const cudaError_t e = Sticky(); e != cudaSuccess) return Record(e);
  if (bytes > 0 && (dst == nullptr || src == nullptr)) return Record(cudaErrorInvalidValue);
  if (bytes > 0) std::memcpy(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t) {
  return cudaMemcpy(dst, src, bytes, kind);
}

cudaError_t cudaMemset(void* dst, int value, size_t bytes) {
  if (const cudaError_t e = Sticky(); e != cudaSuccess) return Record(e);
  if (bytes > 0 && dst == nullptr) return Record(cudaErrorInvalidValue);
  if (bytes > 0) std::memset(dst, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t) {
  return cudaMemset(dst, value, bytes);
}

cudaError_t cudaDeviceSynchronize() { return Record(Sticky()); }

cudaError_t cudaStreamSynchronize(cudaStream_t) { return Record(Sticky()); }

cudaError_t cudaGetLastError() {
  const cudaError_t e = sparkstack::emu::t_last_error;
  sparkstack::emu::t_last_error = cudaSuccess;
  const cudaError_t sticky = Sticky();
  return sticky != cudaSuccess ? sticky : e;
}

cudaError_t cudaPeekAtLastError() {
  const cudaError_t sticky = Sticky();
  return sticky != cudaSuccess ? sticky : sparkstack::emu::t_last_error;
}

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
    case cudaSuccess:
      return "cudaSuccess";
    case cudaErrorInvalidValue:
      return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation:
      return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration:
      return "cudaErrorInvalidConfiguration";
    case cudaErrorNoDevice:
      return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice:
      return "cudaErrorInvalidDevice";
    case cudaErrorNoKernelImageForDevice:
      return "cudaErrorNoKernelImageForDevice";
    case cudaErrorIllegalAddress:
      return "cudaErrorIllegalAddress";
    case cudaErrorLaunchOutOfResources:
      return "cudaErrorLaunchOutOfResources";
    case cudaErrorMisalignedAddress:
      return "cudaErrorMisalignedAddress";
    case cudaErrorLaunchFailure:
      return "cudaErrorLaunchFailure";
    case cudaErrorNotSupported:
      return "cudaErrorNotSupported";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess:
      return "no error";
    case cudaErrorInvalidValue:
      return "invalid argument";
    case cudaErrorMemoryAllocation:
      return "out of memory";
    case cudaErrorInvalidConfiguration:
      return "invalid configuration argument";
    case cudaErrorNoDevice:
      return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice:
      return "invalid device ordinal";
    case cudaErrorNoKernelImageForDevice:
      return "no kernel image is available for execution on the device";
    case cudaErrorIllegalAddress:
      return "an illegal memory access was encountered";
    case cudaErrorLaunchOutOfResources:
      return "too many resources requested for launch";
    case cudaErrorMisalignedAddress:
      return "misaligned address";
    case cudaErrorLaunchFailure:
      return "unspecified launch failure (see the emulator's message)";
    case cudaErrorNotSupported:
      return "operation not supported";
  }
  return "unknown error";
}
