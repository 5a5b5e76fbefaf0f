#include "runtime/engine/model_runner.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "runtime/backend/cpu/cpu_backend.h"
#include "runtime/core/status_macros.h"
#include "runtime/backend/step_graphs.h"
#include "runtime/engine/rank_backend.h"
#include "spdlog/spdlog.h"
#include "runtime/model/pipeline_split.h"

namespace sparkstack {
namespace {

absl::StatusOr<Tensor> AllocateIndices(Backend& backend, int64_t count) {
  return backend.Allocate(DType::kI32, {std::max<int64_t>(count, 1)});
}

// The first `count` entries of a buffer of indices, as an i32 [count] tensor.
absl::StatusOr<Tensor> Prefix(const Tensor& buffer, int64_t count) {
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor t, buffer.SliceRows(0, count));
  return t;
}

}  // namespace

int64_t ThreadCpuMicros() {
  timespec now;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return int64_t{now.tv_sec} * 1000000 + now.tv_nsec / 1000;
}

absl::StatusOr<std::unique_ptr<ModelRunner>> ModelRunner::Create(const EngineOptions& options,
                                                                  RankComms& comms) {
  std::unique_ptr<ModelRunner> r(new ModelRunner());
  r->options_ = options;
  r->plan_ = options.plan;
  r->world_ = comms.world.get();
  r->rank_ = r->world_ ? r->world_->rank() : 0;
  const int world_size = r->world_ ? r->world_->size() : 1;
  SPARKSTACK_RETURN_IF_ERROR(r->plan_.ValidateWorld(world_size));
  SPARKSTACK_ASSIGN_OR_RETURN(RankInfo info, RankInfo::Create(r->plan_, r->rank_));
  r->is_sampler_ = r->rank_ == r->sampler_rank();

  SPARKSTACK_ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(options.model_dir));
  SPARKSTACK_ASSIGN_OR_RETURN(std::vector<Range> stages, SplitLayersByBytes(config, r->plan_.pp));
  ModelLoadOptions load{
      .shard = {.tp_rank = info.tp_rank,
                .tp_size = r->plan_.tp,
                .tp_comm = comms.tp_group.get(),
                .ep_size = r->plan_.ExpertParallel(),
                .layer_begin = stages[info.stage].begin,
                .layer_end = stages[info.stage].end,
                .first_stage = r->plan_.IsFirstStage(r->rank_),
                .last_stage = r->plan_.IsLastStage(r->rank_)},
      .max_model_len = options.max_model_len};
  // The backend EngineOptions::backend names (for CUDA: checked, tuned, memory planned).
  SPARKSTACK_ASSIGN_OR_RETURN(RankBackend rank_backend,
                              CreateRankBackend(options, config, load.shard));
  r->backend_ = std::move(rank_backend.backend);
  r->planned_kv_blocks_ = rank_backend.planned_kv_blocks;
  spdlog::debug("rank {}: backend {}", r->rank_, rank_backend.summary);
  // On a device backend the model's collectives and the stage hand-offs run on NCCL, ordered
  // with the kernels on the compute stream.
  SPARKSTACK_ASSIGN_OR_RETURN(r->device_comms_, DeviceComms::Create(comms, *r->backend_));
  r->data_world_ = r->device_comms_ ? r->device_comms_->world() : r->world_;
  if (r->device_comms_ && r->plan_.tp > 1) load.shard.tp_comm = r->device_comms_->tp_group();
  SPARKSTACK_ASSIGN_OR_RETURN(r->model_, LoadModel(options.model_dir, *r->backend_, load));

  Backend& backend = *r->backend_;
  const int64_t max_tokens = options.max_num_batched_tokens;
  const int64_t max_seqs = options.max_num_seqs;
  const StepLimits limits = {.max_tokens = max_tokens,
                             .max_seqs = max_seqs,
                             .max_logit_rows = max_seqs};
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor workspace,
                              backend.Allocate(DType::kU8, {static_cast<int64_t>(Arena::BufferBytes(
                                                               r->model_->WorkspaceBytes(limits)))}));
  r->workspace_ = Arena(std::move(workspace));
  r->max_blocks_per_seq_ = (options.max_model_len + kKvBlockSize - 1) / kKvBlockSize;
  SPARKSTACK_ASSIGN_OR_RETURN(r->token_ids_, AllocateIndices(backend, max_tokens));
  SPARKSTACK_ASSIGN_OR_RETURN(r->positions_, AllocateIndices(backend, max_tokens));
  SPARKSTACK_ASSIGN_OR_RETURN(r->slot_mapping_, AllocateIndices(backend, max_tokens));
  SPARKSTACK_ASSIGN_OR_RETURN(r->query_start_, AllocateIndices(backend, max_seqs + 1));
  SPARKSTACK_ASSIGN_OR_RETURN(r->seq_lens_, AllocateIndices(backend, max_seqs));
  SPARKSTACK_ASSIGN_OR_RETURN(r->logits_rows_, AllocateIndices(backend, max_seqs));
  SPARKSTACK_ASSIGN_OR_RETURN(r->block_table_,
                              AllocateIndices(backend, max_seqs * r->max_blocks_per_seq_));
  SPARKSTACK_ASSIGN_OR_RETURN(r->hidden_,
                              backend.Allocate(DType::kF32, {max_tokens, config.hidden_size}));
  if (load.shard.last_stage) {
    SPARKSTACK_ASSIGN_OR_RETURN(r->logits_,
                                backend.Allocate(DType::kF32, {max_seqs, config.vocab_size}));
  }
  r->vocab_limit_ = options.sampling_vocab_limit > 0
                        ? std::min(options.sampling_vocab_limit, config.vocab_size)
                        : config.vocab_size;
  r->samples_.resize(max_seqs);
  // Decode steps replay graphs captured per batch-size bucket where the backend has graphs and
  // every collective of the step is stream-ordered (tp = 1, or NCCL).
  const char* graphs_env = std::getenv("SPARKSTACK_CUDA_GRAPHS");
  const bool graphs = (r->plan_.tp == 1 || r->device_comms_ != nullptr) &&
                      !(graphs_env != nullptr && std::string_view(graphs_env) == "0");
  r->graphs_ = std::make_unique<DecodeGraphs>(graphs ? GraphsOf(backend) : nullptr,
                                              DecodeGraphs::DefaultBuckets(max_seqs),
                                              r->max_blocks_per_seq_);
  return r;
}

