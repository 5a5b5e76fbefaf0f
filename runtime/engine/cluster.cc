#include "runtime/engine/cluster.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "runtime/backend/cpu/cpu_backend.h"
#include "runtime/core/status_macros.h"
#include "runtime/model/pipeline_split.h"
#include "runtime/parallel/host_communicator.h"

namespace sparkstack {
namespace {

std::string EncodeJob(const ClusterJob& job) {
  return nlohmann::json{{"model_dir", job.model_dir},
                        {"tp", job.plan.tp},
                        {"pp", job.plan.pp},
                        {"threads", job.threads}}
      .dump();
}

absl::StatusOr<ClusterJob> DecodeJob(const std::string& text) {
  auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object() || !json["model_dir"].is_string() || !json["tp"].is_number_integer() ||
      !json["pp"].is_number_integer() || !json["threads"].is_number_integer()) {
    return absl::InvalidArgumentError("malformed cluster job from rank 0");
  }
  ClusterJob job;
  job.model_dir = json["model_dir"];
  job.plan = {.tp = json["tp"], .pp = json["pp"]};
  job.threads = std::max(1, json["threads"].get<int>());
  return job;
}

}  // namespace

ClusterRank::~ClusterRank() = default;

absl::StatusOr<std::unique_ptr<ClusterRank>> ClusterRank::Join(const RendezvousOptions& options,
                                                               const ClusterJob* job,
                                                               RendezvousListener* listener) {
  if ((options.rank == 0) != (job != nullptr)) {
    return absl::InvalidArgumentError("rank 0, and only rank 0, describes the cluster job");
  }
  if (job != nullptr) SPARKSTACK_RETURN_IF_ERROR(job->plan.ValidateWorld(options.world_size));
  std::unique_ptr<ClusterRank> self(new ClusterRank());
  SPARKSTACK_ASSIGN_OR_RETURN(self->rendezvous_, Rendezvous::Join(options, listener));
  SPARKSTACK_ASSIGN_OR_RETURN(std::string job_text,
                              self->rendezvous_->Broadcast(job ? EncodeJob(*job) : ""));
  SPARKSTACK_ASSIGN_OR_RETURN(self->job_, DecodeJob(job_text));
  const ParallelPlan& plan = self->job_.plan;
  SPARKSTACK_RETURN_IF_ERROR(plan.ValidateWorld(options.world_size));
  SPARKSTACK_ASSIGN_OR_RETURN(self->info_, RankInfo::Create(plan, options.rank));

  SPARKSTACK_ASSIGN_OR_RETURN(auto world, HostCommunicator::Create(*self->rendezvous_));
  SPARKSTACK_ASSIGN_OR_RETURN(self->tp_group_, world->Split(plan.TpGroup(options.rank)));
  self->world_ = std::move(world);

  SPARKSTACK_ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(self->job_.model_dir));
  SPARKSTACK_ASSIGN_OR_RETURN(std::vector<Range> stages, SplitLayersByBytes(config, plan.pp));
  const Range layers = stages[self->info_.stage];
  self->backend_ = MakeCpuBackend({.threads = self->job_.threads});
  SPARKSTACK_ASSIGN_OR_RETURN(
      self->model_,
      LoadModel(self->job_.model_dir, *self->backend_,
                {.tp_rank = self->info_.tp_rank,
                 .tp_size = plan.tp,
                 .tp_comm = self->tp_group_.get(),
                 .layer_begin = layers.begin,
                 .layer_end = layers.end,
                 .first_stage = plan.IsFirstStage(options.rank),
                 .last_stage = plan.IsLastStage(options.rank)}));
  // Every rank loaded its shard before rank 0 starts stepping.
  SPARKSTACK_RETURN_IF_ERROR(self->world_->Barrier());
  return self;
}

