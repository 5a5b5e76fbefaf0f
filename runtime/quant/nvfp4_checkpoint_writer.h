// `sparkstack quantize --to nvfp4`: converts a dense Hugging Face checkpoint into the ModelOpt
// NVFP4 layout that LoadLinearWeight (and vLLM / TensorRT-LLM) read.
//
// Output directory:
//   model.safetensors     per quantized linear P: P.weight u8 [N, K/2], P.weight_scale f8_e4m3
//                         [N, K/16], P.weight_scale_2 f32 scalar (0-dim); every other tensor
//                         copied unchanged (same name, dtype, bytes)
//   hf_quant_config.json  {"producer": {"name": "sparkstack", ...}, "quantization": {"quant_algo":
//                         "NVFP4", "group_size": 16, "kv_cache_quant_algo": null,
//                         "exclude_modules": [...]}}
//   config.json           the input's, plus "quantization_config": {"quant_method": "modelopt",
//                         same fields}
//   everything else       tokenizer files, generation_config.json, ... copied (not the input's
//                         *.safetensors, their index, or hf_quant_config.json)
// A tensor is quantized when its name is P.weight, it is a rank-2 f32/f16/bf16 matrix with K a
// multiple of 16, and module P matches none of the exclude patterns (fnmatch, as ModelOpt's
// exclude_modules). Default patterns: lm_head, *embed_tokens*, *norm* (norm vectors are 1-D anyway),
// *.mlp.gate (MoE routers stay high precision); more are added with `exclude`. Modules skipped for
// their shape are listed in exclude_modules by name, so readers know to expect them dense.
#ifndef SPARKSTACK_RUNTIME_QUANT_NVFP4_CHECKPOINT_WRITER_H_
#define SPARKSTACK_RUNTIME_QUANT_NVFP4_CHECKPOINT_WRITER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace sparkstack {

struct QuantizeCheckpointOptions {
  std::vector<std::string> exclude;  // extra fnmatch patterns of module names
  bool overwrite = false;            // replace a non-empty output directory
};

struct QuantizeCheckpointReport {
  int64_t quantized_layers = 0;
  int64_t kept_tensors = 0;  // copied unchanged
  uint64_t input_bytes = 0;  // tensor data in and out
  uint64_t output_bytes = 0;
  std::vector<std::string> exclude_modules;  // as written to hf_quant_config.json
};

// Default module patterns left unquantized.
const std::vector<std::string>& DefaultNvfp4ExcludePatterns();

// Converts `in_dir` to `out_dir`. out_dir may be absent or empty; a non-empty out_dir is replaced
// only with `overwrite`. The output is written into a temporary directory beside out_dir
// (".NAME.partial-XXXXXX") and moved into place by rename (an atomic exchange when replacing), so
// out_dir never holds a half-written result or stale files from an earlier run; the temporary
// directory is removed on failure. Everything that can be refused is checked before quantizing.
// Errors: FailedPrecondition if out_dir is non-empty without `overwrite` (naming an entry) or is
// not a directory; InvalidArgument if out_dir is in_dir, in_dir lies inside out_dir (with
// overwrite), the input is already quantized (its quant scheme is not none), or a weight cannot be
// quantized (non-finite values: the tensor is named); NotFound / InvalidArgument from opening the
// checkpoint; ResourceExhausted if the quantized tensors, held in memory until the single output
// file is written (about a quarter of the input's linear weights), exceed the memory budget;
// Internal for I/O failures (path named).
absl::StatusOr<QuantizeCheckpointReport> QuantizeCheckpointToNvfp4(
    const std::string& in_dir, const std::string& out_dir,
    const QuantizeCheckpointOptions& options);

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_QUANT_NVFP4_CHECKPOINT_WRITER_H_
