// Normalizers from tokenizer.json ("normalizer"): NFC, NFD, NFKC, NFKD, Lowercase, Strip, Replace,
// Prepend and Sequence. A normalizer rewrites one text segment (the text between added tokens).
#ifndef SPARKSTACK_RUNTIME_TOKENIZER_NORMALIZER_H_
#define SPARKSTACK_RUNTIME_TOKENIZER_NORMALIZER_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "runtime/tokenizer/json_util.h"

namespace sparkstack::tokenizer {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // Rewrites `text` (valid UTF-8) in place. Thread-safe (no mutable state).
  virtual void Normalize(std::string* text) const = 0;
};

// Builds a normalizer from its JSON object; `where` names the field for errors. A null JSON value
// gives a null pointer (no normalization).
absl::StatusOr<std::unique_ptr<Normalizer>> NormalizerFromJson(const Json& json,
                                                              std::string_view where);

}  // namespace sparkstack::tokenizer

#endif  // SPARKSTACK_RUNTIME_TOKENIZER_NORMALIZER_H_
