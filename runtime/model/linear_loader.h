// Reads the weight of one linear layer from a checkpoint, in whatever format it is stored.
#ifndef SPARKSTACK_RUNTIME_MODEL_LINEAR_LOADER_H_
#define SPARKSTACK_RUNTIME_MODEL_LINEAR_LOADER_H_

#include <string>

#include "absl/status/statusor.h"
#include "runtime/backend/backend.h"
#include "runtime/core/weight.h"
#include "runtime/model/checkpoint.h"
#include "runtime/model/sharding.h"

namespace sparkstack {

// The weight of the linear layer `prefix` ("model.layers.0.self_attn.q_proj"), dense f32/f16/bf16
// [out, in] or NVFP4 (ModelOpt or compressed-tensors; see runtime/quant/weight_loader.h for the
// tensors and errors). Zero-copy: the weight borrows the mapped checkpoint.
absl::StatusOr<Weight> LoadLinear(const Checkpoint& checkpoint, const std::string& prefix);

// LoadLinear, checked to be [rows, cols] in the checkpoint, cut to this rank's `row_slice` and
// `col_slice` (tensor-parallel sharding; NVFP4 column slices keep whole 16-element blocks), and
// prepared for `backend`.
absl::StatusOr<Weight> LoadShardedLinear(const Checkpoint& checkpoint, const std::string& prefix,
                                         int64_t rows, int64_t cols, Range row_slice,
                                         Range col_slice, Backend& backend);

// A 1-D (norm) or 2-D (embedding) float tensor `name`, checked against `shape`.
absl::StatusOr<Tensor> LoadFloatTensor(const Checkpoint& checkpoint, const std::string& name,
                                       const Shape& shape);

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_MODEL_LINEAR_LOADER_H_
