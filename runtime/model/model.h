// Model: a decoder-only transformer shard running on a Backend. A shard is a slice of the model for
// one rank: its tensor-parallel part of every layer it owns (ModelShard) and, with pipeline
// parallelism, only a contiguous range of layers. At tp = pp = 1 the shard is the whole model.
//
// One call runs one engine step for the whole batch (ForwardBatch: many sequences, prefill chunks
// and decodes mixed) through the shard's layers over the paged KV cache. A pipeline driver moves
// the hidden states [T, hidden] between stages. Thread-compatible: one thread drives a model at a
// time; every tp rank of a shard calls Forward for the same batches in the same order (the
// tensor-parallel collectives pair up).
#ifndef SPARKSTACK_RUNTIME_MODEL_MODEL_H_
#define SPARKSTACK_RUNTIME_MODEL_MODEL_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/backend/backend.h"
#include "runtime/core/arena.h"
#include "runtime/core/tensor.h"
#include "runtime/model/forward_batch.h"
#include "runtime/model/kv_cache.h"
#include "runtime/model/model_config.h"

namespace sparkstack {

class Communicator;

// Which part of the model this process holds.
struct ModelShard {
  int tp_rank = 0;
  int tp_size = 1;
  Communicator* tp_comm = nullptr;  // the tensor-parallel group; required when tp_size > 1
  int ep_size = 0;  // expert-parallel groups among the tp ranks (MoE); 0: tp_size (moe_block.h)
  int64_t layer_begin = 0;          // this stage's layers [layer_begin, layer_end)
  int64_t layer_end = -1;           // -1: through the last layer
  bool first_stage = true;          // holds the embedding
  bool last_stage = true;           // holds the final norm and lm_head
};

struct ModelLoadOptions {
  ModelShard shard;
  // Longest sequence (prompt + output) the engine will run; sizes the RoPE tables. 0: the
  // config's max_position_embeddings.
  int64_t max_model_len = 0;
};

// The largest step a model must be ready for; sizes its workspace.
struct StepLimits {
  int64_t max_tokens = 0;      // T: tokens of one step (the scheduler's token budget)
  int64_t max_seqs = 0;        // B: sequences of one step
  int64_t max_logit_rows = 0;  // R: rows sampled in one step (<= max_seqs)
};

class Model {
 public:
  virtual ~Model() = default;

  virtual const ModelConfig& config() const = 0;
  virtual const ModelShard& shard() const = 0;
  // The longest sequence this model was loaded for (RoPE tables).
  virtual int64_t max_model_len() const = 0;

  // The KV cache this shard's layers need (AllocateKvCache makes it).
  virtual KvCacheSpec kv_cache_spec() const = 0;

  // Bytes of workspace (Arena) one Forward over a step within `limits` takes at most.
  virtual int64_t WorkspaceBytes(const StepLimits& limits) const = 0;

  // Runs one step of the shard's layers.
  //   hidden   f32 [T, hidden_size] on the backend's device. First stage: Forward writes the
  //            embeddings of batch.token_ids into it. Other stages: it holds the previous stage's
  //            output. On return it holds this stage's output (what the next stage receives);
  //            its contents are unspecified on the last stage.
  //   logits   last stage only (nullptr elsewhere): f32 [R, vocab_size], the logits of the rows
  //            batch.logits_rows, the whole vocabulary on every tp rank.
  //   cache    this shard's KV pools; the batch's keys and values are stored at its slots.
  //   workspace  Reset() by Forward; holds every intermediate (nothing else is allocated).
  // Errors: InvalidArgument for shapes that do not match the model; ResourceExhausted when the
  // workspace is too small; the communicator's errors (a dead tensor-parallel peer).
  virtual absl::Status Forward(const ForwardBatch& batch, KvCache& cache, Arena& workspace,
                               Tensor& hidden, Tensor* logits) = 0;
};

// Loads the model in `model_dir` (config.json + safetensors) for `options.shard`, reading only the
// slices of the checkpoint this shard needs, and prepares its weights for `backend` (which must
// outlive the model).
absl::StatusOr<std::unique_ptr<Model>> LoadModel(const std::string& model_dir, Backend& backend,
                                                 const ModelLoadOptions& options = {});

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_MODEL_MODEL_H_
