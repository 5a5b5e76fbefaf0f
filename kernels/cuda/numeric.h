// CUDA's bf16 / fp16 / fp8 types and conversions, for code that runs on the device and on the host
// (__host__ __device__ helpers such as the FP4 activation quantizer): the toolkit's headers, or
// the host emulation's with SPARKSTACK_CUDA_EMULATION.
#ifndef SPARKSTACK_KERNELS_CUDA_NUMERIC_H_
#define SPARKSTACK_KERNELS_CUDA_NUMERIC_H_

#if defined(SPARKSTACK_CUDA_EMULATION)
#include "kernels/emu/numeric.h"
#else
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#endif

#endif  // SPARKSTACK_KERNELS_CUDA_NUMERIC_H_
