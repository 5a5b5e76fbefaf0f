#include "runtime/control/model_fingerprint.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace sparkstack::control {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kPlainHeaderBytes = 1 << 20;
// safetensors limits its JSON header to 100 MB.
constexpr uint64_t kMaxSafetensorsHeader = 100'000'000;

absl::StatusOr<uint64_t> HashHeader(const fs::path& path, uint64_t size) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::PermissionDeniedError(absl::StrCat("cannot open ", path.string()));
  uint64_t want = std::min(size, kPlainHeaderBytes);
  if (path.extension() == ".safetensors" && size >= 8) {
    unsigned char length[8];
    in.read(reinterpret_cast<char*>(length), 8);
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = n << 8 | length[i];
    want = 8 + std::min(n, kMaxSafetensorsHeader);
    want = std::min(want, size);
    in.seekg(0);
  }
  uint64_t hash = kFnvOffset;
  std::vector<char> buffer(1 << 16);
  while (want > 0) {
    const size_t chunk = static_cast<size_t>(std::min<uint64_t>(want, buffer.size()));
    in.read(buffer.data(), static_cast<std::streamsize>(chunk));
    if (static_cast<size_t>(in.gcount()) != chunk) {
      return absl::DataLossError(absl::StrCat("short read from ", path.string()));
    }
    hash = Fnv1a64(std::string_view(buffer.data(), chunk), hash);
    want -= chunk;
  }
  return hash;
}

}  // namespace

uint64_t Fnv1a64(std::string_view data, uint64_t hash) {
  for (unsigned char c : data) {
    hash ^= c;
    hash *= 0x100000001b3ull;
  }
  return hash;
}

absl::StatusOr<ModelFingerprint> FingerprintModel(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat("model directory ", dir, " does not exist here"));
  }
  ModelFingerprint fingerprint;
  fingerprint.model_path = dir;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name[0] == '.' || !entry.is_regular_file(ec)) continue;
    if (fingerprint.files.size() == kMaxModelFiles) {
      return absl::InvalidArgumentError(
          absl::StrCat("model directory ", dir, " has more than ", kMaxModelFiles, " files"));
    }
    const uint64_t size = entry.file_size(ec);
    if (ec) return absl::PermissionDeniedError(absl::StrCat("cannot stat ", entry.path().string()));
    absl::StatusOr<uint64_t> hash = HashHeader(entry.path(), size);
    if (!hash.ok()) return hash.status();
    fingerprint.files.push_back({.name = name, .size_bytes = size, .header_hash = *hash});
  }
  if (ec) return absl::PermissionDeniedError(absl::StrCat("cannot list ", dir, ": ", ec.message()));
  std::sort(fingerprint.files.begin(), fingerprint.files.end(),
            [](const ModelFile& a, const ModelFile& b) { return a.name < b.name; });
  return fingerprint;
}

uint64_t WeightBytes(const ModelFingerprint& fingerprint) {
  uint64_t total = 0;
  for (const ModelFile& file : fingerprint.files) {
    if (absl::EndsWith(file.name, ".safetensors")) total += file.size_bytes;
  }
  return total;
}

absl::Status CompareModels(const ModelFingerprint& head, const ModelFingerprint& node,
                           std::string_view node_name) {
  std::map<std::string, const ModelFile*> on_node;
  for (const ModelFile& file : node.files) on_node[file.name] = &file;
  std::vector<std::string> differences;
  size_t count = 0;
  const auto add = [&](std::string text) {
    if (++count <= 5) differences.push_back(std::move(text));
  };
  for (const ModelFile& file : head.files) {
    auto found = on_node.find(file.name);
    if (found == on_node.end()) {
      add(absl::StrCat(file.name, " is missing"));
      continue;
    }
    const ModelFile& other = *found->second;
    if (other.size_bytes != file.size_bytes) {
      add(absl::StrCat(file.name, " has ", other.size_bytes, " bytes, the head's has ",
                       file.size_bytes));
    } else if (other.header_hash != file.header_hash) {
      add(absl::StrCat(file.name, " has a different header"));
    }
    on_node.erase(found);
  }
  for (const auto& [name, file] : on_node) add(absl::StrCat(name, " is not on the head"));
  if (count == 0) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      std::string(node_name), ": its model files differ from the head's (", node.model_path,
      " on the node, ", head.model_path, " on the head): ", absl::StrJoin(differences, "; "),
      count > differences.size() ? absl::StrCat("; and ", count - differences.size(), " more")
                                 : std::string()));
}

}  // namespace sparkstack::control
