#include "runtime/engine/step_plan.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace sparkstack {
namespace {

// Fixed-width little-endian fields; hosts here (x86_64, aarch64) are little-endian.
template <typename T>
void Put(std::string& out, T value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof(T));
}

template <typename T>
T Get(std::string_view bytes, size_t& offset) {
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof(T));
  offset += sizeof(T);
  return value;
}

}  // namespace

std::string EncodeStepPlanHeader(const StepPlan& plan) {
  std::string out;
  out.reserve(kStepPlanHeaderBytes);
  Put<uint32_t>(out, kStepPlanMagic);
  Put<uint16_t>(out, kStepPlanVersion);
  Put<uint16_t>(out, static_cast<uint16_t>(plan.kind));
  Put<int64_t>(out, plan.start);
  Put<uint32_t>(out, static_cast<uint32_t>(plan.tokens.size()));
  Put<uint32_t>(out, plan.kv_capacity);
  Put<float>(out, plan.sampling.temperature);
  Put<int32_t>(out, plan.sampling.top_k);
  Put<float>(out, plan.sampling.top_p);
  Put<uint64_t>(out, plan.sampling.seed);
  Put<uint32_t>(out, plan.sequence);
  out.resize(kStepPlanHeaderBytes, '\0');
  return out;
}

std::string EncodeStepPlanTokens(const StepPlan& plan) {
  return std::string(reinterpret_cast<const char*>(plan.tokens.data()),
                     plan.tokens.size() * sizeof(int32_t));
}

absl::Status DecodeStepPlanHeader(std::string_view bytes, StepPlan& plan) {
  if (bytes.size() != kStepPlanHeaderBytes) {
    return absl::InvalidArgumentError(absl::StrCat("step plan header is ", bytes.size(),
                                                   " bytes, expected ", kStepPlanHeaderBytes));
  }
  size_t offset = 0;
  const auto magic = Get<uint32_t>(bytes, offset);
  const auto version = Get<uint16_t>(bytes, offset);
  const auto kind = Get<uint16_t>(bytes, offset);
  if (magic != kStepPlanMagic) {
    return absl::InvalidArgumentError(absl::StrCat("step plan magic ", magic, " is not 'SSSP'"));
  }
  if (version != kStepPlanVersion) {
    return absl::InvalidArgumentError(absl::StrCat("step plan version ", version,
                                                   ", this build speaks ", kStepPlanVersion));
  }
  if (kind < static_cast<uint16_t>(StepKind::kPrefill) ||
      kind > static_cast<uint16_t>(StepKind::kStop)) {
    return absl::InvalidArgumentError(absl::StrCat("unknown step kind ", kind));
  }
  plan.kind = static_cast<StepKind>(kind);
  plan.start = Get<int64_t>(bytes, offset);
  const auto count = Get<uint32_t>(bytes, offset);
  plan.kv_capacity = Get<uint32_t>(bytes, offset);
  plan.sampling.temperature = Get<float>(bytes, offset);
  plan.sampling.top_k = Get<int32_t>(bytes, offset);
  plan.sampling.top_p = Get<float>(bytes, offset);
  plan.sampling.seed = Get<uint64_t>(bytes, offset);
  plan.sequence = Get<uint32_t>(bytes, offset);
  if (count > kStepPlanMaxTokens) {
    return absl::InvalidArgumentError(absl::StrCat("step plan carries ", count,
                                                   " tokens, more than the limit ",
                                                   kStepPlanMaxTokens));
  }
  if (plan.start < 0) {
    return absl::InvalidArgumentError(absl::StrCat("step plan start ", plan.start, " < 0"));
  }
  plan.tokens.assign(count, 0);
  return absl::OkStatus();
}

}  // namespace sparkstack
