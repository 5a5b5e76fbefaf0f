// `sparkstack quantize --to nvfp4 IN_DIR OUT_DIR [--exclude PATTERN ...] [--max-shard-bytes SIZE]`:
// writes an NVFP4 checkpoint in ModelOpt's layout, streaming tensor by tensor into shards (see
// runtime/quant/nvfp4_checkpoint_writer.h).
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "launcher/command_registry.h"
#include "runtime/quant/nvfp4_checkpoint_writer.h"

namespace sparkstack::launcher {
namespace {

struct QuantizeFlags {
  std::string to = "nvfp4";
  std::string in_dir;
  std::string out_dir;
  std::vector<std::string> exclude;
  bool overwrite = false;
  uint64_t max_shard_bytes = kDefaultMaxShardBytes;
};

absl::Status Run(const QuantizeFlags& f) {
  QuantizeCheckpointOptions options;
  options.exclude = f.exclude;
  options.overwrite = f.overwrite;
  options.max_shard_bytes = f.max_shard_bytes;
  auto report = QuantizeCheckpointToNvfp4(f.in_dir, f.out_dir, options);
  if (!report.ok()) return report.status();
  std::printf(
      "quantized %lld linear layers to nvfp4, kept %lld tensors; %.2f MiB -> %.2f MiB in %s "
      "(%d file%s)\n",
      static_cast<long long>(report->quantized_layers),
      static_cast<long long>(report->kept_tensors), report->input_bytes / 1048576.0,
      report->output_bytes / 1048576.0, f.out_dir.c_str(), report->shards,
      report->shards == 1 ? "" : "s");
  return absl::OkStatus();
}

void SetupQuantizeCommand(CLI::App& root) {
  auto flags = std::make_shared<QuantizeFlags>();
  CLI::App* cmd = root.add_subcommand(
      "quantize", "Quantize a dense checkpoint's linear layers (ModelOpt NVFP4 layout)");
  cmd->add_option("--to", flags->to, "target format")->check(CLI::IsMember({"nvfp4"}));
  cmd->add_option("in_dir", flags->in_dir, "dense Hugging Face model directory")->required();
  cmd->add_option("out_dir", flags->out_dir,
                  "output directory: absent or empty, or replaced as a whole with --overwrite")
      ->required();
  cmd->add_flag("--overwrite", flags->overwrite,
                "replace a non-empty output directory (atomically, once the new one is written)");
  cmd->add_option("--exclude", flags->exclude,
                  "fnmatch pattern of modules to keep dense (repeatable); lm_head, embeddings, "
                  "norms and MoE routers are always kept");
  cmd->add_option(
         "--max-shard-bytes", flags->max_shard_bytes,
         "tensor data per output .safetensors file (bytes, or with a unit: 500MiB, 5GB; "
         "k = 1024); more than one file gets model.safetensors.index.json. A tensor larger "
         "than this gets a file of its own")
      ->transform(CLI::AsSizeValue(/*kb_is_1000=*/false))
      ->check(CLI::PositiveNumber)
      ->default_str("5GiB");
  cmd->callback([flags] { FinishCommand(Run(*flags)); });
}

}  // namespace

SPARKSTACK_REGISTER_COMMAND(SetupQuantizeCommand);

}  // namespace sparkstack::launcher
