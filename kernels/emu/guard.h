// Included first by every header of the host emulation of CUDA (kernels/emu): it is compiled only
// with SPARKSTACK_CUDA_EMULATION (set by the sparkstack_cuda_emu library for its users), and never
// together with the CUDA toolkit's headers, because it defines CUDA's own names (uint4, dim3,
// __nv_bfloat16, cudaError_t, ...) for the host compiler.
#ifndef SPARKSTACK_KERNELS_EMU_GUARD_H_
#define SPARKSTACK_KERNELS_EMU_GUARD_H_

#if !defined(SPARKSTACK_CUDA_EMULATION)
#error \
    "kernels/emu is the host emulation of CUDA: link sparkstack_cuda_emu (SPARKSTACK_CUDA_EMULATION)"
#endif
#if defined(__CUDACC__) || defined(CUDART_VERSION) || defined(__CUDA_RUNTIME_H__)
#error "the CUDA emulation (kernels/emu) cannot be mixed with nvcc or the CUDA toolkit's headers"
#endif

#endif  // SPARKSTACK_KERNELS_EMU_GUARD_H_
