// StreamingDecoder (declared in tokenizer.h).
//
// Method (as Hugging Face's DecodeStream): keep a window of ids whose decoded text `prefix_` has
// already been returned, plus the ids added since. Decode the whole window and return the part
// after `prefix_` unless it ends in U+FFFD (an incomplete character that later ids may complete).
// After returning text, the window becomes just the ids of that last chunk: they start and end on
// character boundaries (so byte-fallback runs are never cut), the cost per step stays bounded, and
// decoders that treat the first token specially (Metaspace, Strip) keep their context.
#include "runtime/tokenizer/tokenizer.h"

#include "runtime/core/status_macros.h"

namespace sparkstack::tokenizer {
namespace {

constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";

bool EndsWithReplacement(std::string_view text) {
  return text.size() >= kReplacementChar.size() &&
         text.substr(text.size() - kReplacementChar.size()) == kReplacementChar;
}

}  // namespace

StreamingDecoder::StreamingDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(tokenizer), skip_special_tokens_(skip_special_tokens) {}

absl::StatusOr<std::string> StreamingDecoder::Step(int32_t id) {
  ids_.push_back(id);
  auto text = tokenizer_.Decode(ids_, skip_special_tokens_);
  if (!text.ok()) {
    ids_.pop_back();
    return text.status();
  }
  if (text->size() <= prefix_.size() || EndsWithReplacement(*text) ||
      text->compare(0, prefix_.size(), prefix_) != 0) {
    return std::string();
  }
  std::string fresh = text->substr(prefix_.size());
  ids_.erase(ids_.begin(), ids_.begin() + static_cast<ptrdiff_t>(pending_start_));
  pending_start_ = ids_.size();
  SPARKSTACK_ASSIGN_OR_RETURN(prefix_, tokenizer_.Decode(ids_, skip_special_tokens_));
  return fresh;
}

absl::StatusOr<std::string> StreamingDecoder::Flush() {
  SPARKSTACK_ASSIGN_OR_RETURN(std::string text, tokenizer_.Decode(ids_, skip_special_tokens_));
  std::string rest;
  if (text.size() > prefix_.size() && text.compare(0, prefix_.size(), prefix_) == 0) {
    rest = text.substr(prefix_.size());
  }
  ids_.clear();
  pending_start_ = 0;
  prefix_.clear();
  return rest;
}

}  // namespace sparkstack::tokenizer
