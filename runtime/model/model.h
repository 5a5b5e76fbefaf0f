// Model: a decoder-only transformer shard running on a Backend. A shard is a slice of the model for
// one rank: its tensor-parallel part of every layer it owns (ModelShard) and, with pipeline
// parallelism, only a contiguous range of layers. At tp = pp = 1 the shard is the whole model.
//
// A forward pass is Embed (first stage) -> RunLayers -> Logits (last stage); a pipeline driver
// moves the hidden states between stages. Thread-compatible: one thread drives a model at a time.
#ifndef SPARKSTACK_RUNTIME_MODEL_MODEL_H_
#define SPARKSTACK_RUNTIME_MODEL_MODEL_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/backend/backend.h"
#include "runtime/core/tensor.h"
#include "runtime/model/model_config.h"

namespace sparkstack {

class Communicator;

// Which part of the model this process holds.
struct ModelShard {
  int tp_rank = 0;
  int tp_size = 1;
  Communicator* tp_comm = nullptr;  // the tensor-parallel group; required when tp_size > 1
  int64_t layer_begin = 0;          // this stage's layers [layer_begin, layer_end)
  int64_t layer_end = -1;           // -1: through the last layer
  bool first_stage = true;          // holds the embedding
  bool last_stage = true;           // holds the final norm and lm_head
};

// Per-sequence attention cache for the shard's layers: k and v [capacity, local_kv_heads,
// head_dim] per layer, in backend memory.
struct KvCache {
  int64_t capacity = 0;
  std::vector<Tensor> k;
  std::vector<Tensor> v;
};

class Model {
 public:
  virtual ~Model() = default;

  virtual const ModelConfig& config() const = 0;
  virtual const ModelShard& shard() const = 0;

  // A cache for `capacity` positions (at most max_position_embeddings).
  virtual absl::StatusOr<KvCache> NewKvCache(int64_t capacity) = 0;

  // Hidden states [tokens, hidden] for the token ids (first stage only). Ids outside the
  // vocabulary are an OutOfRange error.
  virtual absl::StatusOr<Tensor> Embed(std::span<const int32_t> tokens) = 0;

  // Runs the shard's layers over `hidden` [tokens, hidden] in place; token t is at position
  // start + t, and the cache receives their keys and values.
  virtual absl::Status RunLayers(Tensor& hidden, int64_t start, KvCache& cache) = 0;

  // Final norm and lm_head over `hidden` rows (last stage only): host f32 logits [rows, vocab].
  virtual absl::StatusOr<Tensor> Logits(const Tensor& hidden) = 0;

  // One stage doing everything: logits of the last token [1, vocab]. Needs a shard that is both
  // the first and the last stage.
  absl::StatusOr<Tensor> Forward(std::span<const int32_t> tokens, int64_t start, KvCache& cache);
};

// Loads the model in `model_dir` (config.json + safetensors) for `shard`, reading only the slices
// of the checkpoint this shard needs. The backend must outlive the model.
absl::StatusOr<std::unique_ptr<Model>> LoadModel(const std::string& model_dir, Backend& backend,
                                                 const ModelShard& shard = {});

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_MODEL_MODEL_H_
