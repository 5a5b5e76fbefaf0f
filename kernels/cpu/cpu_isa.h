// Which vector instruction set the CPU kernels use, chosen at run time. The build never assumes the
// build machine's CPU: the AVX2 and AVX-512 kernels are compiled for their ISA function by function
// (target pragmas in their own files) and only called after cpuid says the CPU (and the OS, for the
// wider registers) supports them. aarch64 always has NEON (Advanced SIMD is part of the base ISA).
#ifndef SPARKSTACK_KERNELS_CPU_CPU_ISA_H_
#define SPARKSTACK_KERNELS_CPU_CPU_ISA_H_

#include <cstdint>

namespace sparkstack::kernels {

enum class CpuIsa : uint8_t {
  kScalar,  // portable C++ (std::fma): the reference every vector path must equal
  kAvx2,    // x86-64 AVX2 + FMA + F16C
  kAvx512,  // x86-64 AVX-512F
  kNeon,    // aarch64 Advanced SIMD
};

// True when this build has kernels for `isa` and this CPU can run them.
bool CpuIsaSupported(CpuIsa isa);

// The widest supported ISA. SPARKSTACK_CPU_ISA=scalar|avx2|avx512|neon in the environment caps it
// (for comparing paths on one machine); an unsupported request falls back to the best supported.
CpuIsa BestCpuIsa();

const char* CpuIsaName(CpuIsa isa);

}  // namespace sparkstack::kernels

#endif  // SPARKSTACK_KERNELS_CPU_CPU_ISA_H_
