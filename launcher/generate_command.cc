// `sparkstack generate`: load a model and generate from a prompt on this machine.
#include <iostream>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "launcher/command_registry.h"
#include "launcher/local_ranks.h"
#include "launcher/prompt_input.h"
#include "launcher/rendezvous_address.h"
#include "nlohmann/json.hpp"
#include "runtime/backend/cpu/cpu_backend.h"
#include "runtime/core/status_macros.h"
#include "runtime/engine/cluster.h"
#include "runtime/engine/generation.h"
#include "runtime/model/model.h"

namespace sparkstack::launcher {
namespace {

struct GenerateFlags {
  std::string model;
  PromptFlags prompt;
  int64_t max_tokens = 16;
  float temperature = 0.0f;
  int32_t top_k = 0;
  float top_p = 1.0f;
  uint64_t seed = 0;
  bool json = false;
  bool ignore_eos = false;
  int threads = 1;
  int tp = 1;
  int pp = 1;
  bool local_ranks = false;
  std::string rendezvous = "127.0.0.1:29500";
  int timeout_s = 60;
};

// Rank 0 of a tp x pp cluster: with --local-ranks it starts the other ranks itself on loopback,
// otherwise it waits at --rendezvous for `sparkstack worker` processes started elsewhere.
absl::StatusOr<std::vector<GenerationResult>> GenerateOnCluster(
    const GenerateFlags& f, std::span<const std::vector<int32_t>> prompts,
    const GenerationOptions& options) {
  const ClusterJob job{.model_dir = f.model, .plan = {.tp = f.tp, .pp = f.pp}, .threads = f.threads};
  SPARKSTACK_RETURN_IF_ERROR(job.plan.Validate());
  const int world = job.plan.world_size();
  SPARKSTACK_ASSIGN_OR_RETURN(RendezvousOptions rendezvous,
                              ParseRendezvous(f.rendezvous, 0, world, f.timeout_s));
  std::optional<RendezvousListener> listener;
  std::vector<pid_t> workers;
  if (f.local_ranks) {
    SPARKSTACK_ASSIGN_OR_RETURN(listener, RendezvousListener::Bind("127.0.0.1", 0));
    rendezvous.host = "127.0.0.1";
    rendezvous.port = listener->port();
    SPARKSTACK_ASSIGN_OR_RETURN(workers, SpawnLocalWorkers(world, listener->port()));
  }
  auto run = [&]() -> absl::StatusOr<std::vector<GenerationResult>> {
    SPARKSTACK_ASSIGN_OR_RETURN(auto rank0, ClusterRank::Join(rendezvous, &job,
                                                              listener ? &*listener : nullptr));
    auto result = rank0->Generate(prompts, options);
    SPARKSTACK_RETURN_IF_ERROR(rank0->Stop());
    return result;
  };
  auto result = run();
  if (!result.ok()) {
    KillWorkers(workers);
    return result;
  }
  SPARKSTACK_RETURN_IF_ERROR(WaitForWorkers(workers, std::chrono::seconds(f.timeout_s)));
  return result;
}

absl::Status Run(const GenerateFlags& f) {
  SPARKSTACK_ASSIGN_OR_RETURN(PromptInput input, BuildPrompt(f.model, f.prompt));
  GenerationOptions options;
  options.max_tokens = f.max_tokens;
  options.sampling = {.temperature = f.temperature, .top_k = f.top_k, .top_p = f.top_p,
                      .seed = f.seed};
  options.stop_at_eos = !f.ignore_eos;
  std::vector<GenerationResult> results;
  if (f.tp * f.pp > 1 || f.local_ranks) {
    SPARKSTACK_ASSIGN_OR_RETURN(results, GenerateOnCluster(f, input.sequences, options));
  } else {
    auto backend = MakeCpuBackend({.threads = f.threads});
    SPARKSTACK_ASSIGN_OR_RETURN(auto model, LoadModel(f.model, *backend));
    for (size_t s = 0; s < input.sequences.size(); ++s) {
      GenerationOptions sequence_options = options;
      sequence_options.sampling.seed += s;  // as the cluster seeds its sequences
      SPARKSTACK_ASSIGN_OR_RETURN(GenerationResult result,
                                  Generate(*model, input.sequences[s], sequence_options));
      results.push_back(std::move(result));
    }
  }
  // One line per sequence, in the order of the prompts.
  for (size_t s = 0; s < results.size(); ++s) {
    const GenerationResult& result = results[s];
    std::string text;
    if (input.tokenizer) {
      SPARKSTACK_ASSIGN_OR_RETURN(text, input.tokenizer->Decode(result.output_ids,
                                                                /*skip_special_tokens=*/true));
    }
    if (f.json) {
      nlohmann::json out = {{"prompt_ids", input.sequences[s]},
                            {"output_ids", result.output_ids},
                            {"last_logits", result.last_logits}};
      if (input.tokenizer) out["text"] = text;
      std::cout << out.dump() << std::endl;
    } else if (input.tokenizer) {
      std::cout << text << std::endl;
    } else {
      std::cout << nlohmann::json(result.output_ids).dump() << std::endl;
    }
  }
  return absl::OkStatus();
}

void SetupGenerateCommand(CLI::App& root) {
  auto flags = std::make_shared<GenerateFlags>();
  CLI::App* cmd = root.add_subcommand("generate", "Generate tokens from a prompt");
  cmd->add_option("--model", flags->model, "model directory (Hugging Face layout)")->required();
  cmd->add_option("--prompt-ids", flags->prompt.ids,
                  "comma-separated prompt token ids; repeat for several sequences (one output "
                  "line each, in flight together on a cluster)")
      ->take_all()
      ->expected(1);
  cmd->add_option("--prompt", flags->prompt.text, "prompt text (tokenized with tokenizer.json)");
  cmd->add_option("--chat", flags->prompt.chat_file,
                  "JSON file of OpenAI-style messages, rendered with the chat template");
  cmd->add_option("--max-tokens", flags->max_tokens, "tokens to generate")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--temperature", flags->temperature, "0 = greedy")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--top-k", flags->top_k, "0 = no limit")->check(CLI::NonNegativeNumber);
  cmd->add_option("--top-p", flags->top_p, "nucleus mass in (0, 1]");
  cmd->add_option("--seed", flags->seed, "sampling seed");
  cmd->add_option("--threads", flags->threads, "CPU threads for linear layers")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--tp", flags->tp, "tensor-parallel ranks")->check(CLI::PositiveNumber);
  cmd->add_option("--pp", flags->pp, "pipeline-parallel stages")->check(CLI::PositiveNumber);
  cmd->add_flag("--local-ranks", flags->local_ranks,
                "start the tp x pp ranks as local processes on loopback");
  cmd->add_option("--rendezvous", flags->rendezvous,
                  "HOST:PORT where rank 0 waits for `sparkstack worker` ranks (without --local-ranks)");
  cmd->add_option("--timeout", flags->timeout_s, "seconds to wait for the other ranks");
  cmd->add_flag("--ignore-eos", flags->ignore_eos, "keep generating past end-of-sequence tokens");
  cmd->add_flag("--json", flags->json,
                "print {\"prompt_ids\", \"output_ids\", \"last_logits\"} as one JSON object");
  cmd->callback([flags] { FinishCommand(Run(*flags)); });
}

}  // namespace

SPARKSTACK_REGISTER_COMMAND(SetupGenerateCommand);

}  // namespace sparkstack::launcher
