#include "runtime/quant/nvfp4_checkpoint_writer.h"

#include <fnmatch.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "runtime/core/status_macros.h"
#include "runtime/model/checkpoint.h"
#include "runtime/model/safetensors.h"
#include "runtime/quant/nvfp4_quantizer.h"
#include "runtime/quant/quant_scheme.h"

namespace sparkstack {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

bool MatchesAny(const std::vector<std::string>& patterns, const std::string& module) {
  for (const std::string& pattern : patterns) {
    if (fnmatch(pattern.c_str(), module.c_str(), 0) == 0) return true;
  }
  return false;
}

absl::Status WriteText(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path.string()));
  return absl::OkStatus();
}

bool IsFloat(DType dtype) {
  return dtype == DType::kF32 || dtype == DType::kF16 || dtype == DType::kBF16;
}

}  // namespace

const std::vector<std::string>& DefaultNvfp4ExcludePatterns() {
  static const std::vector<std::string> patterns = {"lm_head", "*embed_tokens*", "*norm*",
                                                    "*.mlp.gate"};
  return patterns;
}

absl::StatusOr<QuantizeCheckpointReport> QuantizeCheckpointToNvfp4(
    const std::string& in_dir, const std::string& out_dir,
    const QuantizeCheckpointOptions& options) {
  std::error_code ec;
  if (fs::exists(out_dir) && fs::equivalent(in_dir, out_dir, ec)) {
    return absl::InvalidArgumentError(
        absl::StrCat("quantize: the output directory ", out_dir, " is the input directory"));
  }
  SPARKSTACK_ASSIGN_OR_RETURN(QuantScheme scheme, ReadQuantScheme(in_dir));
  if (scheme.method != QuantMethod::kNone) {
    return absl::InvalidArgumentError(absl::StrCat(
        "quantize: ", in_dir, " is already quantized (", scheme.source,
        "); start from the dense checkpoint"));
  }
  SPARKSTACK_ASSIGN_OR_RETURN(Checkpoint checkpoint, Checkpoint::Open(in_dir));

  std::vector<std::string> patterns = DefaultNvfp4ExcludePatterns();
  patterns.insert(patterns.end(), options.exclude.begin(), options.exclude.end());
  QuantizeCheckpointReport report;
  report.exclude_modules = patterns;

  std::vector<std::pair<std::string, Tensor>> out_tensors;
  for (const std::string& name : checkpoint.TensorNames()) {
    const SafetensorsEntry* entry = checkpoint.Find(name);
    report.input_bytes += entry->nbytes();
    SPARKSTACK_ASSIGN_OR_RETURN(Tensor tensor, checkpoint.Get(name));
    const bool is_weight = absl::EndsWith(name, ".weight") && entry->shape.size() == 2 &&
                           IsFloat(entry->dtype);
    const std::string module = is_weight ? name.substr(0, name.size() - 7) : "";
    if (!is_weight || MatchesAny(patterns, module)) {
      report.output_bytes += entry->nbytes();
      ++report.kept_tensors;
      out_tensors.emplace_back(name, std::move(tensor));
      continue;
    }
    if (entry->shape[1] % 16 != 0) {  // NVFP4 needs whole 16-element blocks along K
      report.exclude_modules.push_back(module);
      report.output_bytes += entry->nbytes();
      ++report.kept_tensors;
      out_tensors.emplace_back(name, std::move(tensor));
      continue;
    }
    SPARKSTACK_ASSIGN_OR_RETURN(Weight q, QuantizeNvfp4(tensor, name));
    Tensor global = Tensor::Zeros(DType::kF32, {});
    global.data_as<float>()[0] = q.nvfp4().global_scale;
    report.output_bytes += q.nvfp4().codes.nbytes() + q.nvfp4().block_scales.nbytes() + 4;
    ++report.quantized_layers;
    out_tensors.emplace_back(name, q.nvfp4().codes);
    out_tensors.emplace_back(module + ".weight_scale", q.nvfp4().block_scales);
    out_tensors.emplace_back(module + ".weight_scale_2", std::move(global));
  }

  fs::create_directories(out_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", out_dir, ": ", ec.message()));
  SPARKSTACK_RETURN_IF_ERROR(WriteSafetensors((fs::path(out_dir) / "model.safetensors").string(),
                                              out_tensors, {{"format", "pt"}}));

  json quantization = {{"quant_algo", "NVFP4"},
                       {"group_size", 16},
                       {"kv_cache_quant_algo", nullptr},
                       {"exclude_modules", report.exclude_modules}};
  json hf_quant_config = {{"producer", {{"name", "sparkstack"}, {"version", "0.1"}}},
                          {"quantization", quantization}};
  SPARKSTACK_RETURN_IF_ERROR(
      WriteText(fs::path(out_dir) / "hf_quant_config.json", hf_quant_config.dump(2) + "\n"));

  // config.json: the input's with quantization_config added.
  const fs::path config_in = fs::path(in_dir) / "config.json";
  if (fs::exists(config_in)) {
    std::ifstream in(config_in);
    std::stringstream buffer;
    buffer << in.rdbuf();
    json config = json::parse(buffer.str(), nullptr, /*allow_exceptions=*/false);
    if (config.is_discarded() || !config.is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat(config_in.string(), " is not a JSON object"));
    }
    json quantization_config = quantization;
    quantization_config["quant_method"] = "modelopt";
    config["quantization_config"] = quantization_config;
    SPARKSTACK_RETURN_IF_ERROR(WriteText(fs::path(out_dir) / "config.json", config.dump(2) + "\n"));
  }

  // Tokenizer files, generation_config.json, chat templates, ...: everything else at top level.
  for (const fs::directory_entry& file : fs::directory_iterator(in_dir, ec)) {
    if (!file.is_regular_file()) continue;
    const std::string base = file.path().filename().string();
    if (absl::EndsWith(base, ".safetensors") || base == "model.safetensors.index.json" ||
        base == "config.json" || base == "hf_quant_config.json") {
      continue;
    }
    fs::copy_file(file.path(), fs::path(out_dir) / base, fs::copy_options::overwrite_existing, ec);
    if (ec) {
      return absl::InternalError(
          absl::StrCat("cannot copy ", file.path().string(), " to ", out_dir, ": ", ec.message()));
    }
  }
  if (ec) return absl::InternalError(absl::StrCat("cannot list ", in_dir, ": ", ec.message()));
  return report;
}

}  // namespace sparkstack
