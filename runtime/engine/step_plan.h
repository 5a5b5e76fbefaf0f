// StepPlan: what every rank does in one engine step, sent by rank 0 over the data plane (never
// gRPC). It carries the scheduler's delta, not the batch: sequences new to the ranks come with
// their tokens, sampling parameters and block table; continuing ones with only what changed
// (tokens sampled since, blocks appended), so a decoding sequence costs a few bytes per step.
// Every rank keeps its own copy of the batch state (BatchState) and applies the delta.
//
// Framing: a fixed 16-byte header, then `payload_bytes` of payload (two messages, so a receiver
// knows the size before the payload arrives).
//   header:  u32 magic "SSSP" | u16 version | u16 kind | u32 payload_bytes | u32 reserved (0)
//   payload: varint step_id | varint count, count x varint released id
//            | varint count, count x sequence:
//              varint id | u8 flags (1 new, 2 samples, 4 return logits) | varint num_computed
//              | varint num_scheduled | varint count, count x varint block id
//              | varint count, count x zigzag-varint token
//              | (new only) varint num_prompt_tokens | f32 temperature | zigzag top_k | f32 top_p
//                | f32 min_p | f32 repetition | f32 presence | f32 frequency | u64 seed
//                | zigzag logprobs | varint min_tokens | varint count, count x varint banned id
// Decoding treats the bytes as untrusted: every count is bounded (StepPlanLimits) before memory is
// reserved, and trailing bytes are an error.
#ifndef SPARKSTACK_RUNTIME_ENGINE_STEP_PLAN_H_
#define SPARKSTACK_RUNTIME_ENGINE_STEP_PLAN_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/backend/sampling.h"

namespace sparkstack {

inline constexpr uint32_t kStepPlanMagic = 0x50535353;  // "SSSP"
inline constexpr uint16_t kStepPlanVersion = 2;
inline constexpr size_t kStepPlanHeaderBytes = 16;

enum class StepKind : uint16_t {
  kStep = 1,       // run the step
  kKeepAlive = 2,  // the group is idle; every rank answers with a barrier (liveness)
  kStop = 3,       // the engine is shutting down: ranks free everything and return
};

struct PlannedSequence {
  uint64_t id = 0;
  bool is_new = false;  // the ranks hold no state for it: tokens are all its tokens
  bool samples = false;  // this step samples the sequence's next token
  bool return_logits = false;  // the sampler also returns this row's logits
  int64_t num_computed = 0;   // tokens whose KV is cached before the step
  int64_t num_scheduled = 0;  // tokens computed by the step
  std::vector<int32_t> block_ids;  // new: the whole table; else blocks appended
  std::vector<int32_t> tokens;     // new: every known token; else tokens appended since
  // New sequences only.
  int64_t num_prompt_tokens = 0;
  SamplingParams sampling;
  // While fewer than min_tokens outputs exist, these ids (EOS and stop ids) are never sampled.
  int64_t min_tokens = 0;
  std::vector<int32_t> banned_until_min_tokens;

  bool operator==(const PlannedSequence&) const = default;
};

struct StepPlan {
  StepKind kind = StepKind::kStep;
  uint64_t step_id = 0;
  std::vector<uint64_t> released;  // forget these first (finished, aborted, preempted)
  std::vector<PlannedSequence> sequences;  // batch order: one-token sequences first

  bool operator==(const StepPlan&) const = default;
};

// Bounds a decoder enforces, from the engine's configuration.
struct StepPlanLimits {
  int64_t max_sequences = 0;  // per step (max_num_seqs)
  int64_t max_tokens = 0;     // tokens of one sequence (max_model_len)
  int64_t num_blocks = 0;     // block ids are in [0, num_blocks)
  uint32_t max_payload_bytes = 0;
};

// The payload limit that fits any plan within `limits` (for the header check).
uint32_t MaxStepPlanPayload(const StepPlanLimits& limits);

std::string EncodeStepPlanPayload(const StepPlan& plan);
std::string EncodeStepPlanHeader(StepKind kind, size_t payload_bytes);

// Header -> kind and payload size. InvalidArgument on a wrong magic, version, kind or a payload
// above limits.max_payload_bytes.
absl::Status DecodeStepPlanHeader(std::string_view header, const StepPlanLimits& limits,
                                  StepKind& kind, uint32_t& payload_bytes);
// InvalidArgument naming the field for anything out of bounds or malformed.
absl::StatusOr<StepPlan> DecodeStepPlanPayload(StepKind kind, std::string_view payload,
                                               const StepPlanLimits& limits);

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_ENGINE_STEP_PLAN_H_
