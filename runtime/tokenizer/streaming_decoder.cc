// StreamingDecoder (declared in tokenizer.h).
//
// Method: keep a short window of ids whose decoded text `prefix_` has already been emitted; decode
// the window plus the new id, and emit the part after `prefix_` unless it ends in U+FFFD (an
// incomplete character that later ids may complete). After each emission the window shrinks to
// the last id, which keeps the cost per step constant and gives decoders that treat the first
// token specially (Metaspace, Strip) the context they need.
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
  // Slide the window: keep only the newest id as context for the next step.
  ids_.erase(ids_.begin(), ids_.end() - 1);
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
  prefix_.clear();
  prefix_count_ = 0;
  return rest;
}

}  // namespace sparkstack::tokenizer
