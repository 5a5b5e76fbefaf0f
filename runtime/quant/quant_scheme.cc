#include "runtime/quant/quant_scheme.h"

#include <fnmatch.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "runtime/core/read_file.h"

namespace sparkstack {
namespace {

using nlohmann::json;

absl::StatusOr<json> ReadJsonFile(const std::string& path) {
  // Bounded: a FIFO, device or directory is refused, and so is a file too large to hold.
  auto text = ReadRegularFile(path, kMaxConfigFileBytes, "JSON file", kJsonDomBytesPerTextByte);
  if (!text.ok()) return text.status();
  json parsed = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(path, " is not valid JSON"));
  return parsed;
}

absl::Status ReadStringList(const json& object, const char* key, const std::string& where,
                            std::vector<std::string>* out) {
  if (!object.contains(key) || object[key].is_null()) return absl::OkStatus();
  const json& list = object[key];
  if (!list.is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": \"", key, "\" must be a list of strings, found ", list.dump()));
  }
  for (const json& item : list) {
    if (!item.is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": \"", key, "\" must hold strings, found ", item.dump()));
    }
    out->push_back(item.get<std::string>());
  }
  return absl::OkStatus();
}

absl::Status CheckGroupSize(const json& object, const std::string& where) {
  if (!object.contains("group_size") || object["group_size"].is_null()) return absl::OkStatus();
  const json& g = object["group_size"];
  if (!g.is_number_integer() || g.get<int64_t>() != 16) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": NVFP4 needs group_size 16, found ", g.dump()));
  }
  return absl::OkStatus();
}

std::string OptionalString(const json& object, const char* key) {
  if (object.contains(key) && object[key].is_string()) return object[key].get<std::string>();
  return "";
}

// `q` is the ModelOpt quantization object (hf_quant_config's "quantization", or config.json's
// quantization_config).
absl::StatusOr<QuantScheme> ParseModelOpt(const json& q, const std::string& source) {
  if (!q.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": quantization must be an object"));
  }
  QuantScheme scheme;
  scheme.method = QuantMethod::kModelOptNvfp4;
  scheme.source = source;
  if (!q.contains("quant_algo") || !q["quant_algo"].is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": missing string field quant_algo"));
  }
  const std::string algo = q["quant_algo"].get<std::string>();
  if (algo == "MIXED_PRECISION") {
    scheme.mixed_precision = true;
    if (!q.contains("quantized_layers") || !q["quantized_layers"].is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": quant_algo MIXED_PRECISION needs a \"quantized_layers\" object"));
    }
    for (const auto& [module, layer] : q["quantized_layers"].items()) {
      const std::string where = absl::StrCat(source, ": quantized_layers[\"", module, "\"]");
      if (!layer.is_object() || !layer.contains("quant_algo") || !layer["quant_algo"].is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, " must be an object with a string quant_algo"));
      }
      const std::string layer_algo = layer["quant_algo"].get<std::string>();
      // Other algorithms (FP8, W4A8_AWQ, ...) are rejected when that layer is loaded, naming it.
      if (layer_algo == "NVFP4") {
        if (absl::Status s = CheckGroupSize(layer, where); !s.ok()) return s;
      }
      scheme.quantized_layers[module] = layer_algo;
    }
  } else if (algo != "NVFP4") {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": quant_algo \"", algo, "\" is not supported (expected NVFP4 or MIXED_PRECISION)"));
  }
  if (absl::Status s = CheckGroupSize(q, source); !s.ok()) return s;
  if (absl::Status s = ReadStringList(q, "exclude_modules", source, &scheme.exclude_modules);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ReadStringList(q, "ignore", source, &scheme.exclude_modules); !s.ok()) {
    return s;
  }
  scheme.kv_cache_quant_algo = OptionalString(q, "kv_cache_quant_algo");
  return scheme;
}

absl::StatusOr<QuantScheme> ParseCompressedTensors(const json& q, const std::string& source) {
  QuantScheme scheme;
  scheme.method = QuantMethod::kCompressedTensorsNvfp4;
  scheme.source = source;
  std::string format = OptionalString(q, "format");
  if (q.contains("config_groups") && q["config_groups"].is_object()) {
    for (const auto& [group_name, group] : q["config_groups"].items()) {
      const std::string where = absl::StrCat(source, ": config_groups[\"", group_name, "\"]");
      if (!group.is_object()) return absl::InvalidArgumentError(absl::StrCat(where, " must be an object"));
      const std::string group_format = OptionalString(group, "format");
      if (!group_format.empty()) {
        if (!format.empty() && format != "mixed-precision" && format != group_format) {
          return absl::InvalidArgumentError(absl::StrCat(where, ": format \"", group_format,
                                                         "\" differs from \"", format, "\""));
        }
        format = group_format;
      }
      if (group.contains("weights") && group["weights"].is_object()) {
        const json& w = group["weights"];
        if (absl::Status s = CheckGroupSize(w, absl::StrCat(where, ".weights")); !s.ok()) return s;
        if (w.contains("num_bits") && w["num_bits"] != 4) {
          return absl::InvalidArgumentError(absl::StrCat(where, ".weights: num_bits ",
                                                         w["num_bits"].dump(),
                                                         " is not NVFP4's 4"));
        }
      }
    }
  }
  if (format != "nvfp4-pack-quantized") {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": compressed-tensors format \"", format,
        "\" is not supported (only nvfp4-pack-quantized)"));
  }
  if (absl::Status s = ReadStringList(q, "ignore", source, &scheme.exclude_modules); !s.ok()) {
    return s;
  }
  scheme.kv_cache_quant_algo = q.contains("kv_cache_scheme") && !q["kv_cache_scheme"].is_null() ? "FP8" : "";
  return scheme;
}

