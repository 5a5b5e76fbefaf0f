// What a client gives the engine (Request) and what it streams back (RequestOutput). Frontends
// (CLI, OpenAI HTTP, gRPC) map their protocol onto these plain structs; the engine never sees a
// protocol type.
#ifndef SPARKSTACK_RUNTIME_ENGINE_REQUEST_H_
#define SPARKSTACK_RUNTIME_ENGINE_REQUEST_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "runtime/backend/sampling.h"

namespace sparkstack {

using RequestId = uint64_t;

// When a request's generation ends.
struct StoppingParams {
  int64_t max_tokens = 16;  // output tokens at most (>= 0; 0 only prefills)
  int64_t min_tokens = 0;   // EOS and stop tokens/strings are ignored before this many
  std::vector<int32_t> stop_token_ids;   // ends after emitting one (kept in the output)
  std::vector<std::string> stop_strings;  // ends when the text contains one (cut from the text)
  bool ignore_eos = false;                // keep going past the model's EOS ids
  bool include_stop_string = false;       // keep the matched stop string in the text
};

struct Request {
  std::vector<int32_t> prompt_ids;  // non-empty, each in [0, vocab_size)
  SamplingParams sampling;
  StoppingParams stopping;
  // Detokenize the output (text deltas, stop strings). Needs a tokenizer in the engine.
  bool detokenize = true;
  bool skip_special_tokens = true;
  // Return the logits that chose the first output token (f32 [vocab]) in the first output.
  bool return_first_logits = false;
};

enum class FinishReason : uint8_t {
  kNone,        // still running
  kLength,      // max_tokens reached (or the model's context)
  kEos,         // the model's end-of-sequence token
  kStopToken,   // one of stop_token_ids
  kStopString,  // one of stop_strings
  kAbort,       // Abort() or the client went away
  kError,       // the engine failed the request (RequestOutput::error says why)
};
std::string_view FinishReasonName(FinishReason reason);  // "length", "eos", "stop", ...

// One chunk of a request's output stream. The last chunk has finished() true.
struct RequestOutput {
  RequestId id = 0;
  std::vector<int32_t> token_ids;      // new tokens since the previous chunk
  std::string text;                    // new text since the previous chunk (when detokenizing)
  std::vector<SampledToken> logprobs;  // per new token, when sampling.logprobs >= 0
  std::vector<float> first_logits;     // with return_first_logits, in the first chunk
  FinishReason finish_reason = FinishReason::kNone;
  std::string stop_reason;  // the matched stop string, or the stop token id as text
  absl::Status error;       // kError: what went wrong

  // Running totals.
  int64_t prompt_tokens = 0;
  int64_t cached_prompt_tokens = 0;  // prompt tokens served from the prefix cache
  int64_t output_tokens = 0;

  bool finished() const { return finish_reason != FinishReason::kNone; }
};

// Timestamps of a request, for metrics (TTFT, inter-token latency, end-to-end).
struct RequestTimings {
  std::chrono::steady_clock::time_point arrival;
  std::chrono::steady_clock::time_point first_scheduled;
  std::chrono::steady_clock::time_point first_token;
  std::chrono::steady_clock::time_point finished;
};

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_ENGINE_REQUEST_H_
