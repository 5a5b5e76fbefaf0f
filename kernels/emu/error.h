// Error codes of the emulated CUDA runtime (the values of the CUDA runtime's cudaError_t, so that
// logs read the same) and the way emulated kernel code reports an execution error.
#ifndef SPARKSTACK_KERNELS_EMU_ERROR_H_
#define SPARKSTACK_KERNELS_EMU_ERROR_H_

#include <string>

#include "kernels/emu/guard.h"

enum cudaError_t : int {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorNoKernelImageForDevice = 209,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchOutOfResources = 701,
  cudaErrorMisalignedAddress = 716,
  cudaErrorLaunchFailure = 719,
  cudaErrorNotSupported = 801,
};

namespace sparkstack::emu {

// Stops the emulated kernel that the calling code runs in: the launch fails with `error`, and
// `message` (prefixed with the block and thread) is printed and kept for cudaGetErrorString-style
// reporting (LastKernelFailure). Never returns. Called outside an emulated kernel (a layer function
// used from plain host code), it prints the message and aborts: that is a programming error.
[[noreturn]] void FailKernel(cudaError_t error, const std::string& message);

}  // namespace sparkstack::emu

#endif  // SPARKSTACK_KERNELS_EMU_ERROR_H_
