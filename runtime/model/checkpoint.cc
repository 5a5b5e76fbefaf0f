#include "runtime/model/checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "runtime/core/read_file.h"
#include "runtime/core/status_macros.h"

namespace sparkstack {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr char kSingleFile[] = "model.safetensors";
constexpr char kIndexFile[] = "model.safetensors.index.json";

// Whether anything (file, FIFO, device, ...) is at `p`. What is there is checked by whoever
// opens it, so that a FIFO called model.safetensors is reported, not silently skipped.
bool Exists(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

// A shard name from the index must stay inside the model directory.
bool IsSafeRelativePath(const std::string& name) {
  if (name.empty()) return false;
  const fs::path p(name);
  if (p.is_absolute() || p.has_root_name()) return false;
  for (const fs::path& part : p) {
    if (part == "..") return false;
  }
  return true;
}

// Parses the index: shard file names in first-seen order and the weight map.
absl::Status ParseIndex(const std::string& index_path, std::vector<std::string>* shards,
                        std::map<std::string, std::string>* weight_map) {
  SPARKSTACK_ASSIGN_OR_RETURN(std::string text,
                              ReadRegularFile(index_path, kMaxIndexFileBytes, "checkpoint index",
                                              kJsonDomBytesPerTextByte));
  auto error = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat("checkpoint index ", index_path, ": ", what));
  };
  Json root;
  try {
    root = Json::parse(text);
  } catch (const Json::exception& e) {
    return error(absl::StrCat("not valid JSON: ", e.what()));
  }
  if (!root.is_object()) return error("must be a JSON object");
  auto map_it = root.find("weight_map");
  if (map_it == root.end()) return error("missing 'weight_map'");
  if (!map_it->is_object()) {
    return error(absl::StrCat("'weight_map' must be an object, found ", map_it->type_name()));
  }
  std::set<std::string> seen;
  for (auto it = map_it->begin(); it != map_it->end(); ++it) {
    if (!it->is_string()) {
      return error(absl::StrCat("weight_map entry for tensor '", it.key(),
                                "' must be a file name string, found ", it->type_name()));
    }
    const std::string& raw = it->get_ref<const std::string&>();
    if (!IsSafeRelativePath(raw)) {
      return error(absl::StrCat("weight_map entry for tensor '", it.key(), "' names shard '",
                                raw, "', which is not a file inside the model directory"));
    }
    // "./a.safetensors" and "a.safetensors" are the same shard.
    const std::string shard = fs::path(raw).lexically_normal().string();
    (*weight_map)[it.key()] = shard;
    if (seen.insert(shard).second) shards->push_back(shard);
  }
  return absl::OkStatus();
}

}  // namespace

Checkpoint::Checkpoint() : state_(std::make_shared<State>()) {}

