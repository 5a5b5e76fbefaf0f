// Turns `generate`'s prompt flags into token ids: --prompt-ids as given (repeat it for several
// sequences), --prompt TEXT through the model's tokenizer, --chat FILE.json (OpenAI-style
// messages) through its chat template.
#ifndef SPARKSTACK_LAUNCHER_PROMPT_INPUT_H_
#define SPARKSTACK_LAUNCHER_PROMPT_INPUT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/tokenizer/tokenizer.h"

namespace sparkstack::launcher {

struct PromptFlags {
  std::vector<std::string> ids;  // "1,2,3" per sequence
  std::string text;       // raw text, tokenized with the post-processor (e.g. BOS)
  std::string chat_file;  // {"messages": [...]} or a bare [...] of messages
};

struct PromptInput {
  std::vector<std::vector<int32_t>> sequences;  // one or more prompts
  // Loaded for --prompt / --chat, to turn output ids back into text; null for --prompt-ids.
  std::unique_ptr<tokenizer::Tokenizer> tokenizer;
};

// Exactly one of the flags must be set. Errors name the flag, the file and what was wrong.
absl::StatusOr<PromptInput> BuildPrompt(const std::string& model_dir, const PromptFlags& flags);

}  // namespace sparkstack::launcher

#endif  // SPARKSTACK_LAUNCHER_PROMPT_INPUT_H_
