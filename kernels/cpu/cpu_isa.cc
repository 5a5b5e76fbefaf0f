#include "kernels/cpu/cpu_isa.h"

#include <cstdlib>
#include <cstring>
#include <initializer_list>

namespace sparkstack::kernels {
namespace {

CpuIsa DetectBest() {
  if (CpuIsaSupported(CpuIsa::kAvx512)) return CpuIsa::kAvx512;
  if (CpuIsaSupported(CpuIsa::kAvx2)) return CpuIsa::kAvx2;
  if (CpuIsaSupported(CpuIsa::kNeon)) return CpuIsa::kNeon;
  return CpuIsa::kScalar;
}

CpuIsa Requested(CpuIsa best) {
  const char* env = std::getenv("SPARKSTACK_CPU_ISA");
  if (env == nullptr) return best;
  for (CpuIsa isa : {CpuIsa::kScalar, CpuIsa::kAvx2, CpuIsa::kAvx512, CpuIsa::kNeon}) {
    if (std::strcmp(env, CpuIsaName(isa)) == 0 && CpuIsaSupported(isa)) return isa;
  }
  return best;
}

}  // namespace

bool CpuIsaSupported(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kScalar:
      return true;
    case CpuIsa::kAvx2:
#if defined(__x86_64__)
      // __builtin_cpu_supports also checks that the OS saves the YMM/ZMM state (XGETBV).
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("f16c");
#else
      return false;
#endif
    case CpuIsa::kAvx512:
#if defined(__x86_64__)
      return __builtin_cpu_supports("avx512f") && CpuIsaSupported(CpuIsa::kAvx2);
#else
      return false;
#endif
    case CpuIsa::kNeon:
#if defined(__aarch64__)
      return true;
#else
      return false;
#endif
  }
  return false;
}

CpuIsa BestCpuIsa() {
  static const CpuIsa isa = Requested(DetectBest());
  return isa;
}

const char* CpuIsaName(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kScalar:
      return "scalar";
    case CpuIsa::kAvx2:
      return "avx2";
    case CpuIsa::kAvx512:
      return "avx512";
    case CpuIsa::kNeon:
      return "neon";
  }
  return "unknown";
}

}  // namespace sparkstack::kernels
