// nvfp4_smem_budget <file>: writes, for the build's ptxas check (sparkstack_ptxas_check in
// cmake/SparkstackCuda.cmake), the dynamic shared memory every NVFP4 GEMM kernel is launched with,
// one "<mangled-name fragment> <bytes>" line per kernel, from the same constants the launchers use.
#include <cstdio>
#include <string>

#include "kernels/nvfp4/launch_config.h"
#include "kernels/nvfp4/selector.h"

namespace sparkstack::kernels::nvfp4 {
namespace {

// The part of the kernel's Itanium-mangled name that identifies the variant's instantiation.
std::string KernelNameFragment(Variant v) {
  const auto tile = [](PrefillTile t) {
    return "PrefillGemmKernelILi" + std::to_string(t.bm) + "ELi" + std::to_string(t.bn) + "ELi" +
           std::to_string(t.stages) + "E";
  };
  switch (v) {
    case Variant::kDecodeSimt:
      return "DecodeGemvKernel";
    case Variant::kPrefillMmaLarge:
      return tile(kPrefillTileLarge);
    case Variant::kPrefillMmaSmall:
      return tile(kPrefillTileSmall);
    case Variant::kPrefillFp4Mma:
      return "PrefillFp4MmaKernel";
  }
  return "";
}

}  // namespace
}  // namespace sparkstack::kernels::nvfp4

int main(int argc, char** argv) {
  using namespace sparkstack::kernels::nvfp4;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <output file>\n", argv[0]);
    return 2;
  }
  std::FILE* out = std::fopen(argv[1], "w");
  if (out == nullptr) {
    std::perror(argv[1]);
    return 1;
  }
  for (Variant v : {Variant::kDecodeSimt, Variant::kPrefillMmaLarge, Variant::kPrefillMmaSmall,
                    Variant::kPrefillFp4Mma}) {
    std::fprintf(out, "%s %d\n", KernelNameFragment(v).c_str(), VariantSmemBytes(v));
  }
  return std::fclose(out) == 0 ? 0 : 1;
}
