#include "runtime/quant/nvfp4_checkpoint_writer.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "runtime/core/memory_budget.h"
#include "runtime/core/read_file.h"
#include "runtime/core/status_macros.h"
#include "runtime/model/checkpoint.h"
#include "runtime/model/safetensors.h"
#include "runtime/quant/nvfp4_quantizer.h"
#include "runtime/quant/quant_scheme.h"
#include "runtime/quant/safetensors_shards.h"

namespace sparkstack {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

bool MatchesAny(const std::vector<std::string>& patterns, const std::string& module) {
  for (const std::string& pattern : patterns) {
    if (fnmatch(pattern.c_str(), module.c_str(), 0) == 0) return true;
  }
  return false;
}

absl::Status WriteText(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path.string()));
  return absl::OkStatus();
}

bool IsFloat(DType dtype) {
  return dtype == DType::kF32 || dtype == DType::kF16 || dtype == DType::kBF16;
}

// The output directory may not exist yet, may be empty, or (with overwrite) may hold an earlier
// result. It may not be, or contain, the input.
absl::Status CheckOutputDirectory(const std::string& in_dir, const std::string& out_dir,
                                  bool overwrite) {
  std::error_code ec;
  if (out_dir.empty()) return absl::InvalidArgumentError("quantize: the output directory is empty");
  const fs::file_status status = fs::status(out_dir, ec);
  if (!fs::exists(status)) return absl::OkStatus();
  if (!fs::is_directory(status)) {
    return absl::FailedPreconditionError(
        absl::StrCat("quantize: the output path ", out_dir, " exists and is not a directory"));
  }
  if (fs::equivalent(in_dir, out_dir, ec)) {
    return absl::InvalidArgumentError(
        absl::StrCat("quantize: the output directory ", out_dir, " is the input directory"));
  }
  std::vector<std::string> names;
  for (const fs::directory_entry& entry : fs::directory_iterator(out_dir, ec)) {
    names.push_back(entry.path().filename().string());
  }
  if (ec) {
    return absl::PermissionDeniedError(
        absl::StrCat("quantize: cannot list the output directory ", out_dir, ": ", ec.message()));
  }
  if (names.empty()) return absl::OkStatus();
  if (!overwrite) {
    std::sort(names.begin(), names.end());
    return absl::FailedPreconditionError(
        absl::StrCat("quantize: the output directory ", out_dir, " is not empty (", names.size(),
                     names.size() == 1 ? " entry: " : " entries, e.g. ", names.front(),
                     "); pass --overwrite to replace it"));
  }
  // Replacing out_dir removes everything in it: refuse if the input lives there.
  const fs::path in_abs = fs::weakly_canonical(in_dir, ec);
  const fs::path out_abs = fs::weakly_canonical(out_dir, ec);
  const auto mismatch = std::mismatch(out_abs.begin(), out_abs.end(), in_abs.begin(), in_abs.end());
  if (!ec && mismatch.first == out_abs.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("quantize: --overwrite would delete the input: ", in_dir,
                     " is inside the output directory ", out_dir));
  }
  return absl::OkStatus();
}

// out_dir without a trailing separator ("out/" -> "out"), the name rename() is given; a symlink
// to a directory stands for that directory.
fs::path DirectoryPath(const std::string& dir) {
  fs::path path = fs::path(dir).lexically_normal();
  if (path.filename().empty()) path = path.parent_path();
  std::error_code ec;
  if (fs::is_symlink(path, ec)) {
    const fs::path target = fs::canonical(path, ec);
    if (!ec) return target;
  }
  return path;
}

// A new, empty directory next to out_dir (same file system, so rename can publish it), created
// with mkdir's usual permissions (0777 less the umask) so the published directory has them.
absl::StatusOr<std::string> MakeStagingDirectory(const std::string& out_dir) {
  const fs::path out = DirectoryPath(out_dir);
  fs::path parent = out.parent_path();
  if (parent.empty()) parent = ".";
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("quantize: cannot create ", parent.string(), ": ", ec.message()));
  }
  std::random_device random;
  for (int attempt = 0; attempt < 100; ++attempt) {
    const std::string staging = (parent / absl::StrCat(".", out.filename().string(), ".partial-",
                                                       ::getpid(), "-", random() % 1000000))
                                    .string();
    if (::mkdir(staging.c_str(), 0777) == 0) return staging;
    if (errno != EEXIST) {
      return absl::InternalError(
          absl::StrCat("quantize: cannot create ", staging, ": ", std::strerror(errno)));
    }
  }
  return absl::InternalError(
      absl::StrCat("quantize: cannot find a free temporary name in ", parent.string()));
}

