#include "launcher/prompts_file.h"

#include <fstream>
#include <limits>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "runtime/core/status_macros.h"

namespace sparkstack::launcher {
namespace {

using Json = nlohmann::json;

// Reads optional field `key` of `line` into `out` when present, checking its JSON type.
class LineFields {
 public:
  LineFields(const Json& line, std::string where) : line_(line), where_(std::move(where)) {}

  template <typename T>
  absl::Status Optional(const char* key, T& out) {
    auto it = line_.find(key);
    if (it == line_.end()) return absl::OkStatus();
    bool ok;
    if constexpr (std::is_same_v<T, bool>) {
      ok = it->is_boolean();
    } else if constexpr (std::is_integral_v<T>) {
      ok = it->is_number_integer() &&
           (std::is_signed_v<T> ? it->get<int64_t>() >= std::numeric_limits<T>::min() &&
                                      it->get<int64_t>() <= std::numeric_limits<T>::max()
                                : it->is_number_unsigned());
    } else {
      ok = it->is_number();
    }
    if (!ok) return Error(key, "has the wrong type or range");
    out = it->get<T>();
    return absl::OkStatus();
  }

  absl::Status Ids(const char* key, std::vector<int32_t>& out) {
    auto it = line_.find(key);
    if (it == line_.end()) return absl::OkStatus();
    if (!it->is_array()) return Error(key, "must be an array of token ids");
    out.clear();
    for (const Json& id : *it) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
          id.get<int64_t>() > std::numeric_limits<int32_t>::max()) {
        return Error(key, absl::StrCat("holds ", id.dump(), ", not a token id"));
      }
      out.push_back(id.get<int32_t>());
    }
    return absl::OkStatus();
  }

  absl::Status Error(const char* key, const std::string& what) const {
    return absl::InvalidArgumentError(absl::StrCat(where_, ": \"", key, "\" ", what));
  }

 private:
  const Json& line_;
  std::string where_;
};

}  // namespace

absl::StatusOr<std::vector<Request>> ReadPromptsFile(const std::string& path,
                                                     const tokenizer::Tokenizer* tokenizer,
                                                     const SamplingFlags& defaults) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("--prompts-file: cannot read ", path));
  std::vector<Request> requests;
  std::string text;
  for (int line_number = 1; std::getline(in, text); ++line_number) {
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = absl::StrCat(path, ":", line_number);
    const Json line = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!line.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": not a JSON object"));
    }
    Request r = MakeRequest(defaults, {}, requests.size());
    LineFields fields(line, where);
    const bool has_ids = line.contains("prompt_ids");
    const bool has_text = line.contains("prompt");
    if (has_ids == has_text) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": give exactly one of \"prompt_ids\" and \"prompt\""));
    }
    if (has_ids) {
      SPARKSTACK_RETURN_IF_ERROR(fields.Ids("prompt_ids", r.prompt_ids));
    } else {
      if (!line["prompt"].is_string()) return fields.Error("prompt", "must be a string");
      if (tokenizer == nullptr) {
        return fields.Error("prompt", "needs the model's tokenizer.json");
      }
      SPARKSTACK_ASSIGN_OR_RETURN(r.prompt_ids,
                                  tokenizer->Encode(line["prompt"].get<std::string>(),
                                                    /*add_special_tokens=*/true));
    }
    SamplingParams& s = r.sampling;
    StoppingParams& stop = r.stopping;
    SPARKSTACK_RETURN_IF_ERROR(fields.Optional("max_tokens", stop.max_tokens));
    SPARKSTACK_RETURN_IF_ERROR(fields.Optional("min_tokens", stop.min_tokens));
    SPARKSTACK_RETURN_IF_ERROR(fields.Optional("ignore_eos", stop.ignore_eos));
    SPARKSTACK_RETURN_IF_ERROR(fields.Ids("stop_token_ids", stop.stop_token_ids));
    SPARKSTACK_RETURN_IF_ERROR(fields.Optional("temperature", s.temperature));
    SPARKSTACK_RETURN_IF_ERROR(fields.Optional("top_k", s.top_k));
    SPARKSTACK_RETURN_IF_ERROR(fields.Optional("top_p", s.top_p));
    SPARKSTACK_RETURN_IF_ERROR(fields.Optional("min_p", s.min_p));
    SPARKSTACK_RETURN_IF_ERROR(fields.Optional("repetition_penalty", s.repetition_penalty));
    SPARKSTACK_RETURN_IF_ERROR(fields.Optional("presence_penalty", s.presence_penalty));
    SPARKSTACK_RETURN_IF_ERROR(fields.Optional("frequency_penalty", s.frequency_penalty));
    SPARKSTACK_RETURN_IF_ERROR(fields.Optional("seed", s.seed));
    if (r.prompt_ids.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": the prompt has no tokens"));
    }
    requests.push_back(std::move(r));
  }
  if (requests.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--prompts-file ", path, " has no prompts"));
  }
  return requests;
}

}  // namespace sparkstack::launcher
