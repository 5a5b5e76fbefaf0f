#include "runtime/deploy/checkpoint_census.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "runtime/core/status_macros.h"

namespace sparkstack::deploy {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr char kSingleFile[] = "model.safetensors";
constexpr char kIndexFile[] = "model.safetensors.index.json";
constexpr std::string_view kLayerPrefix = "model.layers.";

bool IsRegularFile(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

std::optional<int64_t> ParseIndex(std::string_view text) {
  int64_t value = 0;
  if (text.empty()) return std::nullopt;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

uint64_t NumElements(const Shape& shape) {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

// Shards named by the index's weight_map, in first-mention order.
absl::StatusOr<std::vector<std::string>> IndexShards(const fs::path& base,
                                                     const std::string& index_path) {
  std::ifstream in(index_path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", index_path));
  std::ostringstream ss;
  ss << in.rdbuf();
  const Json root = Json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  auto error = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat("checkpoint index ", index_path, ": ", what));
  };
  if (root.is_discarded() || !root.is_object()) return error("is not a JSON object");
  auto map = root.find("weight_map");
  if (map == root.end() || !map->is_object() || map->empty()) {
    return error("needs a non-empty 'weight_map' object");
  }
  std::vector<std::string> shards;
  std::set<std::string> seen;
  for (auto it = map->begin(); it != map->end(); ++it) {
    if (!it->is_string()) {
      return error(
          absl::StrCat("weight_map entry for tensor '", it.key(), "' must be a file name string"));
    }
    const fs::path shard = fs::path(it->get<std::string>()).lexically_normal();
    if (shard.empty() || shard.is_absolute() || *shard.begin() == "..") {
      return error(absl::StrCat("weight_map entry for tensor '", it.key(), "' names shard '",
                                it->get<std::string>(), "' outside the model directory"));
    }
    if (!seen.insert(shard.string()).second) continue;
    if (!IsRegularFile(base / shard)) {
      return absl::NotFoundError(absl::StrCat("checkpoint index ", index_path, " names shard ",
                                              shard.string(), ", but ", (base / shard).string(),
                                              " does not exist"));
    }
    shards.push_back((base / shard).string());
  }
  return shards;
}

// "model.layers.12.mlp.experts.3.w1.weight" -> 12 and the rest after the layer number.
bool SplitLayer(const std::string& name, int64_t* layer, std::string_view* rest) {
  if (!name.starts_with(kLayerPrefix)) return false;
  std::string_view tail = std::string_view(name).substr(kLayerPrefix.size());
  const size_t dot = tail.find('.');
  if (dot == std::string_view::npos) return false;
  const std::optional<int64_t> index = ParseIndex(tail.substr(0, dot));
  if (!index) return false;
  *layer = *index;
  *rest = tail.substr(dot + 1);
  return true;
}

ShardRole LayerRole(std::string_view rest, const SafetensorsEntry& entry, int64_t* expert) {
  const std::vector<absl::string_view> parts =
      absl::StrSplit(absl::string_view(rest.data(), rest.size()), '.');
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    if (parts[i] == "experts") {
      if (std::optional<int64_t> e = ParseIndex({parts[i + 1].data(), parts[i + 1].size()})) {
        *expert = *e;
        return ShardRole::kExpert;
      }
    }
  }
  // Scalars (NVFP4 global and input scales) are replicated.
  if (NumElements(entry.shape) <= 1) return ShardRole::kReplicated;
  for (absl::string_view part : parts) {
    // The router and its correction bias are read whole by every rank.
    if (part == "gate" || part == "e_score_correction_bias") return ShardRole::kReplicated;
    // MLA's down-projections to the latents are replicated; the up-projections are per head.
    if (part == "q_a_proj" || part == "kv_a_proj_with_mqa") return ShardRole::kReplicated;
    if (part == "k_proj" || part == "v_proj") return ShardRole::kKvSharded;
    if (absl::StrContains(part, "norm")) return ShardRole::kReplicated;
  }
  return ShardRole::kSharded;
}

}  // namespace

absl::StatusOr<std::vector<SafetensorsEntry>> ReadSafetensorsHeader(const std::string& path,
                                                                    bool* has_data) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) return absl::NotFoundError(absl::StrCat("cannot read ", path, ": ", ec.message()));
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::PermissionDeniedError(absl::StrCat("cannot open ", path));
  if (size < 8) {
    return absl::DataLossError(absl::StrCat("safetensors file ", path, " is ", size,
                                            " bytes long, shorter than its 8-byte header length"));
  }
  unsigned char length_bytes[8];
  in.read(reinterpret_cast<char*>(length_bytes), 8);
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | length_bytes[i];
  if (header_size > kMaxSafetensorsHeaderBytes || header_size > size - 8) {
    return absl::InvalidArgumentError(absl::StrCat("safetensors file ", path, ": header length ",
                                                   header_size, " runs past the end of the file (",
                                                   size, " bytes)"));
  }
  std::string header(header_size, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_size));
  if (!in) return absl::DataLossError(absl::StrCat("error reading the header of ", path));

  std::vector<SafetensorsEntry> entries;
  std::map<std::string, std::string> metadata;
  SPARKSTACK_RETURN_IF_ERROR(ParseSafetensorsHeader(header, std::numeric_limits<uint64_t>::max(),
                                                    path, &entries, &metadata));
  uint64_t declared = 0;
  for (const SafetensorsEntry& e : entries) declared = std::max(declared, e.end);
  const uint64_t present = size - 8 - header_size;
  *has_data = present > 0 || declared == 0;
  if (present > 0 && present < declared) {
    return absl::DataLossError(absl::StrCat("safetensors file ", path, " is truncated: its header ",
                                            "declares ", declared,
                                            " bytes of data, the file holds ", present));
  }
  return entries;
}

