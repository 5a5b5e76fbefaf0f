#include "kernels/nvfp4/selector.h"

#include <algorithm>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "kernels/nvfp4/prefill_fp4_mma_layout.h"
#include "spdlog/spdlog.h"

namespace sparkstack::kernels::nvfp4 {

std::string_view VariantName(Variant v) {
  switch (v) {
    case Variant::kDecodeSimt:
      return "decode_simt";
    case Variant::kPrefillMmaLarge:
      return "prefill_mma_128x128";
    case Variant::kPrefillMmaSmall:
      return "prefill_mma_64x128";
    case Variant::kPrefillFp4Mma:
      return "prefill_fp4_mma_128x128";
  }
  return "unknown";
}

int VariantSmemBytes(Variant v) {
  switch (v) {
    case Variant::kDecodeSimt:
      return 0;
    case Variant::kPrefillMmaLarge:
      return PrefillSmemBytes(kPrefillTileLarge);
    case Variant::kPrefillMmaSmall:
      return PrefillSmemBytes(kPrefillTileSmall);
    case Variant::kPrefillFp4Mma:
      return Fp4MmaSmemBytes();
  }
  return 0;
}

absl::StatusOr<int> ParseSmemCap(const char* value) {
  if (value == nullptr || *value == '\0') return 0;
  int64_t bytes = 0;
  if (!absl::SimpleAtoi(value, &bytes) || bytes < 1024 || bytes > (int64_t{1} << 30)) {
    return absl::InvalidArgumentError(
        absl::StrCat("SPARKSTACK_SMEM_CAP_BYTES: expected an integer number of bytes in [1024, ",
                     int64_t{1} << 30, "], found '", value, "'"));
  }
  return static_cast<int>(bytes);
}

absl::StatusOr<bool> ParseEnableFp4Mma(const char* value) {
  if (value == nullptr || *value == '\0') return false;
  const std::string_view v(value);
  if (v == "1") return true;
  if (v == "0") return false;
  return absl::InvalidArgumentError(
      absl::StrCat("SPARKSTACK_ENABLE_FP4_MMA: expected '1' or '0', found '", value, "'"));
}

int EffectiveSmemLimit(const DeviceInfo& device, const SelectOptions& options) {
  int limit = device.max_smem_per_block_optin;
  if (options.smem_cap_bytes > 0) limit = std::min(limit, options.smem_cap_bytes);
  return limit;
}

bool DeviceSupported(const DeviceInfo& device) { return device.cc_major >= 8; }

std::vector<Variant> CandidateVariants(GemmOp op, const DeviceInfo& device,
                                       const SelectOptions& options) {
  std::vector<Variant> out;
  if (!DeviceSupported(device)) return out;
  const int limit = EffectiveSmemLimit(device, options);
  switch (op) {
    case GemmOp::kDecode:
      out.push_back(Variant::kDecodeSimt);
      break;
    case GemmOp::kPrefill:
      // The FP4 tensor-core path exists only on compute capability 12.x and is opt-in.
      if (options.enable_fp4_mma && device.cc_major == 12 &&
          VariantSmemBytes(Variant::kPrefillFp4Mma) <= limit) {
        out.push_back(Variant::kPrefillFp4Mma);
      }
      // Largest tile that fits first. On GB10 (101,376 bytes) and Hopper (232,448) the large
      // tile fits; the small one is for devices or caps near the 48 KiB default.
      for (Variant v : {Variant::kPrefillMmaLarge, Variant::kPrefillMmaSmall}) {
        if (VariantSmemBytes(v) <= limit) out.push_back(v);
      }
      out.push_back(Variant::kDecodeSimt);
      break;
  }
  return out;
}

absl::StatusOr<Variant> SelectFirstPassing(const std::vector<Variant>& candidates,
                                           const std::function<absl::Status(Variant)>& check) {
  std::string failures;
  for (Variant v : candidates) {
    const absl::Status status = check(v);
    if (status.ok()) return v;
    spdlog::warn("nvfp4: kernel variant {} failed its self-check ({}); falling back",
                 std::string(VariantName(v)), std::string(status.message()));
    absl::StrAppend(&failures, failures.empty() ? "" : "; ", std::string(VariantName(v)), ": ",
                    status.message());
  }
  if (candidates.empty()) {
    return absl::FailedPreconditionError("nvfp4: no kernel variant supports this device");
  }
  return absl::FailedPreconditionError(
      absl::StrCat("nvfp4: every kernel variant failed its self-check: ", failures));
}

}  // namespace sparkstack::kernels::nvfp4
