// Pre-tokenizers from tokenizer.json ("pre_tokenizer"): Split, ByteLevel, Digits, Metaspace and
// Sequence. They cut a normalized text segment into the words that the model encodes one by one.
#ifndef SPARKSTACK_RUNTIME_TOKENIZER_PRE_TOKENIZER_H_
#define SPARKSTACK_RUNTIME_TOKENIZER_PRE_TOKENIZER_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/tokenizer/json_util.h"
#include "runtime/tokenizer/split_regex.h"

namespace sparkstack::tokenizer {

// Words of one text segment: byte ranges into `text`, in order, never empty.
struct PieceList {
  std::string text;
  std::vector<ByteRange> pieces;
  // Whether the segment starts at offset 0 of the caller's input (Metaspace prepend_scheme
  // "first" only prepends there).
  bool at_origin = false;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Splits (and for ByteLevel/Metaspace possibly rewrites) the pieces. Thread-safe.
  virtual void PreTokenize(PieceList* list) const = 0;
};

struct PreTokenizerInfo {
  // A ByteLevel pre-tokenizer is present: the model's vocabulary is spelled in the GPT-2 byte map.
  bool byte_level = false;
};

// Builds a pre-tokenizer from its JSON object; null JSON gives a null pointer (the whole segment
// is one word). `where` names the field for errors.
absl::StatusOr<std::unique_ptr<PreTokenizer>> PreTokenizerFromJson(const Json& json,
                                                                  std::string_view where,
                                                                  PreTokenizerInfo* info);

// The GPT-2 pattern that ByteLevel(use_regex=true) splits with.
inline constexpr std::string_view kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

}  // namespace sparkstack::tokenizer

#endif  // SPARKSTACK_RUNTIME_TOKENIZER_PRE_TOKENIZER_H_
