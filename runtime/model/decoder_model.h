// DecoderModel: the pre-norm residual stack every decoder family shares, so that a family file
// only loads its blocks (DESIGN.md, seam 4). Per layer:
//   normed = RmsNorm(residual);  residual += AllReduce(attention(normed))
//   normed = RmsNorm(residual);  residual += AllReduce(ffn(normed))
// with each add fused into the next norm (Backend::AddRmsNorm). The first pipeline stage embeds
// the batch's tokens; the last gathers the logits rows, applies the final norm and lm_head.
#ifndef SPARKSTACK_RUNTIME_MODEL_DECODER_MODEL_H_
#define SPARKSTACK_RUNTIME_MODEL_DECODER_MODEL_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/backend/backend.h"
#include "runtime/core/arena.h"
#include "runtime/model/forward_batch.h"
#include "runtime/model/model.h"
#include "runtime/model/tensor_parallel.h"
#include "runtime/model/vocab_parallel.h"

namespace sparkstack {

// The token-mixing half of a layer (GQA attention, MLA, ...).
class AttentionLayer {
 public:
  virtual ~AttentionLayer() = default;
  // x [T, hidden] (normed) -> out [T, hidden], this rank's partial sum; stores the step's keys
  // and values into the layer's pools first.
  virtual absl::Status Forward(Backend& backend, const Tensor& x, const ForwardBatch& batch,
                               Tensor& k_cache, Tensor& v_cache, Arena& workspace,
                               Tensor& out) const = 0;
  virtual int64_t WorkspaceBytes(int64_t tokens) const = 0;
};

// The channel-mixing half of a layer (dense gated MLP, mixture of experts, ...).
class FfnLayer {
 public:
  virtual ~FfnLayer() = default;
  // x [T, hidden] (normed) -> out [T, hidden], this rank's partial sum.
  virtual absl::Status Forward(Backend& backend, const Tensor& x, Arena& workspace,
                               Tensor& out) const = 0;
  virtual int64_t WorkspaceBytes(int64_t tokens) const = 0;
};

struct DecoderLayer {
  Tensor attention_norm;  // [hidden]
  Tensor ffn_norm;        // [hidden]
  std::unique_ptr<AttentionLayer> attention;
  std::unique_ptr<FfnLayer> ffn;
};

// What a family loads for its shard.
struct DecoderParts {
  ModelConfig config;
  ModelShard shard;
  int64_t max_model_len = 0;
  KvCacheSpec kv_cache_spec;
  std::optional<VocabEmbedding> embedding;  // first stage
  std::optional<LogitsHead> head;           // last stage
  std::vector<DecoderLayer> layers;         // the shard's layers, in order
};

std::unique_ptr<Model> MakeDecoderModel(Backend& backend, DecoderParts parts);

// The shard's tensor-parallel group.
inline TensorParallel TensorParallelOf(const ModelShard& shard) {
  return {.rank = shard.tp_rank, .size = shard.tp_size, .comm = shard.tp_comm};
}

// The shard's layer range [begin, end), checked against the config. InvalidArgument otherwise.
absl::StatusOr<Range> ShardLayers(const ModelConfig& config, const ModelShard& shard);

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_MODEL_DECODER_MODEL_H_