absl::Status ClusterRank::BroadcastPlan(StepPlan& plan) {
  std::string header = info_.rank == 0 ? EncodeStepPlanHeader(plan)
                                       : std::string(kStepPlanHeaderBytes, '\0');
  SPARKSTACK_RETURN_IF_ERROR(world_->Broadcast(header.data(), header.size(), 0));
  if (info_.rank != 0) SPARKSTACK_RETURN_IF_ERROR(DecodeStepPlanHeader(header, plan));
  if (plan.tokens.empty()) return absl::OkStatus();
  return world_->Broadcast(plan.tokens.data(), plan.tokens.size() * sizeof(int32_t), 0);
}

absl::StatusOr<ClusterRank::StepOutput> ClusterRank::Dispatch(const StepPlan& plan) {
  const ParallelPlan& p = info_.plan;
  const int rank = info_.rank;
  const int64_t tokens = std::ssize(plan.tokens);
  if (plan.kind == StepKind::kPrefill) {
    SPARKSTACK_RETURN_IF_ERROR(ValidateSamplingParams(plan.sampling));
    Sequence& sequence = sequences_[plan.sequence];
    SPARKSTACK_ASSIGN_OR_RETURN(sequence.cache, model_->NewKvCache(plan.kv_capacity));
    sequence.sampler = std::make_unique<Sampler>(plan.sampling);
  }
  auto found = sequences_.find(plan.sequence);
  if (found == sequences_.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("decode step for sequence ", plan.sequence, " before its prefill"));
  }
  Sequence& sequence = found->second;

  Tensor hidden;
  if (p.IsFirstStage(rank)) {
    SPARKSTACK_ASSIGN_OR_RETURN(hidden, model_->Embed(plan.tokens));
  } else {
    hidden = backend_->Allocate(DType::kF32, {tokens, model_->config().hidden_size});
    SPARKSTACK_RETURN_IF_ERROR(world_->Recv(hidden.data(), hidden.nbytes(), p.PrevStageRank(rank)));
  }
  SPARKSTACK_RETURN_IF_ERROR(model_->RunLayers(hidden, plan.start, sequence.cache));
  if (!p.IsLastStage(rank)) {
    SPARKSTACK_RETURN_IF_ERROR(world_->Send(hidden.data(), hidden.nbytes(), p.NextStageRank(rank)));
    return StepOutput{};
  }

  // The last stage computes logits (all its tp ranks take part); its tp rank 0 samples.
  StepOutput output;
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor last, hidden.SliceRows(tokens - 1, tokens));
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor logits, model_->Logits(last));
  if (rank != SamplerRank()) return output;
  std::span<const float> row(logits.data_as<float>(), static_cast<size_t>(logits.numel()));
  SPARKSTACK_ASSIGN_OR_RETURN(output.token, sequence.sampler->Sample(row));
  if (plan.kind == StepKind::kPrefill) output.logits.assign(row.begin(), row.end());
  if (rank != 0) {  // pipeline: the token (and prefill logits) travel back to rank 0
    SPARKSTACK_RETURN_IF_ERROR(world_->Send(&output.token, sizeof(int32_t), 0));
    if (plan.kind == StepKind::kPrefill) {
      SPARKSTACK_RETURN_IF_ERROR(
          world_->Send(output.logits.data(), output.logits.size() * sizeof(float), 0));
    }
  }
  return output;
}

absl::StatusOr<ClusterRank::StepOutput> ClusterRank::Collect(const StepPlan& plan,
                                                             StepOutput dispatched) {
  if (SamplerRank() == 0) return dispatched;
  StepOutput output;
  SPARKSTACK_RETURN_IF_ERROR(world_->Recv(&output.token, sizeof(int32_t), SamplerRank()));
  if (plan.kind == StepKind::kPrefill) {
    output.logits.resize(model_->config().vocab_size);
    SPARKSTACK_RETURN_IF_ERROR(world_->Recv(
        output.logits.data(), output.logits.size() * sizeof(float), SamplerRank()));
  }
  return output;
}

