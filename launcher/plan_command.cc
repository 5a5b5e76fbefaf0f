// `sparkstack plan --model DIR --nodes N`: before anything is loaded, every layout of the model on
// exactly N Sparks with its bytes per node, whether it fits, the sequences that fit at a context
// and the predicted decode and prefill speeds (runtime/deploy/plan.h). Reads config.json and the
// safetensors headers only.
#include <iostream>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "launcher/command_registry.h"
#include "runtime/core/status_macros.h"
#include "runtime/deploy/checkpoint_census.h"
#include "runtime/deploy/plan.h"
#include "runtime/deploy/plan_report.h"

namespace sparkstack::launcher {
namespace {

struct PlanCommandOptions {
  std::string model_dir;
  std::string kv_dtype = "bf16";
  bool json = false;
  double memory_gib = 102;
  deploy::PlanOptions plan;
};

absl::StatusOr<DType> ParseKvDtype(std::string name) {
  name = absl::AsciiStrToLower(name);
  if (name == "bf16") return DType::kBF16;
  if (name == "f16" || name == "fp16") return DType::kF16;
  if (name == "f32" || name == "fp32") return DType::kF32;
  if (name == "fp8" || name == "f8_e4m3" || name == "fp8_e4m3") return DType::kF8E4M3;
  return absl::InvalidArgumentError(
      absl::StrCat("--kv-dtype ", name, ": expected bf16, f16, f32 or fp8"));
}

absl::Status RunPlan(PlanCommandOptions options) {
  SPARKSTACK_ASSIGN_OR_RETURN(options.plan.kv_dtype, ParseKvDtype(options.kv_dtype));
  options.plan.perf.allocatable_bytes = options.memory_gib * deploy::kGiB;
  SPARKSTACK_ASSIGN_OR_RETURN(deploy::CheckpointCensus census,
                              deploy::TakeCensus(options.model_dir));
  SPARKSTACK_ASSIGN_OR_RETURN(deploy::Plan plan, deploy::MakePlan(census, options.plan));
  if (options.json) {
    std::cout << deploy::PlanToJson(plan).dump(2) << "\n";
  } else {
    std::cout << deploy::FormatPlanTable(plan);
  }
  return absl::OkStatus();
}

void SetupPlanCommand(CLI::App& root) {
  auto options = std::make_shared<PlanCommandOptions>();
  deploy::PlanOptions& plan = options->plan;
  CLI::App* cmd = root.add_subcommand(
      "plan", "Every layout of a model on N Sparks: memory per node, fit, predicted speed");
  cmd->add_option("--model", options->model_dir, "model directory (config.json + safetensors)")
      ->required();
  cmd->add_option("--nodes", plan.nodes, "number of Sparks (one rank each)")->required();
  cmd->add_option("--tp", plan.tp, "only layouts with this tensor-parallel degree");
  cmd->add_option("--pp", plan.pp, "only layouts with this many pipeline stages");
  cmd->add_option("--ep", plan.ep, "only layouts with this many expert-parallel groups (MoE)");
  cmd->add_option("--max-context", plan.max_context,
                  "tokens per sequence when counting the sequences that fit (default: the "
                  "model's max_position_embeddings)");
  cmd->add_option("--kv-dtype", options->kv_dtype, "KV cache type: bf16 (default), f16, f32, fp8");
  cmd->add_option("--context", plan.perf_context,
                  "context of each sequence in the decode prediction (default 2048)");
  cmd->add_option("--max-num-batched-tokens", plan.max_num_batched_tokens,
                  "the engine's tokens per step (workspace, prefill chunk; default 2048)");
  cmd->add_option("--max-num-seqs", plan.max_num_seqs,
                  "the engine's sequences per step (default 256)");
  cmd->add_option("--memory-gib", options->memory_gib,
                  "allocatable memory per node, GiB (default 102)")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--json", options->json, "print one JSON object instead of the table");
  cmd->callback([options] { FinishCommand(RunPlan(*options)); });
}

}  // namespace

SPARKSTACK_REGISTER_COMMAND(SetupPlanCommand);

}  // namespace sparkstack::launcher