// DeepSeek's FP8 layout: e4m3 weights with 128x128 block scales; other block shapes or
// formats are not what runtime/quant/fp8_block.h reads.
absl::StatusOr<QuantScheme> ParseFp8Block(const json& q, const std::string& source) {
  QuantScheme scheme;
  scheme.method = QuantMethod::kFp8Block;
  scheme.source = source;
  const std::string fmt = OptionalString(q, "fmt");
  if (!fmt.empty() && fmt != "e4m3" && fmt != "float8_e4m3fn") {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": quantization_config.fmt \"", fmt, "\" is not supported (expected e4m3)"));
  }
  if (!q.contains("weight_block_size") || q["weight_block_size"] != json::array({128, 128})) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": fp8 quantization needs weight_block_size [128, 128], found ",
        q.contains("weight_block_size") ? q["weight_block_size"].dump() : "none"));
  }
  for (const char* key : {"ignored_layers", "modules_to_not_convert"}) {
    if (absl::Status s = ReadStringList(q, key, source, &scheme.exclude_modules); !s.ok()) {
      return s;
    }
  }
  return scheme;
}

}  // namespace

absl::StatusOr<QuantScheme> ParseQuantScheme(const json& hf_quant_config, const json& config,
                                             const std::string& source) {
  if (hf_quant_config.is_object()) {
    if (!hf_quant_config.contains("quantization")) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": missing the \"quantization\" object"));
    }
    return ParseModelOpt(hf_quant_config["quantization"], source);
  }
  if (!config.is_object() || !config.contains("quantization_config") ||
      config["quantization_config"].is_null()) {
    QuantScheme scheme;
    scheme.source = source;
    return scheme;
  }
  const json& q = config["quantization_config"];
  if (!q.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": quantization_config must be an object"));
  }
  const std::string method = OptionalString(q, "quant_method");
  if (method == "modelopt") return ParseModelOpt(q, source);
  if (method == "compressed-tensors") return ParseCompressedTensors(q, source);
  if (method == "fp8") return ParseFp8Block(q, source);
  return absl::InvalidArgumentError(absl::StrCat(
      source, ": quantization_config.quant_method \"", method,
      "\" is not supported (expected modelopt, compressed-tensors or fp8)"));
}

absl::StatusOr<QuantScheme> ReadQuantScheme(const std::string& model_dir) {
  namespace fs = std::filesystem;
  const std::string hf_path = (fs::path(model_dir) / "hf_quant_config.json").string();
  const std::string config_path = (fs::path(model_dir) / "config.json").string();
  json hf_quant_config;
  json config;
  std::string source = config_path;
  if (fs::exists(hf_path)) {
    auto parsed = ReadJsonFile(hf_path);
    if (!parsed.ok()) return parsed.status();
    hf_quant_config = *std::move(parsed);
    source = hf_path;
  }
  if (fs::exists(config_path)) {
    auto parsed = ReadJsonFile(config_path);
    if (!parsed.ok()) return parsed.status();
    config = *std::move(parsed);
  }
  return ParseQuantScheme(hf_quant_config, config, source);
}

bool IsExcludedModule(const QuantScheme& scheme, const std::string& name) {
  for (const std::string& pattern : scheme.exclude_modules) {
    if (scheme.method == QuantMethod::kCompressedTensorsNvfp4) {
      if (absl::StartsWith(pattern, "re:")) {
        try {
          if (std::regex_match(name, std::regex(pattern.substr(3)))) return true;
        } catch (const std::regex_error&) {
          // A malformed regex matches nothing.
        }
      } else if (pattern == name) {
        return true;
      }
    } else if (fnmatch(pattern.c_str(), name.c_str(), 0) == 0) {
      return true;
    }
  }
  return false;
}

bool ExpectsNvfp4(const QuantScheme& scheme, const std::string& name) {
  if (scheme.method == QuantMethod::kNone) return false;
  if (IsExcludedModule(scheme, name)) return false;
  if (scheme.mixed_precision) {
    auto it = scheme.quantized_layers.find(name);
    return it != scheme.quantized_layers.end() && it->second == "NVFP4";
  }
  return true;
}

}  // namespace sparkstack
