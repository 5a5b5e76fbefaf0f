#include "kernels/nvfp4/gemm.h"

#include "kernels/cuda/runtime.h"
#include "kernels/nvfp4/decode_gemv.h"
#include "kernels/nvfp4/prefill_fp4_mma.h"
#include "kernels/nvfp4/prefill_gemm.h"

namespace sparkstack::kernels::nvfp4 {

int LaunchGemm(Variant v, const GemmArgs& args, int smem_limit, void* stream) {
  switch (v) {
    case Variant::kDecodeSimt:
      return LaunchDecodeGemv(args, stream);
    case Variant::kPrefillMmaLarge:
      return LaunchPrefillGemm(args, /*large_tile=*/true, smem_limit, stream);
    case Variant::kPrefillMmaSmall:
      return LaunchPrefillGemm(args, /*large_tile=*/false, smem_limit, stream);
    case Variant::kPrefillFp4Mma:
      return LaunchPrefillFp4Mma(args, smem_limit, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace sparkstack::kernels::nvfp4