// Moves the finished `staging` directory to `out_dir`: a plain rename when out_dir is absent or
// empty, an atomic exchange (renameat2 RENAME_EXCHANGE) when it holds an earlier result, whose
// files are then deleted. File systems without the exchange get two renames.
absl::Status PublishDirectory(const std::string& staging, const std::string& out_dir) {
  const std::string out = DirectoryPath(out_dir).string();
  if (::rename(staging.c_str(), out.c_str()) == 0) return absl::OkStatus();
  if (errno != ENOTEMPTY && errno != EEXIST) {
    return absl::InternalError(
        absl::StrCat("quantize: cannot move ", staging, " to ", out, ": ", std::strerror(errno)));
  }
  std::string old = staging;  // where the previous contents of out_dir end up
  if (::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, out.c_str(), RENAME_EXCHANGE) != 0) {
    if (errno != EINVAL && errno != ENOSYS) {
      return absl::InternalError(absl::StrCat("quantize: cannot replace ", out, " with ", staging,
                                              ": ", std::strerror(errno)));
    }
    old = staging + ".old";
    if (::rename(out.c_str(), old.c_str()) != 0) {
      return absl::InternalError(
          absl::StrCat("quantize: cannot move ", out, " aside: ", std::strerror(errno)));
    }
    if (::rename(staging.c_str(), out.c_str()) != 0) {
      const int err = errno;
      ::rename(old.c_str(), out.c_str());  // put the previous result back
      return absl::InternalError(
          absl::StrCat("quantize: cannot move ", staging, " to ", out, ": ", std::strerror(err)));
    }
  }
  std::error_code ec;
  fs::remove_all(old, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("quantize: wrote ", out,
                                            " but cannot remove its previous contents, moved to ",
                                            old, ": ", ec.message()));
  }
  return absl::OkStatus();
}

// One input tensor and what it becomes: its output tensors (stored dtype, shape and size; offsets
// are assigned per shard), all written to the same shard.
struct PlannedTensor {
  std::string name;
  std::string module;  // the quantized module P, or "" when the tensor is copied unchanged
  std::vector<SafetensorsEntry> outputs;
  uint64_t output_bytes = 0;
};

SafetensorsEntry OutputEntry(std::string name, DType dtype, Shape shape) {
  SafetensorsEntry entry;
  entry.name = std::move(name);
  entry.dtype = dtype;
  entry.end = DTypeByteSize(dtype, NumElements(shape));
  entry.shape = std::move(shape);
  return entry;
}

// Writes the planned tensors into `dir`: one model.safetensors, or shards and their index. Each
// shard's header is written first (sizes are known from the plan), then each tensor is read from
// the mapped input, quantized and appended, so only one quantized tensor is held at a time.
absl::Status WriteWeights(const std::string& dir, const Checkpoint& checkpoint,
                          const std::vector<PlannedTensor>& plan, uint64_t max_shard_bytes,
                          QuantizeCheckpointReport& report) {
  std::vector<uint64_t> unit_bytes;
  for (const PlannedTensor& p : plan) unit_bytes.push_back(p.output_bytes);
  const std::vector<int> shard_of = AssignShards(unit_bytes, max_shard_bytes);
  const int shards = shard_of.empty() ? 1 : shard_of.back() + 1;
  report.shards = shards;
  std::map<std::string, std::string> weight_map;
  size_t next = 0;  // first unit of the current shard
  for (int shard = 0; shard < shards; ++shard) {
    const std::string file = shards == 1 ? "model.safetensors" : ShardFileName(shard, shards);
    const size_t first = next;
    std::vector<SafetensorsEntry> entries;
    uint64_t offset = 0;
    for (; next < plan.size() && shard_of[next] == shard; ++next) {
      for (SafetensorsEntry entry : plan[next].outputs) {
        entry.end += offset;
        entry.begin = offset;
        offset = entry.end;
        weight_map[entry.name] = file;
        entries.push_back(std::move(entry));
      }
    }
    SPARKSTACK_ASSIGN_OR_RETURN(StreamingSafetensorsWriter writer,
                                StreamingSafetensorsWriter::Open((fs::path(dir) / file).string(),
                                                                 entries, {{"format", "pt"}}));
    for (size_t i = first; i < next; ++i) {
      const PlannedTensor& p = plan[i];
      SPARKSTACK_ASSIGN_OR_RETURN(Tensor tensor, checkpoint.Get(p.name));
      if (p.module.empty()) {  // written straight from the input mapping
        SPARKSTACK_RETURN_IF_ERROR(writer.Append(p.name, tensor.data(), tensor.nbytes()));
        report.output_bytes += tensor.nbytes();
        ++report.kept_tensors;
        continue;
      }
      SPARKSTACK_ASSIGN_OR_RETURN(Weight q, QuantizeNvfp4(tensor, p.name));
      const Tensor& codes = q.nvfp4().codes;
      const Tensor& scales = q.nvfp4().block_scales;
      const float global = q.nvfp4().global_scale;
      SPARKSTACK_RETURN_IF_ERROR(writer.Append(p.name, codes.data(), codes.nbytes()));
      SPARKSTACK_RETURN_IF_ERROR(
          writer.Append(p.module + ".weight_scale", scales.data(), scales.nbytes()));
      SPARKSTACK_RETURN_IF_ERROR(
          writer.Append(p.module + ".weight_scale_2", &global, sizeof(global)));
      const uint64_t held = codes.nbytes() + scales.nbytes();
      report.output_bytes += held + sizeof(global);
      report.peak_buffer_bytes = std::max(report.peak_buffer_bytes, held);
      ++report.quantized_layers;
    }
    SPARKSTACK_RETURN_IF_ERROR(writer.Close());
  }
  if (shards > 1) {
    SPARKSTACK_RETURN_IF_ERROR(WriteText(fs::path(dir) / "model.safetensors.index.json",
                                         ShardIndexJson(report.output_bytes, weight_map)));
  }
  return absl::OkStatus();
}

