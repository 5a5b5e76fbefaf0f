// Added tokens (tokenizer.json "added_tokens"): matched in the text before the model runs, with
// Hugging Face's rules: leftmost-longest match, then the single_word, lstrip and rstrip flags.
#ifndef SPARKSTACK_RUNTIME_TOKENIZER_ADDED_TOKENS_H_
#define SPARKSTACK_RUNTIME_TOKENIZER_ADDED_TOKENS_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sparkstack::tokenizer {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool special = false;
};

// A piece of text: either an added token (token_id >= 0) or plain text to tokenize.
struct TextSegment {
  int32_t token_id;
  uint32_t begin;
  uint32_t end;
};

// Finds added tokens in text. Immutable after Add/Finish, so thread-safe to use.
class AddedTokenMatcher {
 public:
  // `pattern` is what to look for (the content, normalized for normalized tokens).
  void Add(std::string_view pattern, const AddedToken& token);
  bool empty() const { return tokens_.empty(); }

  // Cuts `text` into segments covering it in order (empty text gives no segments). With
  // `skip_special`, matches of special tokens are left as plain text (and, as in Hugging Face,
  // the text they cover is not searched again for other tokens).
  void Split(std::string_view text, bool skip_special, std::vector<TextSegment>* out) const;

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> children;  // sorted by byte
    int32_t token = -1;                                  // index into tokens_
  };
  int32_t Child(int32_t node, uint8_t byte) const;

  std::vector<Node> nodes_{Node{}};
  std::vector<AddedToken> tokens_;
  std::array<bool, 256> first_byte_{};
};

}  // namespace sparkstack::tokenizer

#endif  // SPARKSTACK_RUNTIME_TOKENIZER_ADDED_TOKENS_H_