int64_t ModelRunner::AffordableKvBlocks() const {
  const int64_t block_bytes = model_->kv_cache_spec().BytesPerToken() * kKvBlockSize;
  int64_t budget =
      options_.kv_cache_bytes > 0
          ? options_.kv_cache_bytes
          : static_cast<int64_t>(options_.kv_cache_memory_fraction *
                                 static_cast<double>(backend_->AvailableMemory()));
  // A memory plan sized the backend's arena for its KV cache: what is left of it is the KV's.
  if (planned_kv_blocks_ > 0) budget = backend_->AvailableMemory();
  const int64_t useful = options_.max_num_seqs * max_blocks_per_seq_;
  return std::min(useful, block_bytes > 0 ? budget / block_bytes : useful);
}

absl::Status ModelRunner::AllocateKvCache(int64_t num_blocks) {
  SPARKSTACK_ASSIGN_OR_RETURN(cache_, sparkstack::AllocateKvCache(
                                          *backend_, model_->kv_cache_spec(), num_blocks));
  const ModelConfig& config = model_->config();
  state_ = BatchState({.vocab_size = config.vocab_size,
                       .max_model_len = options_.max_model_len,
                       .block_size = kKvBlockSize,
                       .num_blocks = num_blocks});
  plan_limits_ = {.max_sequences = options_.max_num_seqs,
                  .max_tokens = options_.max_model_len,
                  .num_blocks = num_blocks};
  plan_limits_.max_payload_bytes = MaxStepPlanPayload(plan_limits_);
  return absl::OkStatus();
}

absl::Status ModelRunner::Upload(const HostBatch& host, ForwardBatch& batch) {
  const int64_t tokens = host.num_tokens();
  const int64_t seqs = host.num_seqs();
  if (tokens > options_.max_num_batched_tokens || seqs > options_.max_num_seqs) {
    return absl::InvalidArgumentError(absl::StrCat(
        "step of ", tokens, " tokens and ", seqs, " sequences exceeds the limits of ",
        options_.max_num_batched_tokens, " and ", options_.max_num_seqs));
  }
  Backend& b = *backend_;
  auto upload = [&](const std::vector<int32_t>& values, const Tensor& buffer,
                    Tensor& out) -> absl::Status {
    SPARKSTACK_ASSIGN_OR_RETURN(out, Prefix(buffer, std::ssize(values)));
    return b.CopyFromHost(values.data(), out);
  };
  SPARKSTACK_RETURN_IF_ERROR(upload(host.token_ids, token_ids_, batch.token_ids));
  SPARKSTACK_RETURN_IF_ERROR(upload(host.positions, positions_, batch.positions));
  SPARKSTACK_RETURN_IF_ERROR(upload(host.logits_rows, logits_rows_, batch.logits_rows));
  AttentionMetadata& m = batch.attention;
  SPARKSTACK_RETURN_IF_ERROR(upload(host.slot_mapping, slot_mapping_, m.slot_mapping));
  SPARKSTACK_RETURN_IF_ERROR(upload(host.query_start, query_start_, m.query_start));
  SPARKSTACK_RETURN_IF_ERROR(upload(host.seq_lens, seq_lens_, m.seq_lens));
  Tensor table;
  SPARKSTACK_RETURN_IF_ERROR(upload(host.block_table, block_table_, table));
  SPARKSTACK_ASSIGN_OR_RETURN(m.block_table, table.Reshape({seqs, host.max_blocks}));
  m.num_seqs = seqs;
  m.num_decodes = host.num_decodes;
  m.num_tokens = tokens;
  m.max_query_len = host.max_query_len;
  m.max_seq_len = host.max_seq_len;
  m.block_size = kKvBlockSize;
  return absl::OkStatus();
}