// Everything the output directory holds, written into `dir`.
absl::Status WriteOutput(const std::string& in_dir, const std::string& dir,
                         const Checkpoint& checkpoint, const std::vector<PlannedTensor>& plan,
                         uint64_t max_shard_bytes, QuantizeCheckpointReport& report) {
  SPARKSTACK_RETURN_IF_ERROR(WriteWeights(dir, checkpoint, plan, max_shard_bytes, report));
  json quantization = {{"quant_algo", "NVFP4"},
                       {"group_size", 16},
                       {"kv_cache_quant_algo", nullptr},
                       {"exclude_modules", report.exclude_modules}};
  json hf_quant_config = {{"producer", {{"name", "sparkstack"}, {"version", "0.1"}}},
                          {"quantization", quantization}};
  SPARKSTACK_RETURN_IF_ERROR(
      WriteText(fs::path(dir) / "hf_quant_config.json", hf_quant_config.dump(2) + "\n"));

  // config.json: the input's with quantization_config added.
  const fs::path config_in = fs::path(in_dir) / "config.json";
  std::error_code ec;
  if (fs::exists(config_in, ec)) {
    SPARKSTACK_ASSIGN_OR_RETURN(
        std::string text, ReadRegularFile(config_in.string(), kMaxConfigFileBytes, "model config",
                                          kJsonDomBytesPerTextByte));
    json config = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (config.is_discarded() || !config.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(config_in.string(), " is not a JSON object"));
    }
    json quantization_config = quantization;
    quantization_config["quant_method"] = "modelopt";
    config["quantization_config"] = quantization_config;
    SPARKSTACK_RETURN_IF_ERROR(WriteText(fs::path(dir) / "config.json", config.dump(2) + "\n"));
  }

  // Tokenizer files, generation_config.json, chat templates, ...: every other regular file at
  // top level (FIFOs, devices and directories are not copied).
  for (const fs::directory_entry& file : fs::directory_iterator(in_dir, ec)) {
    if (!file.is_regular_file()) continue;
    const std::string base = file.path().filename().string();
    if (absl::EndsWith(base, ".safetensors") || base == "model.safetensors.index.json" ||
        base == "config.json" || base == "hf_quant_config.json") {
      continue;
    }
    fs::copy_file(file.path(), fs::path(dir) / base, fs::copy_options::overwrite_existing, ec);
    if (ec) {
      return absl::InternalError(
          absl::StrCat("cannot copy ", file.path().string(), " to ", dir, ": ", ec.message()));
    }
  }
  if (ec) return absl::InternalError(absl::StrCat("cannot list ", in_dir, ": ", ec.message()));
  return absl::OkStatus();
}

}  // namespace

const std::vector<std::string>& DefaultNvfp4ExcludePatterns() {
  static const std::vector<std::string> patterns = {"lm_head", "*embed_tokens*", "*norm*",
                                                    "*.mlp.gate"};
  return patterns;
}