absl::StatusOr<std::vector<std::string>> FindCheckpointShards(const std::string& model_dir) {
  std::error_code ec;
  if (!fs::is_directory(model_dir, ec)) {
    return absl::NotFoundError(absl::StrCat("model directory ", model_dir, " does not exist"));
  }
  const fs::path base(model_dir);
  if (IsRegularFile(base / kSingleFile)) return std::vector<std::string>{(base / kSingleFile)};
  if (IsRegularFile(base / kIndexFile)) return IndexShards(base, (base / kIndexFile).string());
  std::vector<std::string> found;
  for (const auto& item : fs::directory_iterator(base, ec)) {
    if (item.path().extension() == ".safetensors" && IsRegularFile(item.path())) {
      found.push_back(item.path().string());
    }
  }
  if (found.empty()) {
    return absl::NotFoundError(absl::StrCat("no weights in model directory ", model_dir,
                                            ": looked for ", kSingleFile, ", ", kIndexFile,
                                            " and *.safetensors"));
  }
  if (found.size() > 1) {
    return absl::InvalidArgumentError(absl::StrCat("model directory ", model_dir, " holds ",
                                                   found.size(), " *.safetensors files but no ",
                                                   kIndexFile, " to say which are the model"));
  }
  return found;
}

TensorCensus ClassifyTensor(const SafetensorsEntry& entry, const ModelConfig& config,
                            const std::function<bool(const std::string&)>& exists) {
  TensorCensus t;
  t.name = entry.name;
  t.dtype = entry.dtype;
  t.shape = entry.shape;
  t.checkpoint_bytes = entry.nbytes();
  t.resident_bytes = entry.nbytes();

  int64_t layer = -1;
  std::string_view rest;
  if (SplitLayer(entry.name, &layer, &rest)) {
    t.layer = layer;
    t.placement = layer < config.num_layers ? Placement::kLayer : Placement::kSkipped;
    t.role = LayerRole(rest, entry, &t.expert);
  } else if (entry.name.starts_with("model.embed_tokens.")) {
    t.placement = Placement::kEmbedding;
    t.role = ShardRole::kSharded;
  } else if (entry.name.starts_with("lm_head.")) {
    t.placement = Placement::kHead;
    t.role = NumElements(entry.shape) <= 1 ? ShardRole::kReplicated : ShardRole::kSharded;
  } else if (entry.name.starts_with("model.norm.")) {
    t.placement = Placement::kHead;
    t.role = ShardRole::kReplicated;
  }
  if (t.placement == Placement::kSkipped) t.resident_bytes = 0;

  const uint64_t numel = NumElements(entry.shape);
  const bool is_weight = entry.name.ends_with(".weight");
  const std::string stem =
      is_weight ? entry.name.substr(0, entry.name.size() - std::string_view(".weight").size())
                : std::string();
  if (entry.name.ends_with(".weight_scale_inv")) {
    // DeepSeek FP8 block scales fold into the NVFP4 scales at load.
    t.resident_bytes = 0;
  } else if (is_weight && entry.dtype == DType::kF8E4M3 && exists(stem + ".weight_scale_inv")) {
    // FP8 -> NVFP4 at load: e2m1 codes, an e4m3 scale per 16, one f32 global scale.
    t.fp4 = true;
    if (t.placement != Placement::kSkipped) t.resident_bytes = numel / 2 + numel / 16 + 4;
  } else if (entry.dtype == DType::kU8 && (entry.name.ends_with(".weight_packed") ||
                                           (is_weight && exists(stem + ".weight_scale")))) {
    t.fp4 = true;
  }
  const bool matrix = entry.shape.size() == 2 && t.placement != Placement::kEmbedding &&
                      (is_weight || entry.name.ends_with(".weight_packed"));
  if (matrix) t.matmul_elements = entry.dtype == DType::kU8 && t.fp4 ? 2 * numel : numel;
  return t;
}

