// libFuzzer target for the step plan (runtime/engine/step_plan.h): bytes rank 0 sends every other
// rank each step, untrusted on the receiving side. The input is a 16-byte header followed by the
// payload. Beyond "no crash, no sanitizer report, no allocation past -rss_limit_mb", an accepted
// plan must respect the limits the decoder was given, and encoding is a fixed point: a decoded
// plan re-encodes to bytes that decode to a plan encoding to the same bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "runtime/engine/step_plan.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using sparkstack::fuzz::Fail;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (bytes.size() < sparkstack::kStepPlanHeaderBytes) return 0;
  sparkstack::StepPlanLimits limits{.max_sequences = 64, .max_tokens = 4096, .num_blocks = 1024};
  limits.max_payload_bytes = sparkstack::MaxStepPlanPayload(limits);

  sparkstack::StepKind kind;
  uint32_t payload_bytes = 0;
  const absl::Status header = sparkstack::DecodeStepPlanHeader(
      bytes.substr(0, sparkstack::kStepPlanHeaderBytes), limits, kind, payload_bytes);
  sparkstack::fuzz::CheckError(header);
  if (!header.ok()) return 0;
  if (payload_bytes > limits.max_payload_bytes) Fail("header accepted a payload over the limit");
  const std::string_view payload = bytes.substr(sparkstack::kStepPlanHeaderBytes);
  auto plan = sparkstack::DecodeStepPlanPayload(kind, payload, limits);
  if (!plan.ok()) {
    sparkstack::fuzz::CheckError(plan.status());
    return 0;
  }
  if (static_cast<int64_t>(plan->sequences.size()) > limits.max_sequences) {
    Fail("accepted more sequences than max_sequences");
  }
  for (const sparkstack::PlannedSequence& s : plan->sequences) {
    if (static_cast<int64_t>(s.tokens.size()) > limits.max_tokens) {
      Fail("accepted more tokens than max_tokens");
    }
    for (int32_t block : s.block_ids) {
      if (block < 0 || block >= limits.num_blocks) Fail("accepted a block id out of range");
    }
  }
  const std::string once = sparkstack::EncodeStepPlanPayload(*plan);
  auto again = sparkstack::DecodeStepPlanPayload(kind, once, limits);
  if (!again.ok()) Fail("a decoded plan re-encodes to bytes the decoder refuses");
  if (sparkstack::EncodeStepPlanPayload(*again) != once) Fail("encoding is not a fixed point");
  return 0;
}
