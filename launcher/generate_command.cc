// `sparkstack generate`: an offline client of the engine. Every prompt is submitted at once and
// runs through continuous batching together; outputs print in input order.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "launcher/command_registry.h"
#include "launcher/engine_launch.h"
#include "launcher/output_collector.h"
#include "launcher/prompt_input.h"
#include "launcher/prompts_file.h"
#include "launcher/sampling_flags.h"
#include "nlohmann/json.hpp"
#include "runtime/core/status_macros.h"

namespace sparkstack::launcher {
namespace {

struct GenerateFlags {
  std::string model;
  PromptFlags prompt;
  std::string prompts_file;
  SamplingFlags sampling;
  EngineFlags engine;
  bool json = false;
  bool no_logits = false;
};

// The requests and, when prompts were text, the tokenizer that turns outputs back into text.
struct Inputs {
  std::vector<Request> requests;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer;
};

absl::StatusOr<Inputs> ReadInputs(const GenerateFlags& f) {
  Inputs inputs;
  if (!f.prompts_file.empty()) {
    if (!f.prompt.ids.empty() || !f.prompt.text.empty() || !f.prompt.chat_file.empty()) {
      return absl::InvalidArgumentError(
          "--prompts-file replaces --prompt-ids, --prompt and --chat: give one of them");
    }
    auto tokenizer = tokenizer::Tokenizer::Load(f.model);
    if (tokenizer.ok()) {
      inputs.tokenizer = *std::move(tokenizer);
    } else if (!absl::IsNotFound(tokenizer.status())) {
      return tokenizer.status();
    }
    SPARKSTACK_ASSIGN_OR_RETURN(
        inputs.requests, ReadPromptsFile(f.prompts_file, inputs.tokenizer.get(), f.sampling));
  } else {
    SPARKSTACK_ASSIGN_OR_RETURN(PromptInput prompt, BuildPrompt(f.model, f.prompt));
    for (size_t i = 0; i < prompt.sequences.size(); ++i) {
      inputs.requests.push_back(MakeRequest(f.sampling, std::move(prompt.sequences[i]), i));
    }
    inputs.tokenizer = std::move(prompt.tokenizer);
  }
  for (Request& r : inputs.requests) {
    r.detokenize = inputs.tokenizer != nullptr;
    r.return_first_logits = !f.no_logits;
  }
  return inputs;
}

absl::Status PrintJson(const std::vector<Request>& requests,
                       const std::vector<CollectedOutput>& outputs, bool with_text,
                       bool with_logits) {
  for (size_t i = 0; i < outputs.size(); ++i) {
    nlohmann::json line = {{"prompt_ids", requests[i].prompt_ids},
                           {"output_ids", outputs[i].token_ids},
                           {"finish_reason", std::string(FinishReasonName(outputs[i].finish_reason))}};
    if (with_logits) line["last_logits"] = outputs[i].first_logits;
    if (with_text) line["text"] = outputs[i].text;
    std::cout << line.dump() << std::endl;
  }
  return absl::OkStatus();
}

// Refuses bad requests before any rank is started or waited for.
absl::Status CheckRequests(const GenerateFlags& f, const Inputs& inputs) {
  SPARKSTACK_ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(f.model));
  EngineOptions options;
  options.model_dir = f.model;
  options.max_model_len =
      f.engine.max_model_len > 0 ? f.engine.max_model_len : config.max_position_embeddings;
  for (size_t i = 0; i < inputs.requests.size(); ++i) {
    absl::Status status =
        ValidateRequest(inputs.requests[i], config, options, inputs.tokenizer != nullptr);
    if (!status.ok()) {
      return absl::Status(status.code(), absl::StrCat("prompt ", i, ": ", status.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status Run(const GenerateFlags& f) {
  SPARKSTACK_ASSIGN_OR_RETURN(Inputs inputs, ReadInputs(f));
  SPARKSTACK_RETURN_IF_ERROR(CheckRequests(f, inputs));
  SPARKSTACK_ASSIGN_OR_RETURN(std::unique_ptr<LaunchedEngine> launched,
                              LaunchedEngine::Start(f.model, f.engine));
  Engine& engine = launched->engine();
  OutputCollector collector(inputs.requests.size());
  for (size_t i = 0; i < inputs.requests.size(); ++i) {
    auto added = engine.AddRequest(inputs.requests[i], collector.CallbackFor(i));
    if (!added.ok()) {
      return absl::Status(added.status().code(),
                          absl::StrCat("prompt ", i, ": ", added.status().message()));
    }
  }
  const bool with_text = inputs.tokenizer != nullptr;
  if (!f.json && with_text) {
    // Text streams as it is generated, one sequence after another in input order.
    for (size_t i = 0; i < inputs.requests.size(); ++i) {
      size_t printed = 0;
      bool finished = false;
      while (!finished) {
        const std::string text = collector.WaitForText(i, printed, finished);
        printed += text.size();
        std::cout << text << std::flush;
      }
      std::cout << std::endl;
    }
  }
  collector.WaitAll();
  const std::vector<CollectedOutput>& outputs = collector.outputs();
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (outputs[i].finish_reason == FinishReason::kError) {
      return launched->Explain(outputs[i].error);
    }
  }
  SPARKSTACK_RETURN_IF_ERROR(launched->Shutdown());
  if (f.json) return PrintJson(inputs.requests, outputs, with_text, !f.no_logits);
  if (!with_text) {
    for (const CollectedOutput& out : outputs) {
      std::cout << nlohmann::json(out.token_ids).dump() << std::endl;
    }
  }
  return absl::OkStatus();
}

void SetupGenerateCommand(CLI::App& root) {
  auto flags = std::make_shared<GenerateFlags>();
  CLI::App* cmd = root.add_subcommand("generate", "Generate tokens from prompts (offline)");
  cmd->add_option("--model", flags->model, "model directory (Hugging Face layout)")->required();
  cmd->add_option("--prompt-ids", flags->prompt.ids,
                  "comma-separated prompt token ids; repeat for several sequences (one output "
                  "line each, batched together)")
      ->take_all()
      ->expected(1);
  cmd->add_option("--prompt", flags->prompt.text, "prompt text (tokenized with tokenizer.json)");
  cmd->add_option("--chat", flags->prompt.chat_file,
                  "JSON file of OpenAI-style messages, rendered with the chat template");
  cmd->add_option("--prompts-file", flags->prompts_file,
                  "JSONL file, one {\"prompt_ids\": [...]} or {\"prompt\": \"...\"} per line, "
                  "with optional per-line sampling fields");
  AddSamplingFlags(*cmd, flags->sampling);
  AddEngineFlags(*cmd, flags->engine);
  cmd->add_flag("--json", flags->json,
                "print {\"prompt_ids\", \"output_ids\", \"finish_reason\", \"last_logits\"} per "
                "sequence, one JSON object per line, in input order");
  cmd->add_flag("--no-logits", flags->no_logits, "leave last_logits out of --json");
  cmd->callback([flags] { FinishCommand(Run(*flags)); });
}

}  // namespace

SPARKSTACK_REGISTER_COMMAND(SetupGenerateCommand);

}  // namespace sparkstack::launcher
