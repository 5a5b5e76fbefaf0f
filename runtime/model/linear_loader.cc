#include "runtime/model/linear_loader.h"

#include "absl/strings/str_cat.h"
#include "runtime/core/status_macros.h"
#include "runtime/quant/quant_scheme.h"
#include "runtime/quant/weight_loader.h"

namespace sparkstack {

absl::StatusOr<Tensor> LoadFloatTensor(const Checkpoint& checkpoint, const std::string& name,
                                       const Shape& shape) {
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor tensor, checkpoint.Get(name));
  const DType dtype = tensor.dtype();
  if (dtype != DType::kF32 && dtype != DType::kF16 && dtype != DType::kBF16) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' in ", checkpoint.dir(),
                                                   " is ", tensor.DebugString(),
                                                   ", expected f32, f16 or bf16"));
  }
  if (tensor.shape() != shape) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' in ", checkpoint.dir(),
                                                   " has shape ", ShapeToString(tensor.shape()),
                                                   ", expected ", ShapeToString(shape)));
  }
  return tensor;
}

absl::StatusOr<Weight> LoadLinear(const Checkpoint& checkpoint, const std::string& prefix) {
  // Dense, ModelOpt NVFP4 or compressed-tensors NVFP4, decided by the checkpoint's tensors and
  // checked against its quantization config (runtime/quant/weight_loader.h). The config files are
  // small; reading them per layer keeps this function stateless.
  SPARKSTACK_ASSIGN_OR_RETURN(QuantScheme scheme, ReadQuantScheme(checkpoint.dir()));
  return LoadLinearWeight(checkpoint, scheme, prefix);
}

absl::StatusOr<Weight> LoadShardedLinear(const Checkpoint& checkpoint, const std::string& prefix,
                                         int64_t rows, int64_t cols, Range row_slice,
                                         Range col_slice, Backend& backend) {
  SPARKSTACK_ASSIGN_OR_RETURN(Weight w, LoadLinear(checkpoint, prefix));
  if (w.rows() != rows || w.cols() != cols) {
    return absl::InvalidArgumentError(absl::StrCat("'", prefix, ".weight' in ", checkpoint.dir(),
                                                   " is ", w.DebugString(), ", expected [", rows,
                                                   ", ", cols, "]"));
  }
  if (row_slice.begin != 0 || row_slice.end != rows) {
    SPARKSTACK_ASSIGN_OR_RETURN(w, w.SliceRows(row_slice.begin, row_slice.end));
  }
  if (col_slice.begin != 0 || col_slice.end != cols) {
    SPARKSTACK_ASSIGN_OR_RETURN(w, w.SliceCols(col_slice.begin, col_slice.end));
  }
  return backend.PrepareWeight(w);
}

}  // namespace sparkstack
