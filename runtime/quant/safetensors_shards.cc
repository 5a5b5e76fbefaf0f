#include "runtime/quant/safetensors_shards.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "runtime/core/status_macros.h"

namespace sparkstack {

std::vector<int> AssignShards(const std::vector<uint64_t>& unit_bytes, uint64_t max_shard_bytes) {
  std::vector<int> shard_of(unit_bytes.size());
  int shard = 0;
  uint64_t used = 0;  // bytes in the current shard
  for (size_t i = 0; i < unit_bytes.size(); ++i) {
    if (used > 0 && unit_bytes[i] > max_shard_bytes - std::min(used, max_shard_bytes)) {
      ++shard;
      used = 0;
    }
    shard_of[i] = shard;
    used += unit_bytes[i];
  }
  return shard_of;
}

std::string ShardFileName(int index, int count) {
  return absl::StrFormat("model-%05d-of-%05d.safetensors", index + 1, count);
}

std::string ShardIndexJson(uint64_t total_size,
                           const std::map<std::string, std::string>& weight_map) {
  nlohmann::json index = {{"metadata", {{"total_size", total_size}}},
                          {"weight_map", nlohmann::json(weight_map)}};
  return index.dump(2) + "\n";
}

absl::StatusOr<StreamingSafetensorsWriter> StreamingSafetensorsWriter::Open(
    const std::string& path, const std::vector<SafetensorsEntry>& entries,
    const std::map<std::string, std::string>& metadata) {
  uint64_t offset = 0;
  for (const SafetensorsEntry& e : entries) {
    if (e.begin != offset || e.end < e.begin) {
      return absl::InvalidArgumentError(absl::StrCat("cannot write safetensors file ", path,
                                                     ": tensor '", e.name,
                                                     "' does not follow the previous one"));
    }
    offset = e.end;
  }
  SPARKSTACK_ASSIGN_OR_RETURN(const std::string header,
                              EncodeSafetensorsHeader(entries, metadata, path));
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) {
    return absl::InternalError(absl::StrCat("cannot create ", path, ": ", std::strerror(errno)));
  }
  StreamingSafetensorsWriter writer(path, entries, file);
  if (std::fwrite(header.data(), 1, header.size(), file) != header.size()) {
    return absl::InternalError(absl::StrCat("error writing ", path, ": ", std::strerror(errno)));
  }
  return writer;
}

StreamingSafetensorsWriter::StreamingSafetensorsWriter(StreamingSafetensorsWriter&& other) noexcept
    : path_(std::move(other.path_)),
      entries_(std::move(other.entries_)),
      next_(other.next_),
      file_(std::exchange(other.file_, nullptr)) {}

StreamingSafetensorsWriter::~StreamingSafetensorsWriter() {
  if (file_ == nullptr) return;
  std::fclose(file_);
  std::remove(path_.c_str());
}

absl::Status StreamingSafetensorsWriter::Append(const std::string& name, const void* data,
                                                uint64_t nbytes) {
  if (file_ == nullptr) return absl::InternalError(absl::StrCat(path_, " is closed"));
  if (next_ >= entries_.size() || entries_[next_].name != name ||
      entries_[next_].nbytes() != nbytes) {
    return absl::InternalError(absl::StrCat(
        "writing ", path_, ": got tensor '", name, "' of ", nbytes, " bytes, but the header plans ",
        next_ < entries_.size()
            ? absl::StrCat("'", entries_[next_].name, "' of ", entries_[next_].nbytes(), " bytes")
            : std::string("no more tensors")));
  }
  if (nbytes > 0 && std::fwrite(data, 1, nbytes, file_) != nbytes) {
    return absl::InternalError(absl::StrCat("error writing ", path_, ": ", std::strerror(errno)));
  }
  ++next_;
  return absl::OkStatus();
}

absl::Status StreamingSafetensorsWriter::Close() {
  if (file_ == nullptr) return absl::InternalError(absl::StrCat(path_, " is closed"));
  if (next_ != entries_.size()) {
    return absl::InternalError(
        absl::StrCat("closing ", path_, " after ", next_, " of ", entries_.size(), " tensors"));
  }
  const int closed = std::fclose(std::exchange(file_, nullptr));
  if (closed != 0) {
    return absl::InternalError(absl::StrCat("error writing ", path_, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace sparkstack
