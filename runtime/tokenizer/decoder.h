// Decoders from tokenizer.json ("decoder"): ByteLevel, Replace, ByteFallback, Fuse, Strip,
// Metaspace and Sequence. Like Hugging Face's decode_chain they rewrite the list of token
// spellings; the decoded text is the concatenation of the result.
#ifndef SPARKSTACK_RUNTIME_TOKENIZER_DECODER_H_
#define SPARKSTACK_RUNTIME_TOKENIZER_DECODER_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/tokenizer/json_util.h"

namespace sparkstack::tokenizer {

class Decoder {
 public:
  virtual ~Decoder() = default;
  // Rewrites `tokens` in place. Thread-safe.
  virtual void DecodeChain(std::vector<std::string>* tokens) const = 0;
};

// Null JSON gives a null pointer (tokens are then joined with spaces, as in Hugging Face).
absl::StatusOr<std::unique_ptr<Decoder>> DecoderFromJson(const Json& json, std::string_view where);

}  // namespace sparkstack::tokenizer

#endif  // SPARKSTACK_RUNTIME_TOKENIZER_DECODER_H_
