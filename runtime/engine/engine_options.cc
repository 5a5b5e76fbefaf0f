// EngineOptions: defaults resolved against the model, and the JSON every rank receives.
#include <algorithm>
#include <thread>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "runtime/backend/backend_factory.h"
#include "runtime/core/status_macros.h"
#include "runtime/engine/engine.h"
#include "runtime/model/model_config.h"
#include "runtime/model/pipeline_split.h"
#include "runtime/tokenizer/tokenizer.h"

namespace sparkstack {

nlohmann::json EngineOptionsToJson(const EngineOptions& o) {
  return {{"model_dir", o.model_dir},
          {"tp", o.plan.tp},
          {"pp", o.plan.pp},
          {"ep", o.plan.ep},
          {"threads", o.threads},
          {"backend", o.backend},
          {"max_num_seqs", o.max_num_seqs},
          {"max_num_batched_tokens", o.max_num_batched_tokens},
          {"max_model_len", o.max_model_len},
          {"kv_cache_bytes", o.kv_cache_bytes},
          {"kv_cache_memory_fraction", o.kv_cache_memory_fraction},
          {"enable_prefix_caching", o.enable_prefix_caching},
          {"sampling_vocab_limit", o.sampling_vocab_limit}};
}

absl::StatusOr<EngineOptions> EngineOptionsFromJson(const nlohmann::json& j) {
  auto bad = [](const char* field) {
    return absl::InvalidArgumentError(
        absl::StrCat("engine options: '", field, "' is missing or has the wrong type"));
  };
  if (!j.is_object()) return absl::InvalidArgumentError("engine options are not a JSON object");
  EngineOptions o;
  auto integer = [&](const char* field, auto& out) -> bool {
    auto it = j.find(field);
    if (it == j.end() || !it->is_number_integer()) return false;
    out = it->get<std::decay_t<decltype(out)>>();
    return true;
  };
  if (!j.contains("model_dir") || !j["model_dir"].is_string()) return bad("model_dir");
  o.model_dir = j["model_dir"];
  if (!integer("tp", o.plan.tp)) return bad("tp");
  if (!integer("pp", o.plan.pp)) return bad("pp");
  if (j.contains("ep") && !integer("ep", o.plan.ep)) return bad("ep");
  if (!integer("threads", o.threads)) return bad("threads");
  if (!j.contains("backend") || !j["backend"].is_string()) return bad("backend");
  o.backend = j["backend"];
  if (!integer("max_num_seqs", o.max_num_seqs)) return bad("max_num_seqs");
  if (!integer("max_num_batched_tokens", o.max_num_batched_tokens)) {
    return bad("max_num_batched_tokens");
  }
  if (!integer("max_model_len", o.max_model_len)) return bad("max_model_len");
  if (!integer("kv_cache_bytes", o.kv_cache_bytes)) return bad("kv_cache_bytes");
  if (!integer("sampling_vocab_limit", o.sampling_vocab_limit)) return bad("sampling_vocab_limit");
  if (!j.contains("kv_cache_memory_fraction") || !j["kv_cache_memory_fraction"].is_number()) {
    return bad("kv_cache_memory_fraction");
  }
  o.kv_cache_memory_fraction = j["kv_cache_memory_fraction"];
  if (!j.contains("enable_prefix_caching") || !j["enable_prefix_caching"].is_boolean()) {
    return bad("enable_prefix_caching");
  }
  o.enable_prefix_caching = j["enable_prefix_caching"];
  return o;
}

absl::StatusOr<EngineOptions> ResolveEngineOptions(EngineOptions o) {
  SPARKSTACK_RETURN_IF_ERROR(o.plan.Validate());
  SPARKSTACK_ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(o.model_dir));
  auto positive = [](const char* field, int64_t value) -> absl::Status {
    if (value >= 1) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(field, " must be >= 1, got ", value));
  };
  SPARKSTACK_RETURN_IF_ERROR(positive("max_num_seqs", o.max_num_seqs));
  SPARKSTACK_RETURN_IF_ERROR(positive("max_num_batched_tokens", o.max_num_batched_tokens));
  if (o.max_num_batched_tokens < o.max_num_seqs) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_num_batched_tokens (", o.max_num_batched_tokens, ") must be >= max_num_seqs (",
        o.max_num_seqs, "), so that every running sequence's decode fits one step"));
  }
  if (o.max_model_len == 0) o.max_model_len = config.max_position_embeddings;
  if (o.max_model_len < 1 || o.max_model_len > config.max_position_embeddings) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_model_len ", o.max_model_len, " must be in [1, max_position_embeddings = ",
        config.max_position_embeddings, "] of ", o.model_dir));
  }
  // The plan must fit the model before any rank is waited for.
  const int64_t tp = o.plan.tp;
  if (config.num_heads % tp != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tp ", tp, " does not divide the ", config.num_heads, " attention heads of ", o.model_dir));
  }
  if (config.num_kv_heads >= tp ? config.num_kv_heads % tp != 0 : tp % config.num_kv_heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("tp ", tp, " must divide or be a multiple of the ", config.num_kv_heads,
                     " key/value heads of ", o.model_dir));
  }
  if (config.moe.num_experts > 0 && o.plan.ExpertParallel() > config.moe.num_experts) {
    return absl::InvalidArgumentError(absl::StrCat("ep ", o.plan.ExpertParallel(), " exceeds the ",
                                                   config.moe.num_experts, " experts of ",
                                                   o.model_dir));
  }
  SPARKSTACK_RETURN_IF_ERROR(SplitLayersByBytes(config, o.plan.pp).status());
  if (o.kv_cache_bytes < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "kv_cache_bytes must be >= 0 (0: a fraction of free memory), got ", o.kv_cache_bytes));
  }
  if (!(o.kv_cache_memory_fraction > 0.0 && o.kv_cache_memory_fraction <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "kv_cache_memory_fraction must be in (0, 1], got ", o.kv_cache_memory_fraction));
  }
  if (o.threads < 0) {
    return absl::InvalidArgumentError(absl::StrCat("threads must be >= 0, got ", o.threads));
  }
  if (o.threads == 0) {
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    o.threads = std::max(1, cores / o.plan.world_size());
  }
  // The backend: named, and usable here (rank 0's check; each rank checks its own device again
  // when it builds its backend). `--backend cuda` without a device fails now, saying why.
  if (o.backend.empty()) o.backend = std::string(BackendKindName(DefaultBackendKind()));
  SPARKSTACK_ASSIGN_OR_RETURN(BackendKind kind, ParseBackendKind(o.backend));
  if (absl::Status s = BackendAvailable(kind); !s.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("--backend ", o.backend, " is not available here: ", s.message()));
  }
  if (o.sampling_vocab_limit <= 0 || o.sampling_vocab_limit > config.vocab_size) {
    // Checkpoints pad the embedding past the tokenizer's vocabulary: never sample an id the
    // tokenizer cannot decode.
    o.sampling_vocab_limit = config.vocab_size;
    auto tokenizer = tokenizer::Tokenizer::Load(o.model_dir);
    if (tokenizer.ok()) {
      o.sampling_vocab_limit = std::min<int64_t>(config.vocab_size, (*tokenizer)->vocab_size());
    } else if (!absl::IsNotFound(tokenizer.status())) {
      return tokenizer.status();
    }
  }
  return o;
}

}  // namespace sparkstack
