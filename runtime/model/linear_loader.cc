#include "runtime/model/linear_loader.h"

#include "absl/strings/str_cat.h"
#include "runtime/core/status_macros.h"

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
  const std::string name = prefix + ".weight";
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor tensor, checkpoint.Get(name));
  auto weight = Weight::Dense(std::move(tensor));
  if (!weight.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' in ", checkpoint.dir(),
                                                   ": ", weight.status().message()));
  }
  return weight;
}

}  // namespace sparkstack
