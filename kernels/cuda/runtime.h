// The CUDA runtime API for host code around kernels (launchers, the start-up self-check): the
// toolkit's <cuda_runtime.h>, or the emulated runtime (kernels/emu/runtime.h) with
// SPARKSTACK_CUDA_EMULATION, where "device" memory is host memory and launches run on the host.
#ifndef SPARKSTACK_KERNELS_CUDA_RUNTIME_H_
#define SPARKSTACK_KERNELS_CUDA_RUNTIME_H_

#if defined(SPARKSTACK_CUDA_EMULATION)
#include "kernels/emu/runtime.h"
#else
#include <cuda_runtime.h>
#endif

#endif  // SPARKSTACK_KERNELS_CUDA_RUNTIME_H_
