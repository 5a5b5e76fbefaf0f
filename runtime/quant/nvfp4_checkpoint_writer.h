// `sparkstack quantize --to nvfp4`: converts a dense Hugging Face checkpoint into the ModelOpt
// NVFP4 layout that LoadLinearWeight (and vLLM / TensorRT-LLM) read.
//
// Output directory:
//   model.safetensors     (or model-0000i-of-0000N.safetensors + model.safetensors.index.json,
//                         see below) per quantized linear P: P.weight u8 [N, K/2], P.weight_scale
//                         f8_e4m3 [N, K/16], P.weight_scale_2 f32 scalar (0-dim); every other
//                         tensor copied unchanged (same name, dtype, bytes)
//   hf_quant_config.json  {"producer": {"name": "sparkstack", ...}, "quantization": {"quant_algo":
//                         "NVFP4", "group_size": 16, "kv_cache_quant_algo": null,
//                         "exclude_modules": [...]}}
//   config.json           the input's, plus "quantization_config": {"quant_method": "modelopt",
//                         same fields}
//   everything else       tokenizer files, generation_config.json, ... copied (not the input's
//                         *.safetensors, their index, or hf_quant_config.json)
// A tensor is quantized when its name is P.weight, it is a rank-2 f32/f16/bf16 matrix with K a
// multiple of 16, and module P matches none of the exclude patterns (fnmatch, as ModelOpt's
// exclude_modules). Default patterns: lm_head, *embed_tokens*, *norm* (norm vectors are 1-D
// anyway),
// *.mlp.gate (MoE routers stay high precision); more are added with `exclude`. Modules skipped for
// their shape are listed in exclude_modules by name, so readers know to expect them dense.
//
// Streaming, so that a checkpoint far larger than memory converts: the input shards are mapped
// (read lazily), and the plan — every output tensor's name, dtype and shape, a pure function of
// the input headers — is made before any data is read. From it the output is split into shards of
// at most `max_shard_bytes` of tensor data (a tensor's codes and scales stay together; one larger
// than the limit gets a shard of its own), so the shard count N is known first ("count first from
// the headers"): every shard gets its final name and its header is written before its data, then
// each input tensor is quantized and appended at once. Only one quantized tensor is held in memory
// at a time; copied tensors go straight from the input mapping to the file. With more than one
// shard, model.safetensors.index.json ({"metadata": {"total_size": BYTES}, "weight_map": {tensor:
// file}}) names them as save_pretrained does; with one, the output is model.safetensors alone.
// Input files are walked in shard order, each file's tensors sorted by name, and the output keeps
// that order; the tensors themselves (names, dtypes, shapes, bytes) do not depend on the sharding.
#ifndef SPARKSTACK_RUNTIME_QUANT_NVFP4_CHECKPOINT_WRITER_H_
#define SPARKSTACK_RUNTIME_QUANT_NVFP4_CHECKPOINT_WRITER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/quant/safetensors_shards.h"

namespace sparkstack {

struct QuantizeCheckpointOptions {
  std::vector<std::string> exclude;                  // extra fnmatch patterns of module names
  bool overwrite = false;                            // replace a non-empty output directory
  uint64_t max_shard_bytes = kDefaultMaxShardBytes;  // tensor data per output file; positive
};

struct QuantizeCheckpointReport {
  int64_t quantized_layers = 0;
  int64_t kept_tensors = 0;  // copied unchanged
  uint64_t input_bytes = 0;  // tensor data in and out
  uint64_t output_bytes = 0;
  int shards = 0;                  // output .safetensors files
  uint64_t peak_buffer_bytes = 0;  // largest quantized output held in memory at once (one tensor)
  std::vector<std::string> exclude_modules;  // as written to hf_quant_config.json
};

// Default module patterns left unquantized.
const std::vector<std::string>& DefaultNvfp4ExcludePatterns();

// Converts `in_dir` to `out_dir`. out_dir may be absent or empty; a non-empty out_dir is replaced
// only with `overwrite`. The output is written into a temporary directory beside out_dir
// (".NAME.partial-XXXXXX") and moved into place by rename (an atomic exchange when replacing), so
// out_dir never holds a half-written result or stale files from an earlier run; the temporary
// directory is removed on failure. Everything that can be refused is checked before quantizing.
// Errors: InvalidArgument if max_shard_bytes is 0; FailedPrecondition if out_dir is non-empty
// without `overwrite` (naming an entry) or is not a directory; InvalidArgument if out_dir is
// in_dir, in_dir lies inside out_dir (with overwrite), the input is already quantized (its quant
// scheme is not none), two output tensors would share a name, or a weight cannot be quantized
// (non-finite values: the tensor is named); NotFound / InvalidArgument from opening the checkpoint;
// ResourceExhausted if the largest quantized tensor does not fit the memory budget; Internal for
// I/O failures (path named).
absl::StatusOr<QuantizeCheckpointReport> QuantizeCheckpointToNvfp4(
    const std::string& in_dir, const std::string& out_dir,
    const QuantizeCheckpointOptions& options);

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_QUANT_NVFP4_CHECKPOINT_WRITER_H_
