// A Hugging Face model directory's weights: one or more safetensors files presented as one set of
// named tensors.
#ifndef SPARKSTACK_RUNTIME_MODEL_CHECKPOINT_H_
#define SPARKSTACK_RUNTIME_MODEL_CHECKPOINT_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/core/tensor.h"
#include "runtime/model/safetensors.h"

namespace sparkstack {

// Copyable and cheap to copy (copies share the mapped files). Immutable after Open: every method
// may be called from any thread.
class Checkpoint {
 public:
  // An empty checkpoint (no tensors, empty dir); useful as a placeholder member.
  Checkpoint();

  // Opens the weights of the model directory `dir`, trying in order:
  //   1. DIR/model.safetensors
  //   2. DIR/model.safetensors.index.json: {"weight_map": {tensor name: shard file name}} with the
  //      shards beside it (the "metadata" key is ignored)
  //   3. the only *.safetensors file in DIR, if there is exactly one.
  // `dir` may also name a single .safetensors file. Every shard is opened and validated up front
  // (see SafetensorsFile::Open). Errors name the file: NotFound if nothing matches (listing what
  // was looked for) or a shard is missing; InvalidArgument if the index is not well-formed JSON
  // with a "weight_map" object of strings, a shard name is absolute or leaves DIR, a tensor of the
  // weight_map is not in its shard, a tensor is in two shards, or several *.safetensors files
  // exist without an index.
  static absl::StatusOr<Checkpoint> Open(const std::string& dir);

  // The model directory.
  const std::string& dir() const;

  // The safetensors files, in shard order.
  const std::vector<std::shared_ptr<SafetensorsFile>>& files() const;

  bool Contains(std::string_view name) const;

  // A zero-copy, read-only tensor borrowing the mapping (see SafetensorsFile::Get; it may be
  // unaligned). NotFound naming the tensor and the directory if absent.
  absl::StatusOr<Tensor> Get(std::string_view name) const;

  // Dtype, shape and offsets without touching tensor data; nullptr if absent. Valid while any copy
  // of this Checkpoint lives.
  const SafetensorsEntry* Find(std::string_view name) const;

  // The file holding `name`, or nullptr.
  const SafetensorsFile* FileOf(std::string_view name) const;

  // All tensor names, sorted.
  std::vector<std::string> TensorNames() const;

  // Total bytes of tensor data over all files.
  uint64_t TotalTensorBytes() const;

 private:
  struct Location {
    const SafetensorsFile* file;
    const SafetensorsEntry* entry;
  };
  struct State {
    std::string dir;
    std::vector<std::shared_ptr<SafetensorsFile>> files;
    std::map<std::string, Location, std::less<>> tensors;
  };

  explicit Checkpoint(std::shared_ptr<const State> state) : state_(std::move(state)) {}

  std::shared_ptr<const State> state_;
};

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_MODEL_CHECKPOINT_H_
