// `generate --prompts-file FILE.jsonl`: one request per line, {"prompt_ids": [...]} or
// {"prompt": "..."} (tokenized with the model's tokenizer), with optional per-line fields that
// override the command's flags: max_tokens, min_tokens, temperature, top_k, top_p, min_p,
// repetition_penalty, presence_penalty, frequency_penalty, seed, stop_token_ids, ignore_eos.
// Blank lines are skipped. Errors name the file, the line and the field.
#ifndef SPARKSTACK_LAUNCHER_PROMPTS_FILE_H_
#define SPARKSTACK_LAUNCHER_PROMPTS_FILE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "launcher/sampling_flags.h"
#include "runtime/engine/request.h"
#include "runtime/tokenizer/tokenizer.h"

namespace sparkstack::launcher {

// `tokenizer` may be null when every line gives prompt_ids. Line i (counting prompts from 0)
// samples with the command's seed + i unless it gives its own seed.
absl::StatusOr<std::vector<Request>> ReadPromptsFile(const std::string& path,
                                                     const tokenizer::Tokenizer* tokenizer,
                                                     const SamplingFlags& defaults);

}  // namespace sparkstack::launcher

#endif  // SPARKSTACK_LAUNCHER_PROMPTS_FILE_H_