absl::StatusOr<Checkpoint> Checkpoint::Open(const std::string& dir) {
  auto state = std::make_shared<State>();
  std::vector<std::string> shard_paths;
  std::map<std::string, std::string> weight_map;  // empty unless an index is used
  std::string index_path;

  std::error_code ec;
  if (Exists(dir) && !fs::is_directory(dir, ec)) {
    // A single .safetensors file named directly.
    state->dir = fs::path(dir).parent_path().string();
    if (state->dir.empty()) state->dir = ".";
    shard_paths.push_back(dir);
  } else if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat("model directory ", dir, " does not exist"));
  } else {
    state->dir = dir;
    const fs::path base(dir);
    if (Exists(base / kSingleFile)) {
      shard_paths.push_back((base / kSingleFile).string());
    } else if (Exists(base / kIndexFile)) {
      index_path = (base / kIndexFile).string();
      std::vector<std::string> shards;
      SPARKSTACK_RETURN_IF_ERROR(ParseIndex(index_path, &shards, &weight_map));
      if (shards.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("checkpoint index ", index_path, ": 'weight_map' is empty"));
      }
      for (const std::string& shard : shards) {
        const fs::path shard_path = base / shard;
        if (!Exists(shard_path)) {
          return absl::NotFoundError(absl::StrCat("checkpoint index ", index_path,
                                                  " names shard ", shard, ", but ",
                                                  shard_path.string(), " does not exist"));
        }
        shard_paths.push_back(shard_path.string());
      }
    } else {
      std::vector<std::string> found;
      for (const auto& item : fs::directory_iterator(base, ec)) {
        if (item.path().extension() == ".safetensors") {
          found.push_back(item.path().string());
        }
      }
      std::sort(found.begin(), found.end());
      if (found.empty()) {
        return absl::NotFoundError(absl::StrCat("no weights in model directory ", dir,
                                                ": looked for ", kSingleFile, ", ", kIndexFile,
                                                " and *.safetensors"));
      }
      if (found.size() > 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            "model directory ", dir, " has ", found.size(), " .safetensors files (",
            absl::StrJoin(found, ", "), ") but no ", kIndexFile, " saying how they fit together"));
      }
      shard_paths.push_back(found.front());
    }
  }

  for (const std::string& path : shard_paths) {
    SPARKSTACK_ASSIGN_OR_RETURN(std::shared_ptr<SafetensorsFile> file, SafetensorsFile::Open(path));
    for (const SafetensorsEntry& entry : file->entries()) {
      auto [it, inserted] = state->tensors.emplace(entry.name, Location{file.get(), &entry});
      if (!inserted) {
        return absl::InvalidArgumentError(absl::StrCat("tensor '", entry.name, "' is in two shards: ",
                                                       it->second.file->path(), " and ", path));
      }
    }
    state->files.push_back(std::move(file));
  }

  for (const auto& [name, shard] : weight_map) {
    const std::string shard_path = (fs::path(state->dir) / shard).string();
    auto it = state->tensors.find(name);
    if (it == state->tensors.end() || it->second.file->path() != shard_path) {
      return absl::InvalidArgumentError(absl::StrCat(
          "checkpoint index ", index_path, " maps tensor '", name, "' to ", shard,
          ", but ", shard_path, " does not contain it",
          it == state->tensors.end() ? "" : absl::StrCat(" (it is in ", it->second.file->path(), ")")));
    }
  }
  return Checkpoint(std::move(state));
}

const std::string& Checkpoint::dir() const { return state_->dir; }

const std::vector<std::shared_ptr<SafetensorsFile>>& Checkpoint::files() const {
  return state_->files;
}

bool Checkpoint::Contains(std::string_view name) const {
  return state_->tensors.find(name) != state_->tensors.end();
}

const SafetensorsEntry* Checkpoint::Find(std::string_view name) const {
  auto it = state_->tensors.find(name);
  return it == state_->tensors.end() ? nullptr : it->second.entry;
}

const SafetensorsFile* Checkpoint::FileOf(std::string_view name) const {
  auto it = state_->tensors.find(name);
  return it == state_->tensors.end() ? nullptr : it->second.file;
}

absl::StatusOr<Tensor> Checkpoint::Get(std::string_view name) const {
  auto it = state_->tensors.find(name);
  if (it == state_->tensors.end()) {
    return absl::NotFoundError(absl::StrCat("tensor '", std::string(name),
                                            "' not found in checkpoint ", state_->dir));
  }
  return it->second.file->Get(name);
}

std::vector<std::string> Checkpoint::TensorNames() const {
  std::vector<std::string> names;
  names.reserve(state_->tensors.size());
  for (const auto& [name, location] : state_->tensors) names.push_back(name);
  return names;
}

uint64_t Checkpoint::TotalTensorBytes() const {
  uint64_t total = 0;
  for (const auto& file : state_->files) {
    for (const SafetensorsEntry& e : file->entries()) total += e.nbytes();
  }
  return total;
}

}  // namespace sparkstack
