// What a model directory's weights weigh, from config.json and the safetensors headers alone.
//
// `sparkstack plan` must answer "does this fit, and how fast will it run" before anything is
// loaded, so it never maps or reads tensor data: it reads each shard's 8-byte length and JSON
// header. A shard whose data section is absent altogether (the file ends right after the header)
// is accepted, so that tests and docs can describe real checkpoints with header-only files; a data
// section that is present but shorter than the header declares is an error (a truncated file).
//
// Each tensor is classified by how sparkstack shards it (runtime/model: tensor-parallel column and
// row splits, vocab-parallel embedding and lm_head, replicated norms and routers, routed experts
// split over expert-parallel groups) and by the bytes it occupies once loaded, which differ from
// the checkpoint's for DeepSeek-style FP8 weights (converted to NVFP4 at load).
#ifndef SPARKSTACK_RUNTIME_DEPLOY_CHECKPOINT_CENSUS_H_
#define SPARKSTACK_RUNTIME_DEPLOY_CHECKPOINT_CENSUS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/model/model_config.h"
#include "runtime/model/safetensors.h"

namespace sparkstack::deploy {

// How a tensor is divided among the tp ranks of a pipeline stage.
enum class ShardRole : uint8_t {
  kSharded,     // split tp ways (q/o projections, dense MLP, shared experts, MLA q_b/kv_b/o)
  kKvSharded,   // k/v projections: split min(tp, kv_heads) ways (kv heads are replicated past that)
  kReplicated,  // every rank holds it whole (norms, routers, MLA's q_a/kv_a, scalar scales)
  kExpert,      // a routed expert's tensor: its expert lives in one ep group, sliced tp/ep ways
};

// Where a tensor sits in the model.
enum class Placement : uint8_t {
  kLayer,      // model.layers.N.* with N < num_layers
  kEmbedding,  // model.embed_tokens.*: first pipeline stage, vocab-parallel
  kHead,       // lm_head.* and the final norm: last pipeline stage
  kOther,      // anything else outside the layers (e.g. rotary buffers): first stage, replicated
  kSkipped,    // multi-token-prediction layers (N >= num_layers): never loaded for plain decode
};

struct TensorCensus {
  std::string name;
  std::string file;  // the shard, for messages
  DType dtype = DType::kF32;
  Shape shape;
  uint64_t checkpoint_bytes = 0;  // as stored
  uint64_t resident_bytes = 0;    // once loaded (0 for scales folded away at load)
  Placement placement = Placement::kOther;
  ShardRole role = ShardRole::kReplicated;
  int64_t layer = -1;   // kLayer / kSkipped
  int64_t expert = -1;  // kExpert
  // Multiply-accumulates per token through this tensor when it is a matrix of a linear layer
  // (N x K, NVFP4 codes counted unpacked), else 0. Drives the prefill compute estimate.
  uint64_t matmul_elements = 0;
  bool fp4 = false;  // resident as NVFP4 (computes at the FP4 tensor-core rate)
};

struct CheckpointCensus {
  std::string model_dir;
  ModelConfig config;
  std::vector<std::string> files;     // shards read, in order
  std::vector<TensorCensus> tensors;  // every tensor of every shard
  bool header_only = false;           // at least one shard had no data section
  uint64_t checkpoint_bytes = 0;      // all tensors as stored (MTP included)
  uint64_t resident_bytes = 0;        // what a single rank holding the whole model keeps
  uint64_t skipped_bytes = 0;         // MTP layers, never loaded
  bool fp8_converted = false;         // some FP8 weights become NVFP4 at load
};

// The entries of one safetensors file, reading only its header. `has_data` is set to false when
// the file ends right after the header. Errors name the file: NotFound / PermissionDenied for the
// OS, InvalidArgument for a malformed header (ParseSafetensorsHeader's checks), DataLoss when the
// data section is present but shorter than the header declares.
absl::StatusOr<std::vector<SafetensorsEntry>> ReadSafetensorsHeader(const std::string& path,
                                                                    bool* has_data);

// The shard files of a model directory, in the order sparkstack's Checkpoint opens them:
// DIR/model.safetensors, else the shards named by DIR/model.safetensors.index.json, else the only
// *.safetensors file. NotFound / InvalidArgument naming the file as Checkpoint::Open does.
absl::StatusOr<std::vector<std::string>> FindCheckpointShards(const std::string& model_dir);

// Reads DIR/config.json and every shard's header and classifies every tensor. Besides the errors
// above: a tensor in two shards (InvalidArgument naming both), no tensors at all.
absl::StatusOr<CheckpointCensus> TakeCensus(const std::string& model_dir);

// Classifies one tensor (exposed for tests). `exists` answers whether the checkpoint holds a
// tensor of the given name: FP8 weights are recognized by their P.weight_scale_inv, ModelOpt NVFP4
// weights (u8 P.weight) by their P.weight_scale.
TensorCensus ClassifyTensor(const SafetensorsEntry& entry, const ModelConfig& config,
                            const std::function<bool(const std::string&)>& exists);

}  // namespace sparkstack::deploy

#endif  // SPARKSTACK_RUNTIME_DEPLOY_CHECKPOINT_CENSUS_H_
