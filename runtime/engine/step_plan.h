// StepPlan: what every rank does in one step, broadcast by rank 0 over the data plane (never
// gRPC). Compact and versioned; decoding treats the bytes as untrusted.
//
// Wire format (little-endian), a fixed header then the token ids:
//   u32 magic "SSSP" | u16 version | u16 kind | i64 start | u32 token_count | u32 kv_capacity
//   | f32 temperature | i32 top_k | f32 top_p | u64 seed | u32 sequence | i32 tokens[token_count]
#ifndef SPARKSTACK_RUNTIME_ENGINE_STEP_PLAN_H_
#define SPARKSTACK_RUNTIME_ENGINE_STEP_PLAN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/engine/sampler.h"

namespace sparkstack {

inline constexpr uint32_t kStepPlanMagic = 0x50535353;  // "SSSP"
inline constexpr uint16_t kStepPlanVersion = 1;
inline constexpr size_t kStepPlanHeaderBytes = 48;
// Longest step rank 0 may send: the largest prompt prefill it accepts.
inline constexpr uint32_t kStepPlanMaxTokens = 1u << 20;

enum class StepKind : uint16_t {
  kPrefill = 1,  // tokens are a new sequence's prompt at positions [0, n); it gets a fresh cache
  kDecode = 2,   // one token at position `start`
  kStop = 3,     // generation is over: ranks free every sequence and leave the step loop
};

struct StepPlan {
  StepKind kind = StepKind::kStop;
  uint32_t sequence = 0;  // which in-flight sequence (each has its own cache and sampler)
  int64_t start = 0;
  uint32_t kv_capacity = 0;  // prefill: positions the new sequence's cache must hold
  SamplingParams sampling;
  std::vector<int32_t> tokens;
};

// The header (with token_count) and the token bytes are sent as two messages so that receivers
// know how much to expect before the ids arrive.
std::string EncodeStepPlanHeader(const StepPlan& plan);
std::string EncodeStepPlanTokens(const StepPlan& plan);

// Parses a header into `plan` (tokens resized to token_count, not filled). InvalidArgument on a
// wrong magic, version, kind, size or a token count above kStepPlanMaxTokens.
absl::Status DecodeStepPlanHeader(std::string_view bytes, StepPlan& plan);

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_ENGINE_STEP_PLAN_H_