absl::StatusOr<CheckpointCensus> TakeCensus(const std::string& model_dir) {
  CheckpointCensus census;
  census.model_dir = model_dir;
  SPARKSTACK_ASSIGN_OR_RETURN(census.config, LoadModelConfig(model_dir));
  SPARKSTACK_ASSIGN_OR_RETURN(census.files, FindCheckpointShards(model_dir));

  std::vector<std::pair<SafetensorsEntry, size_t>> entries;  // entry, file index
  std::map<std::string, size_t, std::less<>> where;          // name -> file index
  for (size_t f = 0; f < census.files.size(); ++f) {
    bool has_data = true;
    SPARKSTACK_ASSIGN_OR_RETURN(std::vector<SafetensorsEntry> file_entries,
                                ReadSafetensorsHeader(census.files[f], &has_data));
    if (!has_data) census.header_only = true;
    for (SafetensorsEntry& e : file_entries) {
      auto [it, inserted] = where.emplace(e.name, f);
      if (!inserted) {
        return absl::InvalidArgumentError(absl::StrCat(
            "tensor ", e.name, " is in both ", census.files[it->second], " and ", census.files[f]));
      }
      entries.emplace_back(std::move(e), f);
    }
  }
  if (entries.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("model directory ", model_dir, ": the safetensors files hold no tensors"));
  }
  auto exists = [&](const std::string& name) { return where.count(name) > 0; };
  census.tensors.reserve(entries.size());
  for (const auto& [entry, f] : entries) {
    TensorCensus t = ClassifyTensor(entry, census.config, exists);
    t.file = census.files[f];
    census.checkpoint_bytes += t.checkpoint_bytes;
    census.resident_bytes += t.resident_bytes;
    if (t.placement == Placement::kSkipped) census.skipped_bytes += t.checkpoint_bytes;
    if (t.dtype == DType::kF8E4M3 && t.fp4) census.fp8_converted = true;
    census.tensors.push_back(std::move(t));
  }
  return census;
}

}  // namespace sparkstack::deploy
