// The subset of the CUDA runtime API that launchers, the NVFP4 self-check and tests call, for the
// host emulation: "device" memory is host memory (cudaMalloc is an aligned allocation filled with
// the poison pattern of shared_memory.h, cudaMemcpy a memcpy), streams are ignored and every launch runs to completion before it returns (blocks in
// order, each block's threads as fibers: thread_block.h). Launch checks mirror the device's:
// block and grid limits, and dynamic shared memory above 48 KiB only after cudaFuncSetAttribute
// raised the kernel's limit, never above the emulated device's opt-in maximum. A kernel that fails
// (bad operand, race caught by poisoning, deadlock, __trap) makes the launch return the error; it
// stays sticky, as on a device, until ResetEmulatedDevice().
//
// The emulated device is a GB10 (compute capability 12.1, 101,376 B of shared memory per block, 48
// SMs) unless a test picks another with SetEmulatedDevice. Thread safety: launches may run on
// several OS threads at once; device selection and attributes are process-wide (mutex-guarded).
#ifndef SPARKSTACK_KERNELS_EMU_RUNTIME_H_
#define SPARKSTACK_KERNELS_EMU_RUNTIME_H_

#include <cstddef>
#include <functional>
#include <string>

#include "kernels/emu/error.h"
#include "kernels/emu/guard.h"
#include "kernels/emu/vector_types.h"

typedef struct CUstream_st* cudaStream_t;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

enum cudaDeviceAttr {
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
};

enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
};

struct cudaFuncAttributes {
  size_t sharedSizeBytes = 0;
  int maxThreadsPerBlock = 0;
  int numRegs = 0;
  int ptxVersion = 0;
  int binaryVersion = 0;
  int maxDynamicSharedSizeBytes = 0;
};

namespace sparkstack::emu {

struct DeviceProperties {
  const char* name;
  int cc_major;
  int cc_minor;
  int smem_per_block_optin;  // cudaDevAttrMaxSharedMemoryPerBlockOptin
  int sm_count;
  int smem_per_block_default = 49152;
  int max_threads_per_block = 1024;
};

DeviceProperties Gb10Device();  // 12.1, 101,376 B, 48 SMs
DeviceProperties H100Device();  // 9.0, 232,448 B, 132 SMs

// Switches the emulated device, clears kernel attributes and errors.
void SetEmulatedDevice(const DeviceProperties& device);
DeviceProperties EmulatedDevice();
// Clears a sticky kernel error and every kernel's attributes (keeps the device).
void ResetEmulatedDevice();
// The message of the most recent failed launch ("" when none failed).
std::string LastKernelFailure();

// Runs `body` (the kernel with its arguments bound) on grid x block threads with `dynamic_smem`
// bytes of dynamic shared memory; `kernel` identifies the kernel for its attributes.
cudaError_t Launch(const void* kernel, dim3 grid, dim3 block, size_t dynamic_smem,
                   const std::function<void()>& body);
cudaError_t SetFunctionAttribute(const void* kernel, cudaFuncAttribute attribute, int value);
cudaError_t GetFunctionAttributes(cudaFuncAttributes* attributes, const void* kernel);

}  // namespace sparkstack::emu

cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attribute, int device);
cudaError_t cudaMalloc(void** pointer, size_t bytes);
template <typename T>
cudaError_t cudaMalloc(T** pointer, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(pointer), bytes);
}
cudaError_t cudaFree(void* pointer);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* dst, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream = nullptr);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorName(cudaError_t error);
const char* cudaGetErrorString(cudaError_t error);

template <typename T>
cudaError_t cudaFuncSetAttribute(T* kernel, cudaFuncAttribute attribute, int value) {
  return sparkstack::emu::SetFunctionAttribute(reinterpret_cast<const void*>(kernel), attribute,
                                               value);
}
template <typename T>
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attributes, T* kernel) {
  return sparkstack::emu::GetFunctionAttributes(attributes, reinterpret_cast<const void*>(kernel));
}

#endif  // SPARKSTACK_KERNELS_EMU_RUNTIME_H_
