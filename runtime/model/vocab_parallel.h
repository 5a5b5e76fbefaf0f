// The vocabulary-parallel ends of a decoder: the token embedding (first stage) and the final norm
// plus lm_head (last stage). Each tensor-parallel rank holds one chunk of ceil(vocab / tp) ids
// (ChunkedSplit; the last chunks may be short or empty): the embedding is a lookup of the held ids
// plus an all-reduce, the logits an all-gather of equal-width chunks laid side by side.
#ifndef SPARKSTACK_RUNTIME_MODEL_VOCAB_PARALLEL_H_
#define SPARKSTACK_RUNTIME_MODEL_VOCAB_PARALLEL_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/backend/backend.h"
#include "runtime/core/arena.h"
#include "runtime/model/checkpoint.h"
#include "runtime/model/model_config.h"
#include "runtime/model/tensor_parallel.h"

namespace sparkstack {

class VocabEmbedding {
 public:
  // This rank's rows of `name` ([vocab_size, hidden]).
  static absl::StatusOr<VocabEmbedding> Load(const Checkpoint& checkpoint, const std::string& name,
                                             const ModelConfig& config, const TensorParallel& tp,
                                             Backend& backend);
  // out [T, hidden] <- the embeddings of ids (i32 [T]), summed over the group.
  absl::Status Forward(Backend& backend, const TensorParallel& tp, const Tensor& ids,
                       Tensor& out) const;

 private:
  Tensor table_;  // [local vocab, hidden]
  int64_t first_id_ = 0;
};

class LogitsHead {
 public:
  // The final norm ("model.norm.weight") and lm_head (or the tied embedding).
  static absl::StatusOr<LogitsHead> Load(const Checkpoint& checkpoint, const ModelConfig& config,
                                         const TensorParallel& tp, Backend& backend);
  // hidden [R, hidden] (not yet normed; overwritten) -> logits [R, vocab_size] on every rank.
  absl::Status Forward(Backend& backend, const TensorParallel& tp, Tensor& hidden,
                       Arena& workspace, Tensor& logits) const;

  static int64_t WorkspaceBytes(const ModelConfig& config, const TensorParallel& tp,
                                int64_t rows);

 private:
  Tensor final_norm_;  // [hidden]
  Weight lm_head_;     // [local vocab, hidden]
  int64_t vocab_size_ = 0;
  float eps_ = 0.0f;
};

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_MODEL_VOCAB_PARALLEL_H_
