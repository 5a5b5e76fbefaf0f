// StepResult: what the sampling rank (tp rank 0 of the last pipeline stage) sends back to rank 0
// after a step: the sampled token of every sampling sequence, with logprobs when asked, and the
// full logits rows that were asked for (a request's first token with return_first_logits).
//
// Framing: u32 payload_bytes, then the payload:
//   varint step_id | varint count, count x (varint id | zigzag token | f32 logprob
//   | varint num_top, num_top x (zigzag token | f32 logprob))
//   | varint count, count x (varint id | varint vocab | vocab x f32)
// The payload is checked like the step plan (untrusted bytes, bounded counts).
#ifndef SPARKSTACK_RUNTIME_ENGINE_STEP_RESULT_H_
#define SPARKSTACK_RUNTIME_ENGINE_STEP_RESULT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/backend/sampling.h"

namespace sparkstack {

struct SequenceSample {
  uint64_t id = 0;
  SampledToken sample;
};

struct SequenceLogits {
  uint64_t id = 0;
  std::vector<float> logits;
};

struct StepResult {
  uint64_t step_id = 0;
  std::vector<SequenceSample> samples;
  std::vector<SequenceLogits> logits;
};

std::string EncodeStepResult(const StepResult& result);
// InvalidArgument for malformed bytes or counts above `max_rows` samples / logits rows of
// `vocab_size` entries.
absl::StatusOr<StepResult> DecodeStepResult(std::string_view payload, int64_t max_rows,
                                            int64_t vocab_size);

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_ENGINE_STEP_RESULT_H_
