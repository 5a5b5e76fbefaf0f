// How a checkpoint's linear layers are quantized, read from its configuration files.
//
// Recognized layouts (see /work/shared/NVFP4.md):
//   * ModelOpt: DIR/hf_quant_config.json {"quantization": {"quant_algo": "NVFP4" | "MIXED_PRECISION",
//     "group_size": 16, "kv_cache_quant_algo": ..., "exclude_modules": [fnmatch patterns],
//     "quantized_layers": {module: {"quant_algo": "NVFP4", "group_size": 16}}}} or, in newer exports,
//     config.json "quantization_config" with "quant_method": "modelopt" and the same fields at its
//     top level ("ignore" is accepted as a synonym of "exclude_modules").
//   * compressed-tensors (llm-compressor): config.json "quantization_config" with
//     "quant_method": "compressed-tensors", "format": "nvfp4-pack-quantized" (top level or in each
//     config group), "config_groups": {g: {"weights": {"num_bits": 4, "type": "float",
//     "group_size": 16}, ...}}, "ignore": [module names or "re:" regexes].
//   * DeepSeek FP8 (DeepSeek-V3/R1, MiniMax-M2): config.json "quantization_config" with
//     "quant_method": "fp8", "fmt": "e4m3", "weight_block_size": [128, 128]; optional
//     "ignored_layers" / "modules_to_not_convert" name modules left in bf16.
//   * Neither: the checkpoint is dense (bf16/f16/f32).
#ifndef SPARKSTACK_RUNTIME_QUANT_QUANT_SCHEME_H_
#define SPARKSTACK_RUNTIME_QUANT_QUANT_SCHEME_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace sparkstack {

enum class QuantMethod : uint8_t {
  kNone,                      // dense checkpoint
  kModelOptNvfp4,             // ModelOpt NVFP4 (also MIXED_PRECISION whose layers are NVFP4)
  kCompressedTensorsNvfp4,    // compressed-tensors nvfp4-pack-quantized
  kFp8Block,                  // DeepSeek FP8 e4m3, 128x128 block scales (NVFP4 at load; fp8_block.h)
};

struct QuantScheme {
  QuantMethod method = QuantMethod::kNone;
  // Where the scheme came from ("DIR/hf_quant_config.json"), for messages.
  std::string source;
  // ModelOpt fnmatch patterns / compressed-tensors names (with optional "re:" prefix) of modules
  // left unquantized.
  std::vector<std::string> exclude_modules;
  // MIXED_PRECISION only: module name -> quant_algo ("NVFP4", or others that loading rejects).
  // Modules not listed are unquantized.
  bool mixed_precision = false;
  std::map<std::string, std::string> quantized_layers;
  // "FP8" or "" (none); informational, the KV cache dtype is chosen elsewhere.
  std::string kv_cache_quant_algo;
};

// Reads DIR/hf_quant_config.json if present, else DIR/config.json's "quantization_config" (a
// missing config.json or one without quantization_config gives QuantMethod::kNone).
// InvalidArgument naming the file and field for: malformed JSON, an unknown quant_algo or
// quant_method or compressed-tensors format, a group_size other than 16, mistyped fields. A
// MIXED_PRECISION layer with an algorithm other than NVFP4 is recorded here and rejected by
// LoadLinearWeight when that layer is loaded.
absl::StatusOr<QuantScheme> ReadQuantScheme(const std::string& model_dir);

// Parses an already loaded object: `hf_quant_config` is the whole hf_quant_config.json (may be
// null) and `config` the whole config.json (may be null). Same errors as ReadQuantScheme.
absl::StatusOr<QuantScheme> ParseQuantScheme(const nlohmann::json& hf_quant_config,
                                             const nlohmann::json& config,
                                             const std::string& source);

// True if module `name` ("model.layers.0.self_attn.q_proj") is excluded by the scheme's patterns
// (fnmatch for ModelOpt, exact / "re:" full-match for compressed-tensors).
bool IsExcludedModule(const QuantScheme& scheme, const std::string& name);

// True if the scheme says module `name` holds NVFP4 weights (not excluded, and listed as NVFP4 when
// the scheme is MIXED_PRECISION).
bool ExpectsNvfp4(const QuantScheme& scheme, const std::string& name);

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_QUANT_QUANT_SCHEME_H_
