// When a request's generation ends, and which of its text a client may see now (StoppingParams in
// runtime/engine/request.h). One StopChecker per request, fed each new token with the text it
// added (StreamingDecoder::Step's complete UTF-8 delta, or nothing when not detokenizing).
//
// Rules, checked in this order for the n-th output token (n counts from 1):
//  * The first min_tokens tokens never end generation: EOS, stop token ids and stop strings that
//    they complete are ignored. (The sampler should not draw EOS or stop ids then at all:
//    SamplingRow::banned_tokens.)
//  * A token in stop_token_ids ends it (kStopToken, stop_reason = the id in decimal); else, an EOS
//    id ends it unless ignore_eos (kEos). Either token stays in the output ids; its text is
//    dropped unless include_stop_string (as vLLM does).
//  * A stop string ends it when the text contains one that ends inside this token's text. Stop
//    strings are matched on the text, so they are found across token boundaries and inside
//    multi-byte characters split over tokens. When several end in the same token, the one that
//    ends first wins (ties: the longest), which is what matching one byte at a time would find:
//    the result does not depend on how the text was cut into tokens, and the text before the cut
//    contains no stop string. The text is cut before the stop string (kStopString, stop_reason =
//    the stop string), or after it with include_stop_string; text after it is dropped.
//  * The max_tokens-th token ends it (kLength).
// Text is released as soon as it cannot become part of a stop string: the longest suffix of the
// unreleased text that is a proper prefix of some stop string is held back, so a client never sees
// text that is cut later. Releases concatenate to the final text.
//
// Not thread-safe (the engine core thread owns it).
#ifndef SPARKSTACK_RUNTIME_ENGINE_STOP_CHECKER_H_
#define SPARKSTACK_RUNTIME_ENGINE_STOP_CHECKER_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "runtime/engine/request.h"

namespace sparkstack {

// InvalidArgument naming the field: max_tokens >= 0, min_tokens in [0, max_tokens], stop token
// ids >= 0, stop strings non-empty.
absl::Status ValidateStoppingParams(const StoppingParams& params);

struct StopDecision {
  std::string text;  // text the client may see now, after that of earlier decisions
  FinishReason finish_reason = FinishReason::kNone;
  std::string stop_reason;  // the matched stop string, or the stop token id in decimal

  bool finished() const { return finish_reason != FinishReason::kNone; }
};

class StopChecker {
 public:
  // `params` must be valid (ValidateStoppingParams); `eos_ids` are the model's end-of-sequence ids
  // (Tokenizer::eos_ids(), or generation_config's).
  StopChecker(const StoppingParams& params, std::span<const int32_t> eos_ids);

  // Feeds the next output token and the text it added. After a finished decision, further calls
  // return that decision's reason again with no text.
  StopDecision Step(int32_t token, std::string_view text);

  // The held-back text, released when the request ends for a reason outside the checker (abort,
  // the model's context length). Empty after a finished decision, which released everything.
  std::string Flush();

  int64_t num_tokens() const { return num_tokens_; }
  bool finished() const { return finish_reason_ != FinishReason::kNone; }

 private:
  // Finishes with `reason`, releasing text_[0, end).
  StopDecision Finish(FinishReason reason, size_t end, std::string stop_reason);
  // Length of the longest suffix of text_ that is a proper prefix of a stop string.
  size_t HeldBack() const;

  StoppingParams params_;
  std::vector<int32_t> eos_ids_;
  int64_t num_tokens_ = 0;
  FinishReason finish_reason_ = FinishReason::kNone;
  std::string stop_reason_;
  std::string text_;  // unreleased text: a held-back suffix plus the newest token's text
};

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_ENGINE_STOP_CHECKER_H_
