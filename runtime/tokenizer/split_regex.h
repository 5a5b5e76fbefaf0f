// Regex matching with Oniguruma semantics (what Hugging Face tokenizers uses) on top of RE2.
//
// Two differences matter for real pre-tokenizer patterns:
//  - Oniguruma's \s, \d, \w are Unicode-aware; RE2's are ASCII. The pattern is rewritten so they
//    mean Oniguruma's Unicode classes (\s = White_Space, \d = Nd, \w ~ Alphabetic|M|Nd|Pc), and \p{..}
//    general categories are spelled out from Unicode 16 tables (unicode_tables.h), the version
//    Hugging Face's Oniguruma uses. Script properties (\p{Han}) keep RE2's own, older tables.
//  - RE2 has no look-around. Every known tokenizer pattern (GPT-2, Llama 3, Qwen2/3, DeepSeek-V3)
//    uses exactly one: a top-level alternative `\s+(?!\S)`, usually followed by `|\s+`. Greedy
//    `\s+` takes a maximal whitespace run; the look-ahead then gives back the last character when
//    the run is followed by a non-space. We compile the pattern with that alternative as plain
//    `\s+`, and fix the rare matches it affects: an all-whitespace match followed by a non-space
//    that the alternatives before it (compiled separately, anchored) do not produce. Any other
//    look-around is rejected with InvalidArgument.
#ifndef SPARKSTACK_RUNTIME_TOKENIZER_SPLIT_REGEX_H_
#define SPARKSTACK_RUNTIME_TOKENIZER_SPLIT_REGEX_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "re2/re2.h"

namespace sparkstack::tokenizer {

struct ByteRange {
  uint32_t begin;
  uint32_t end;
};

class SplitRegex {
 public:
  // `pattern` is an Oniguruma (Hugging Face) pattern. Errors name the pattern.
  static absl::StatusOr<std::unique_ptr<SplitRegex>> Compile(std::string_view pattern);

  // Appends the non-overlapping matches in `text` (leftmost first, as Oniguruma's find_iter),
  // offsets relative to `text` plus `base`. Empty matches are skipped. `text` must be valid UTF-8.
  void FindAll(std::string_view text, uint32_t base, std::vector<ByteRange>* out) const;

 private:
  SplitRegex() = default;

  std::unique_ptr<RE2> full_;
  // Alternatives before the look-ahead one, anchored; null when the pattern has no look-ahead.
  std::unique_ptr<RE2> before_lookahead_;
  bool has_lookahead_ = false;
  // True when `\s+(?!\S)` is followed by `|\s+`, so a single space before a non-space still matches.
  bool lookahead_has_fallback_ = false;
};

// Rewrites an Oniguruma pattern for RE2 (Unicode \s \d \w). Exposed for tests.
absl::StatusOr<std::string> TranslateOnigPattern(std::string_view pattern);

}  // namespace sparkstack::tokenizer

#endif  // SPARKSTACK_RUNTIME_TOKENIZER_SPLIT_REGEX_H_