absl::StatusOr<QuantizeCheckpointReport> QuantizeCheckpointToNvfp4(
    const std::string& in_dir, const std::string& out_dir,
    const QuantizeCheckpointOptions& options) {
  // Everything that can be refused is refused before any work: the output directory, the input's
  // scheme, its checkpoint, and the memory the quantized tensors will take.
  if (options.max_shard_bytes == 0) {
    return absl::InvalidArgumentError("quantize: --max-shard-bytes must be positive (got 0)");
  }
  SPARKSTACK_RETURN_IF_ERROR(CheckOutputDirectory(in_dir, out_dir, options.overwrite));
  SPARKSTACK_ASSIGN_OR_RETURN(QuantScheme scheme, ReadQuantScheme(in_dir));
  if (scheme.method != QuantMethod::kNone) {
    return absl::InvalidArgumentError(absl::StrCat("quantize: ", in_dir, " is already quantized (",
                                                   scheme.source,
                                                   "); start from the dense checkpoint"));
  }
  SPARKSTACK_ASSIGN_OR_RETURN(Checkpoint checkpoint, Checkpoint::Open(in_dir));

  std::vector<std::string> patterns = DefaultNvfp4ExcludePatterns();
  patterns.insert(patterns.end(), options.exclude.begin(), options.exclude.end());
  QuantizeCheckpointReport report;
  report.exclude_modules = patterns;

  // Plan, from the headers alone: which tensors are quantized and what each one becomes. Input
  // files are walked in shard order, each file's tensors by name (for a single input file, the
  // sorted order the writer has always used).
  std::vector<PlannedTensor> plan;
  std::set<std::string> output_names;
  uint64_t largest_quantized = 0;  // the one quantized tensor held in memory at a time
  for (const std::shared_ptr<SafetensorsFile>& file : checkpoint.files()) {
    std::vector<const SafetensorsEntry*> entries;
    for (const SafetensorsEntry& entry : file->entries()) entries.push_back(&entry);
    std::sort(
        entries.begin(), entries.end(),
        [](const SafetensorsEntry* a, const SafetensorsEntry* b) { return a->name < b->name; });
    for (const SafetensorsEntry* entry : entries) {
      const std::string& name = entry->name;
      report.input_bytes += entry->nbytes();
      PlannedTensor p;
      p.name = name;
      const bool is_weight =
          absl::EndsWith(name, ".weight") && entry->shape.size() == 2 && IsFloat(entry->dtype);
      const std::string module = is_weight ? name.substr(0, name.size() - 7) : "";
      if (!is_weight || MatchesAny(patterns, module)) {
        p.outputs.push_back(OutputEntry(name, entry->dtype, entry->shape));
      } else if (entry->shape[1] % 16 != 0) {  // NVFP4 needs whole 16-element blocks along K
        report.exclude_modules.push_back(module);
        p.outputs.push_back(OutputEntry(name, entry->dtype, entry->shape));
      } else {
        const int64_t n = entry->shape[0], k = entry->shape[1];
        p.module = module;
        p.outputs.push_back(OutputEntry(name, DType::kU8, {n, k / 2}));
        p.outputs.push_back(OutputEntry(module + ".weight_scale", DType::kF8E4M3, {n, k / 16}));
        p.outputs.push_back(OutputEntry(module + ".weight_scale_2", DType::kF32, {}));
      }
      for (const SafetensorsEntry& out : p.outputs) {
        p.output_bytes += out.nbytes();
        if (!output_names.insert(out.name).second) {
          return absl::InvalidArgumentError(absl::StrCat(
              "quantize: ", in_dir, ": the output would hold two tensors called '", out.name,
              "' (the input has a tensor of that name besides the one quantizing ", name,
              " produces)"));
        }
      }
      if (!p.module.empty()) largest_quantized = std::max(largest_quantized, p.output_bytes);
      plan.push_back(std::move(p));
    }
  }
  SPARKSTACK_RETURN_IF_ERROR(CheckMemoryBudget(
      largest_quantized, absl::StrCat("quantizing ", in_dir, " to nvfp4 (the largest tensor)")));

  // Written into a new directory beside out_dir, then moved into place in one rename, so that
  // out_dir is never seen half-written and never keeps stale files from an earlier run.
  SPARKSTACK_ASSIGN_OR_RETURN(std::string staging, MakeStagingDirectory(out_dir));
  absl::Status written =
      WriteOutput(in_dir, staging, checkpoint, plan, options.max_shard_bytes, report);
  if (written.ok()) written = PublishDirectory(staging, out_dir);
  if (!written.ok()) {
    std::error_code ignored;
    fs::remove_all(staging, ignored);
    return written;
  }
  return report;
}

}  // namespace sparkstack
