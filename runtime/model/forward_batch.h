// ForwardBatch: everything a model shard sees of one engine step. Several sequences, each with a
// span of query tokens (a decode's one token or a chunk of a prompt), decodes first; the runner
// builds it from the StepPlan and writes its tensors to the device once per step.
#ifndef SPARKSTACK_RUNTIME_MODEL_FORWARD_BATCH_H_
#define SPARKSTACK_RUNTIME_MODEL_FORWARD_BATCH_H_

#include <cstdint>

#include "runtime/backend/attention_metadata.h"
#include "runtime/core/tensor.h"

namespace sparkstack {

struct ForwardBatch {
  Tensor token_ids;  // i32 [T], each in [0, vocab_size) (first pipeline stage reads them)
  Tensor positions;  // i32 [T], each < the model's max_model_len
  AttentionMetadata attention;
  // i32 [R], ascending: the batch rows whose logits the last stage computes (each sampling
  // sequence's last token). R may be 0 (a step of middle prefill chunks only).
  Tensor logits_rows;

  int64_t num_tokens() const { return attention.num_tokens; }
  int64_t num_logits() const { return logits_rows.defined() ? logits_rows.numel() : 0; }
};

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_MODEL_FORWARD_BATCH_H_
