// Hugging Face-compatible tokenizer: loads tokenizer.json (+ tokenizer_config.json and, when
// present, generation_config.json) from a model directory and encodes/decodes exactly as the
// Hugging Face `tokenizers` library does for BPE models (byte-level: Llama 3, Qwen2/3,
// DeepSeek-V3; SentencePiece-style with byte fallback: Llama 2, Mistral).
//
// Pipeline of Encode: added tokens are cut out of the raw text (non-normalized ones first, then
// normalized ones after normalization), each remaining segment is normalized, pre-tokenized into
// words and each word BPE-encoded; the post-processor then adds BOS/EOS when asked.
//
// Thread safety: a loaded Tokenizer is immutable apart from an internal, locked word cache; all
// const methods may be called from any thread.
#ifndef SPARKSTACK_RUNTIME_TOKENIZER_TOKENIZER_H_
#define SPARKSTACK_RUNTIME_TOKENIZER_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "nlohmann/json_fwd.hpp"
#include "runtime/tokenizer/added_tokens.h"

namespace sparkstack {
class ChatTemplate;
}

namespace sparkstack::tokenizer {

class BpeModel;
class Normalizer;
class PreTokenizer;
class Decoder;

class Tokenizer {
 public:
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Loads `model_dir`/tokenizer.json (required) and tokenizer_config.json (optional). Errors:
  // NotFound when tokenizer.json is missing; InvalidArgument naming the file and field for
  // malformed content; Unimplemented for components this library does not support.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Load(const std::string& model_dir);

  // Same from in-memory contents (`config_json` may be empty). `name` prefixes error messages.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromJson(std::string_view tokenizer_json,
                                                             std::string_view config_json,
                                                             std::string_view name =
                                                                 "tokenizer.json");

  // Encodes UTF-8 `text`. `add_special_tokens` applies the post-processor (e.g. BOS). Added
  // tokens written in the text are recognized; with `parse_special_tokens` false, special ones
  // are encoded as plain text instead (Hugging Face's split_special_tokens; use it for untrusted
  // user text). Invalid UTF-8 gives InvalidArgument with the byte offset.
  absl::StatusOr<std::vector<int32_t>> Encode(std::string_view text, bool add_special_tokens,
                                              bool parse_special_tokens = true) const;

  // Decodes ids to text (ill-formed UTF-8 from partial byte tokens becomes U+FFFD). An id outside
  // the vocabulary gives InvalidArgument.
  absl::StatusOr<std::string> Decode(std::span<const int32_t> ids, bool skip_special_tokens) const;

  // Number of ids (model vocabulary plus added tokens): one more than the largest id.
  int32_t vocab_size() const { return vocab_size_; }
  std::optional<int32_t> bos_id() const { return bos_id_; }
  // End-of-sequence ids: tokenizer_config's eos_token plus generation_config's eos_token_id.
  const std::vector<int32_t>& eos_ids() const { return eos_ids_; }
  const std::string& bos_token() const { return bos_token_; }
  const std::string& eos_token() const { return eos_token_; }
  // tokenizer_config.json's chat_template (the "default" one when there are several); may be empty.
  const std::string& chat_template() const { return chat_template_; }

  // Renders the chat template (runtime/tokenizer/jinja) for OpenAI-style `messages` with
  // `add_generation_prompt`, bos_token/eos_token from tokenizer_config.json, then every key of
  // `extra` (an object or null: tools, enable_thinking, ...). Encode the result with
  // add_special_tokens=false, as transformers' apply_chat_template does. Errors:
  // FailedPrecondition when the model has no chat template; InvalidArgument naming line and
  // column when the template does not parse, raises, or fails to render.
  absl::StatusOr<std::string> ApplyChatTemplate(const nlohmann::ordered_json& messages,
                                                bool add_generation_prompt,
                                                const nlohmann::ordered_json& extra) const;

  std::optional<int32_t> TokenToId(std::string_view token) const;
  // Spelling of one id as stored in tokenizer.json (not decoded); nullopt if unknown.
  std::optional<std::string> IdToToken(int32_t id) const;
  bool IsSpecial(int32_t id) const;

 private:
  Tokenizer();
  void EncodeSegment(std::string_view text, bool at_origin, bool parse_special,
                     std::vector<int32_t>* ids) const;
  void EncodeNormalized(std::string text, bool at_origin, std::vector<int32_t>* ids) const;

  std::unique_ptr<BpeModel> model_;
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<Decoder> decoder_;
  AddedTokenMatcher raw_added_;         // added tokens with normalized=false
  AddedTokenMatcher normalized_added_;  // added tokens with normalized=true
  absl::flat_hash_map<int32_t, AddedToken> added_by_id_;
  absl::flat_hash_map<std::string, int32_t> added_by_content_;
  std::vector<int32_t> prefix_ids_;  // post-processor, single sequence
  std::vector<int32_t> suffix_ids_;
  int32_t vocab_size_ = 0;
  std::optional<int32_t> bos_id_;
  std::vector<int32_t> eos_ids_;
  std::string bos_token_, eos_token_;
  std::string chat_template_;
  // Parsed once at load; a template that does not parse only fails ApplyChatTemplate.
  std::shared_ptr<const ChatTemplate> parsed_template_;
  absl::Status template_status_;
};

// Incremental detokenizer for generation: feed ids one at a time and get the text they add.
// Never returns half a UTF-8 character: bytes of an incomplete character are held back until the
// character is complete (or become U+FFFD once it can no longer be completed). Handles decoders
// that treat the first token specially (Metaspace/Strip) by decoding a short window of ids.
// Not thread-safe; one per sequence. The Tokenizer must outlive it.
class StreamingDecoder {
 public:
  StreamingDecoder(const Tokenizer& tokenizer, bool skip_special_tokens);

  // Adds one id; returns the newly completed text (possibly empty).
  absl::StatusOr<std::string> Step(int32_t id);
  // Returns whatever is held back (incomplete characters become U+FFFD) and resets.
  absl::StatusOr<std::string> Flush();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_tokens_;
  // Window of recent ids: ids_[0, pending_start_) decode to prefix_ (already returned), the rest
  // were added since.
  std::vector<int32_t> ids_;
  size_t pending_start_ = 0;
  std::string prefix_;
};

}  // namespace sparkstack::tokenizer

#endif  // SPARKSTACK_RUNTIME_TOKENIZER_TOKENIZER_H_
