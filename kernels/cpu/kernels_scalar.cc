// The scalar kernels: portable C++, the reference the vector ISAs are tested against bitwise.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "kernels/cpu/isa_kernels.h"
#include "kernels/cpu/simd_types.h"
#include "runtime/core/half.h"

namespace sparkstack::kernels {
namespace {
#include "kernels/cpu/isa_kernels.inc"
#include "kernels/cpu/isa_kernels_table.inc"
}  // namespace

const IsaKernels* ScalarKernels() {
  static const IsaKernels table = MakeIsaKernels<ScalarSimd>(CpuIsa::kScalar);
  return &table;
}

const IsaKernels& KernelsFor(CpuIsa isa) {
  const IsaKernels* table = nullptr;
  if (CpuIsaSupported(isa)) {
    switch (isa) {
      case CpuIsa::kScalar:
        break;
      case CpuIsa::kAvx2:
        table = Avx2Kernels();
        break;
      case CpuIsa::kAvx512:
        table = Avx512Kernels();
        break;
      case CpuIsa::kNeon:
        table = NeonKernels();
        break;
    }
  }
  return table != nullptr ? *table : *ScalarKernels();
}

}  // namespace sparkstack::kernels