absl::Status ModelRunner::Execute(const StepPlan& plan, StepResult* result) {
  // The previous step's collectives finished (bounded: a dead peer is an error, not a hang).
  if (device_comms_ && !is_sampler_) SPARKSTACK_RETURN_IF_ERROR(device_comms_->Wait());
  SPARKSTACK_RETURN_IF_ERROR(state_.Apply(plan, host_));
  const int64_t bucket = graphs_->BucketFor(host_);
  if (bucket > 0) graphs_->Pad(host_, bucket);
  ForwardBatch batch;
  SPARKSTACK_RETURN_IF_ERROR(Upload(host_, batch));
  const int64_t tokens = host_.num_tokens();
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor hidden, hidden_.SliceRows(0, tokens));
  if (!plan_.IsFirstStage(rank_)) {
    SPARKSTACK_RETURN_IF_ERROR(data_world_->Recv(hidden.data(), hidden.nbytes(),
                                                 plan_.PrevStageRank(rank_)));
  }
  const bool last = plan_.IsLastStage(rank_);
  Tensor logits;
  if (last) {
    SPARKSTACK_ASSIGN_OR_RETURN(logits, logits_.SliceRows(0, batch.num_logits()));
  }
  const auto start = std::chrono::steady_clock::now();
  const int64_t start_cpu = ThreadCpuMicros();
  auto measure = [&] {
    last_compute_us_ = std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::steady_clock::now() - start)
                           .count();
    last_compute_cpu_us_ = ThreadCpuMicros() - start_cpu;
  };
  SPARKSTACK_RETURN_IF_ERROR(graphs_->Run(bucket, [&] {
    return model_->Forward(batch, cache_, workspace_, hidden, last ? &logits : nullptr);
  }));
  measure();
  if (!last) {
    // Enqueued on a device backend: this rank takes the next plan while the GPU works.
    return data_world_->Send(hidden.data(), hidden.nbytes(), plan_.NextStageRank(rank_));
  }
  if (!is_sampler_) return absl::OkStatus();
  if (device_comms_) SPARKSTACK_RETURN_IF_ERROR(device_comms_->Wait());
  result->step_id = plan.step_id;
  SPARKSTACK_RETURN_IF_ERROR(SampleStep(host_, logits, *result));
  measure();
  return absl::OkStatus();
}

absl::Status ModelRunner::SampleStep(const HostBatch& host, const Tensor& logits,
                                     StepResult& result) {
  const int64_t rows = std::ssize(host.sampling);
  result.samples.clear();
  result.logits.clear();
  if (rows == 0) return absl::OkStatus();
  const std::span<SampledToken> out(samples_.data(), rows);
  // A padded (graph) step computed logits for its inert rows too: only the first `rows` count.
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor sampled, logits.SliceRows(0, rows));
  SPARKSTACK_RETURN_IF_ERROR(backend_->Sample(sampled, vocab_limit_, host.sampling, out));
  const int64_t vocab = logits.dim(1);
  for (int64_t r = 0; r < rows; ++r) {
    result.samples.push_back({.id = host.sample_ids[r], .sample = out[r]});
    if (!host.return_logits[r]) continue;
    SequenceLogits& row = result.logits.emplace_back();
    row.id = host.sample_ids[r];
    row.logits.resize(vocab);
    SPARKSTACK_ASSIGN_OR_RETURN(Tensor one, logits.SliceRows(r, r + 1));
    SPARKSTACK_RETURN_IF_ERROR(backend_->CopyToHost(one, row.logits.data()));
  }
  return absl::OkStatus();
}

}  // namespace sparkstack