absl::StatusOr<std::vector<GenerationResult>> ClusterRank::Generate(
    std::span<const std::vector<int32_t>> prompts, const GenerationOptions& options) {
  if (info_.rank != 0) return absl::FailedPreconditionError("only rank 0 drives generation");
  SPARKSTACK_RETURN_IF_ERROR(ValidateSamplingParams(options.sampling));
  const ModelConfig& config = model_->config();
  std::vector<StepPlan> plans;
  for (size_t s = 0; s < prompts.size(); ++s) {
    const std::vector<int32_t>& prompt = prompts[s];
    const int64_t needed = std::ssize(prompt) + options.max_tokens;
    if (prompt.empty() || std::ssize(prompt) > kStepPlanMaxTokens ||
        needed > config.max_position_embeddings) {
      return absl::InvalidArgumentError(absl::StrCat(
          "prompt ", s, " of ", prompt.size(), " tokens + max_tokens ", options.max_tokens,
          " must be non-empty and fit the context of ", config.max_position_embeddings));
    }
    for (int32_t id : prompt) {  // checked here so that no rank fails mid-step
      if (id < 0 || id >= config.vocab_size) {
        return absl::OutOfRangeError(absl::StrCat(
            "token id ", id, " is outside the vocabulary [0, ", config.vocab_size, ")"));
      }
    }
    SamplingParams sampling = options.sampling;
    sampling.seed += s;
    plans.push_back({.kind = StepKind::kPrefill,
                     .sequence = static_cast<uint32_t>(s),
                     .start = 0,
                     .kv_capacity = static_cast<uint32_t>(std::max<int64_t>(needed, 1)),
                     .sampling = sampling,
                     .tokens = prompt});
  }
  std::vector<GenerationResult> results(prompts.size());
  // Every sequence prefills (its last logits are reported even with max_tokens = 0).
  std::vector<bool> active(prompts.size(), true);
  std::vector<StepOutput> dispatched(prompts.size());
  while (std::find(active.begin(), active.end(), true) != active.end()) {
    for (size_t s = 0; s < plans.size(); ++s) {  // every micro-batch enters the pipeline ...
      if (!active[s]) continue;
      SPARKSTACK_RETURN_IF_ERROR(BroadcastPlan(plans[s]));
      SPARKSTACK_ASSIGN_OR_RETURN(dispatched[s], Dispatch(plans[s]));
    }
    for (size_t s = 0; s < plans.size(); ++s) {  // ... before any token comes back
      if (!active[s]) continue;
      SPARKSTACK_ASSIGN_OR_RETURN(StepOutput output, Collect(plans[s], std::move(dispatched[s])));
      GenerationResult& result = results[s];
      if (plans[s].kind == StepKind::kPrefill) result.last_logits = std::move(output.logits);
      if (options.max_tokens == 0) {
        active[s] = false;
        continue;
      }
      result.output_ids.push_back(output.token);
      const auto& eos = config.eos_token_ids;
      const bool at_eos = std::find(eos.begin(), eos.end(), output.token) != eos.end();
      if ((options.stop_at_eos && at_eos) || std::ssize(result.output_ids) == options.max_tokens) {
        active[s] = false;
        continue;
      }
      StepPlan& plan = plans[s];
      plan.kind = StepKind::kDecode;
      plan.start += std::ssize(plan.tokens);
      plan.tokens = {output.token};
    }
  }
  return results;
}

absl::Status ClusterRank::Stop() {
  StepPlan plan{.kind = StepKind::kStop};
  sequences_.clear();
  return BroadcastPlan(plan);
}

absl::Status ClusterRank::Follow() {
  if (info_.rank == 0) return absl::FailedPreconditionError("rank 0 drives; it does not follow");
  while (true) {
    StepPlan plan;
    SPARKSTACK_RETURN_IF_ERROR(BroadcastPlan(plan));
    if (plan.kind == StepKind::kStop) {
      sequences_.clear();
      return absl::OkStatus();
    }
    SPARKSTACK_RETURN_IF_ERROR(Dispatch(plan).status());
  }
}

}  // namespace sparkstack
