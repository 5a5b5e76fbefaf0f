#include "runtime/model/vocab_parallel.h"

#include "absl/strings/str_cat.h"
#include "runtime/core/status_macros.h"
#include "runtime/model/linear_loader.h"
#include "runtime/model/sharding.h"

namespace sparkstack {
namespace {

int64_t ChunkWidth(int64_t vocab, const TensorParallel& tp) {
  return (vocab + tp.size - 1) / tp.size;
}

}  // namespace

absl::StatusOr<VocabEmbedding> VocabEmbedding::Load(const Checkpoint& checkpoint,
                                                    const std::string& name,
                                                    const ModelConfig& config,
                                                    const TensorParallel& tp, Backend& backend) {
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor full,
                              LoadFloatTensor(checkpoint, name, {config.vocab_size,
                                                                 config.hidden_size}));
  const Range local = ChunkedSplit(config.vocab_size, tp.size, tp.rank);
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor rows, full.SliceRows(local.begin, local.end));
  VocabEmbedding embedding;
  SPARKSTACK_ASSIGN_OR_RETURN(embedding.table_, backend.Upload(rows));
  embedding.first_id_ = local.begin;
  return embedding;
}

absl::Status VocabEmbedding::Forward(Backend& backend, const TensorParallel& tp, const Tensor& ids,
                                     Tensor& out) const {
  SPARKSTACK_RETURN_IF_ERROR(backend.Embedding(table_, ids, first_id_, out));
  return tp.AllReduce(out);
}

absl::StatusOr<LogitsHead> LogitsHead::Load(const Checkpoint& checkpoint,
                                            const ModelConfig& config, const TensorParallel& tp,
                                            Backend& backend) {
  LogitsHead head;
  head.vocab_size_ = config.vocab_size;
  head.eps_ = static_cast<float>(config.rms_norm_eps);
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor norm, LoadFloatTensor(checkpoint, "model.norm.weight",
                                                           {config.hidden_size}));
  SPARKSTACK_ASSIGN_OR_RETURN(head.final_norm_, backend.Upload(norm));
  const Range local = ChunkedSplit(config.vocab_size, tp.size, tp.rank);
  const Range all_hidden = {0, config.hidden_size};
  if (config.tie_word_embeddings) {
    SPARKSTACK_ASSIGN_OR_RETURN(Tensor full,
                                LoadFloatTensor(checkpoint, "model.embed_tokens.weight",
                                                {config.vocab_size, config.hidden_size}));
    SPARKSTACK_ASSIGN_OR_RETURN(Tensor rows, full.SliceRows(local.begin, local.end));
    SPARKSTACK_ASSIGN_OR_RETURN(Weight w, Weight::Dense(rows));
    SPARKSTACK_ASSIGN_OR_RETURN(head.lm_head_, backend.PrepareWeight(w));
  } else {
    SPARKSTACK_ASSIGN_OR_RETURN(
        head.lm_head_, LoadShardedLinear(checkpoint, "lm_head", config.vocab_size,
                                         config.hidden_size, local, all_hidden, backend));
  }
  return head;
}

int64_t LogitsHead::WorkspaceBytes(const ModelConfig& config, const TensorParallel& tp,
                                   int64_t rows) {
  const int64_t chunk = ChunkWidth(config.vocab_size, tp);
  if (tp.size == 1) return 0;
  // This rank's logits, its padded slot, and the gathered slots.
  return static_cast<int64_t>(2 * Arena::Reserved(rows * chunk * sizeof(float)) +
                              Arena::Reserved(tp.size * rows * chunk * sizeof(float)));
}

absl::Status LogitsHead::Forward(Backend& backend, const TensorParallel& tp, Tensor& hidden,
                                 Arena& workspace, Tensor& logits) const {
  const int64_t rows = hidden.dim(0);
  if (logits.rank() != 2 || logits.dim(0) != rows || logits.dim(1) != vocab_size_) {
    return absl::InvalidArgumentError(absl::StrCat("logits are ", logits.DebugString(),
                                                   ", expected [", rows, ", ", vocab_size_, "]"));
  }
  SPARKSTACK_RETURN_IF_ERROR(backend.RmsNorm(hidden, final_norm_, eps_, hidden));
  if (tp.size == 1) return backend.Linear(hidden, lm_head_, logits);

  // Every rank computes its chunk into a slot of the common width, the slots are gathered, and
  // each rank's real columns are laid side by side.
  const int64_t chunk = ChunkWidth(vocab_size_, tp);
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor mine, workspace.Take(DType::kF32, {rows, chunk}));
  if (lm_head_.rows() > 0) {
    SPARKSTACK_ASSIGN_OR_RETURN(Tensor local,
                                workspace.Take(DType::kF32, {rows, lm_head_.rows()}));
    SPARKSTACK_RETURN_IF_ERROR(backend.Linear(hidden, lm_head_, local));
    SPARKSTACK_RETURN_IF_ERROR(backend.CopyColumns(local, 0, mine, 0, lm_head_.rows()));
  }
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor gathered,
                              workspace.Take(DType::kF32, {tp.size, rows, chunk}));
  SPARKSTACK_RETURN_IF_ERROR(tp.AllGather(mine, gathered));
  for (int rank = 0; rank < tp.size; ++rank) {
    const Range part = ChunkedSplit(vocab_size_, tp.size, rank);
    if (part.size() == 0) continue;
    SPARKSTACK_ASSIGN_OR_RETURN(Tensor slot, gathered.SliceRows(rank, rank + 1));
    SPARKSTACK_ASSIGN_OR_RETURN(slot, slot.Reshape({rows, chunk}));
    SPARKSTACK_RETURN_IF_ERROR(backend.CopyColumns(slot, 0, logits, part.begin, part.size()));
  }
  return absl::OkStatus();
}

}  // namespace sparkstack
