// `sparkstack make-tiny-model`: writes a small random model in the Hugging Face layout.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "launcher/command_registry.h"
#include "nlohmann/json.hpp"
#include "runtime/core/memory_budget.h"
#include "runtime/core/status_macros.h"
#include "runtime/model/model_config.h"
#include "runtime/model/tiny_model.h"

namespace sparkstack::launcher {
namespace {

struct MakeTinyModelFlags {
  std::string arch = "llama";
  std::string out;
  std::string dtype = "bf16";
  std::string rope_scaling;
  int64_t hidden = 0, intermediate = 0, layers = 0, heads = 0, kv_heads = 0, head_dim = 0,
          vocab = 0;
  bool tie_embeddings = false;
  uint64_t seed = 0;
  std::string config_overrides;  // JSON object of config.json keys (MoE fields, ...)
  bool fp8 = false;
};

// Bytes of the dense tensors WriteTinyModel creates (runtime/model/tiny_model.cc; MoE experts are
// not counted, so for MoE configs this is a lower bound), saturating at UINT64_MAX: sizes come
// from flags and their products can overflow.
uint64_t TinyModelBytes(const ModelConfig& c) {
  using u128 = unsigned __int128;
  const u128 h = static_cast<u128>(c.hidden_size), d = static_cast<u128>(c.head_dim);
  const u128 per_layer = 2 * h + (static_cast<u128>(c.num_heads) * d * h) * 2 +
                         (static_cast<u128>(c.num_kv_heads) * d * h) * 2 +
                         3 * static_cast<u128>(c.intermediate_size) * h + (c.qk_norm ? 2 * d : 0);
  const u128 embeddings = static_cast<u128>(c.vocab_size) * h * (c.tie_word_embeddings ? 1 : 2);
  const u128 elements = embeddings + per_layer * static_cast<u128>(c.num_layers) + h;
  const u128 bytes = elements * (c.torch_dtype == DType::kF32 ? 4 : 2);
  return bytes > UINT64_MAX ? UINT64_MAX : static_cast<uint64_t>(bytes);
}

absl::Status Run(const MakeTinyModelFlags& f) {
  const Architecture arch = ArchitectureFromName(f.arch).value_or(Architecture::kLlama);
  TinyModelOptions options;
  options.config = TinyModelConfig(arch);
  ModelConfig& c = options.config;
  if (f.hidden) c.hidden_size = f.hidden;
  if (f.intermediate) c.intermediate_size = f.intermediate;
  if (f.layers) c.num_layers = f.layers;
  if (f.heads) c.num_heads = f.heads;
  c.num_kv_heads = f.kv_heads ? f.kv_heads : (f.heads ? f.heads : c.num_kv_heads);
  if (f.head_dim) c.head_dim = f.head_dim;
  if (f.vocab) c.vocab_size = f.vocab;
  c.tie_word_embeddings = f.tie_embeddings;
  c.torch_dtype = f.dtype == "f32" ? DType::kF32 : DType::kBF16;
  if (f.rope_scaling == "llama3") {
    // Llama 3.1's values, with a short original context so that tiny tests reach every band.
    c.rope_scaling = {.type = "llama3", .factor = 8.0, .low_freq_factor = 1.0,
                      .high_freq_factor = 4.0, .original_max_position_embeddings = 64};
  }
  if (c.num_heads % c.num_kv_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat("--heads ", c.num_heads,
                                                   " must be a multiple of --kv-heads ",
                                                   c.num_kv_heads));
  }
  if (!f.config_overrides.empty()) {
    // The flags above first, then the overrides, then the whole config checked by the parser.
    nlohmann::json overrides = nlohmann::json::parse(f.config_overrides, nullptr, false);
    if (overrides.is_discarded() || !overrides.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--config-overrides must be a JSON object, found: ", f.config_overrides));
    }
    nlohmann::json json = ModelConfigToJson(c);
    json.update(overrides);
    SPARKSTACK_ASSIGN_OR_RETURN(c, ParseModelConfig(json, "--config-overrides"));
  }
  options.fp8_block = f.fp8;
  // The config must be one the runtime can load (even head_dim, sizes in range, ...): check it
  // the way a reader of config.json will, before writing anything.
  auto reread = ParseModelConfig(ModelConfigToJson(c), "(make-tiny-model flags)");
  if (!reread.ok()) return reread.status();
  // WriteTinyModel holds every tensor in memory until the file is written.
  SPARKSTACK_RETURN_IF_ERROR(CheckMemoryBudget(
      TinyModelBytes(c), absl::StrCat("make-tiny-model (", c.num_layers, " layers, hidden ",
                                      c.hidden_size, ", vocab ", c.vocab_size, ")")));
  options.seed = f.seed;
  return WriteTinyModel(options, f.out);
}

void SetupMakeTinyModelCommand(CLI::App& root) {
  auto flags = std::make_shared<MakeTinyModelFlags>();
  CLI::App* cmd = root.add_subcommand("make-tiny-model",
                                      "Write a small random model (config.json + safetensors)");
  cmd->add_option("--arch", flags->arch,
                  "llama, qwen3, qwen3_moe, deepseek_v3, glm4_moe or minimax_m2")
      ->check(CLI::IsMember(
          {"llama", "qwen3", "qwen3_moe", "deepseek_v3", "glm4_moe", "minimax_m2"}));
  cmd->add_option("--out", flags->out, "output directory")->required();
  cmd->add_option("--dtype", flags->dtype, "f32 or bf16")->check(CLI::IsMember({"f32", "bf16"}));
  cmd->add_option("--hidden", flags->hidden, "hidden size")->check(CLI::PositiveNumber);
  cmd->add_option("--intermediate", flags->intermediate, "MLP width")->check(CLI::PositiveNumber);
  cmd->add_option("--layers", flags->layers, "decoder layers")->check(CLI::PositiveNumber);
  cmd->add_option("--heads", flags->heads, "attention heads")->check(CLI::PositiveNumber);
  cmd->add_option("--kv-heads", flags->kv_heads, "key/value heads")->check(CLI::PositiveNumber);
  cmd->add_option("--head-dim", flags->head_dim, "head dimension")->check(CLI::PositiveNumber);
  cmd->add_option("--vocab", flags->vocab, "vocabulary size")->check(CLI::PositiveNumber);
  cmd->add_flag("--tie-embeddings", flags->tie_embeddings, "lm_head shares the embedding");
  cmd->add_option("--rope-scaling", flags->rope_scaling, "llama3")
      ->check(CLI::IsMember({"llama3"}));
  cmd->add_option("--seed", flags->seed, "random seed")->required();
  cmd->add_option("--config-overrides", flags->config_overrides,
                  "JSON object of config.json keys applied last, e.g. "
                  "'{\"num_experts\": 7, \"n_group\": 1}'");
  cmd->add_flag("--fp8", flags->fp8,
                "linear layers as DeepSeek FP8 (e4m3, 128x128 block scales)");
  cmd->callback([flags] { FinishCommand(Run(*flags)); });
}

}  // namespace

SPARKSTACK_REGISTER_COMMAND(SetupMakeTinyModelCommand);

}  // namespace sparkstack::launcher
