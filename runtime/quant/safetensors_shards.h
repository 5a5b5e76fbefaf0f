// Writing a checkpoint as Hugging Face's sharded safetensors layout, one tensor at a time:
//   model-00001-of-0000N.safetensors ... model-0000N-of-0000N.safetensors
//   model.safetensors.index.json   {"metadata": {"total_size": BYTES}, "weight_map": {tensor:
//   file}}
// The shard layout is decided before any data is written, from the tensors' sizes (which a writer
// knows from the input headers), so every file gets its final name and its header first, and tensor
// data is then streamed after the header without being held in memory.
#ifndef SPARKSTACK_RUNTIME_QUANT_SAFETENSORS_SHARDS_H_
#define SPARKSTACK_RUNTIME_QUANT_SAFETENSORS_SHARDS_H_

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/model/safetensors.h"

namespace sparkstack {

// save_pretrained's default max_shard_size is "5GB"; sparkstack uses 5 GiB.
inline constexpr uint64_t kDefaultMaxShardBytes = 5ull << 30;

// Splits units of `unit_bytes` (kept in order; a unit is a group of tensors that stay in one file)
// into shards: a shard is closed when adding the next unit would take it past `max_shard_bytes`,
// so a unit larger than the limit gets a shard of its own. Returns each unit's shard index
// (0-based, non-decreasing). max_shard_bytes must be positive.
std::vector<int> AssignShards(const std::vector<uint64_t>& unit_bytes, uint64_t max_shard_bytes);

// "model-00002-of-00005.safetensors" for index 1 of 5 (Hugging Face's naming; 5 digits, more if
// `count` needs them).
std::string ShardFileName(int index, int count);

// The index file's JSON text, as save_pretrained writes it (2-space indent, keys sorted).
std::string ShardIndexJson(uint64_t total_size,
                           const std::map<std::string, std::string>& weight_map);

// One safetensors file written front to back: Open writes the header for `entries` (offsets as they
// will be written, back to back from 0 in the order given), Append adds the next tensor's bytes,
// Close checks that every planned byte arrived. Not copyable; a writer dropped before Close
// removes its file.
class StreamingSafetensorsWriter {
 public:
  // Creates `path` (replacing it) and writes the header. InvalidArgument for entries that are not
  // back to back from 0, duplicate names; Internal / NotFound / PermissionDenied from the OS (path
  // named).
  static absl::StatusOr<StreamingSafetensorsWriter> Open(
      const std::string& path, const std::vector<SafetensorsEntry>& entries,
      const std::map<std::string, std::string>& metadata);

  StreamingSafetensorsWriter(StreamingSafetensorsWriter&& other) noexcept;
  StreamingSafetensorsWriter& operator=(StreamingSafetensorsWriter&&) = delete;
  StreamingSafetensorsWriter(const StreamingSafetensorsWriter&) = delete;
  ~StreamingSafetensorsWriter();

  // Writes the data of the next entry, which must be called `name` and be `nbytes` long (Internal,
  // naming the tensor and the file, otherwise: a planning bug, not bad input).
  absl::Status Append(const std::string& name, const void* data, uint64_t nbytes);

  // Flushes and closes. Internal if entries are missing or the OS reports an error.
  absl::Status Close();

 private:
  StreamingSafetensorsWriter(std::string path, std::vector<SafetensorsEntry> entries,
                             std::FILE* file)
      : path_(std::move(path)), entries_(std::move(entries)), file_(file) {}

  std::string path_;
  std::vector<SafetensorsEntry> entries_;
  size_t next_ = 0;
  std::FILE* file_ = nullptr;
};

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_QUANT_SAFETENSORS_SHARDS_H_
