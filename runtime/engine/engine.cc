// The engine core (rank 0) and the worker loop (ranks > 0). See engine.h.
#include "runtime/engine/engine.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <limits>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "runtime/core/status_macros.h"
#include "runtime/engine/model_runner.h"
#include "runtime/engine/request_tracker.h"
#include "runtime/engine/scheduler.h"
#include "runtime/engine/step_transport.h"
#include "runtime/engine/stop_checker.h"
#include "runtime/tokenizer/tokenizer.h"

namespace sparkstack {
namespace {

// An idle group checks its peers this often (a dead rank is noticed within about a second).
constexpr auto kKeepAliveInterval = std::chrono::milliseconds(500);
// Longest a rank waits for another inside a step (a long prefill on a slow machine).
constexpr auto kStepTimeout = std::chrono::minutes(10);
// A follower waits for the next plan this long: forever, in practice.
constexpr auto kIdleTimeout = std::chrono::hours(24 * 365);

// Every rank offers what it can hold; all use the smallest offer, so block ids mean the same
// everywhere.
absl::StatusOr<int64_t> AgreeKvBlocks(Communicator* world, const ModelRunner& runner,
                                      int64_t min_blocks) {
  const int32_t mine = static_cast<int32_t>(
      std::min<int64_t>(runner.AffordableKvBlocks(), std::numeric_limits<int32_t>::max()));
  std::vector<int32_t> offers(world ? world->size() : 1, mine);
  if (world) SPARKSTACK_RETURN_IF_ERROR(world->AllGather(&mine, offers.data(), 1, DType::kI32));
  const auto smallest = std::min_element(offers.begin(), offers.end());
  if (*smallest < min_blocks) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "rank ", smallest - offers.begin(), " can hold ", *smallest, " KV blocks, fewer than the ",
        min_blocks,
        " one sequence of max_model_len tokens needs: raise kv_cache_bytes (or the memory "
        "fraction) or lower max_model_len"));
  }
  return *smallest;
}

std::vector<int32_t> EosIds(const ModelConfig& config, const tokenizer::Tokenizer* tokenizer) {
  std::vector<int32_t> ids;
  for (int64_t id : config.eos_token_ids) ids.push_back(static_cast<int32_t>(id));
  if (tokenizer) ids.insert(ids.end(), tokenizer->eos_ids().begin(), tokenizer->eos_ids().end());
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

// The ids a request must not sample before min_tokens: its stop ids, and EOS unless ignored.
std::vector<int32_t> MinTokensBans(const Request& request, std::span<const int32_t> eos_ids) {
  std::vector<int32_t> banned = request.stopping.stop_token_ids;
  if (!request.stopping.ignore_eos) banned.insert(banned.end(), eos_ids.begin(), eos_ids.end());
  std::sort(banned.begin(), banned.end());
  banned.erase(std::unique(banned.begin(), banned.end()), banned.end());
  return banned;
}

}  // namespace

absl::Status ValidateRequest(const Request& r, const ModelConfig& config,
                             const EngineOptions& options, bool has_tokenizer) {
  if (r.prompt_ids.empty()) return absl::InvalidArgumentError("the prompt has no tokens");
  for (size_t i = 0; i < r.prompt_ids.size(); ++i) {
    if (r.prompt_ids[i] < 0 || r.prompt_ids[i] >= config.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat("prompt token ", i, " is id ", r.prompt_ids[i],
                                                     ", outside the vocabulary [0, ",
                                                     config.vocab_size, ")"));
    }
  }
  const StoppingParams& s = r.stopping;
  SPARKSTACK_RETURN_IF_ERROR(ValidateStoppingParams(s));
  const int64_t total = std::ssize(r.prompt_ids) + std::max<int64_t>(s.max_tokens, 1);
  if (total > options.max_model_len) {
    return absl::InvalidArgumentError(
        absl::StrCat("the prompt (", r.prompt_ids.size(), " tokens) plus max_tokens (",
                     s.max_tokens, ") exceeds the context of ", options.max_model_len, " tokens"));
  }
  SPARKSTACK_RETURN_IF_ERROR(ValidateSamplingParams(r.sampling));
  if (r.detokenize && !has_tokenizer) {
    return absl::InvalidArgumentError(
        absl::StrCat("detokenizing needs a tokenizer.json in ", options.model_dir));
  }
  if (!s.stop_strings.empty() && !r.detokenize) {
    return absl::InvalidArgumentError("stop strings are matched on the text: enable detokenize");
  }
  return absl::OkStatus();
}

struct Engine::Impl {
  EngineOptions options;
  RankComms comms;
  ModelConfig config;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer;
  std::vector<int32_t> eos_ids;
  std::unique_ptr<ModelRunner> runner;
  std::unique_ptr<Scheduler> scheduler;

  // Shared with client threads.
  mutable absl::Mutex mu;
  struct Pending {
    RequestId id;
    Request request;
    OutputCallback callback;
  };
  std::deque<Pending> inbox ABSL_GUARDED_BY(mu);
  std::vector<RequestId> aborts ABSL_GUARDED_BY(mu);
  bool stopping ABSL_GUARDED_BY(mu) = false;
  absl::Status health ABSL_GUARDED_BY(mu);
  EngineStats stats ABSL_GUARDED_BY(mu);
  RequestId next_id ABSL_GUARDED_BY(mu) = 1;

  // Engine core thread only.
  absl::flat_hash_map<RequestId, std::unique_ptr<RequestTracker>> requests;
  absl::flat_hash_map<RequestId, int64_t> tokens_sent;  // tokens the ranks know, per sequence
  std::vector<uint64_t> unsent_releases;
  struct InFlight {
    SchedulerOutput step;
    StepResult result;  // filled at dispatch when rank 0 samples
  };
  std::deque<InFlight> in_flight;
  int64_t steps = 0;
  int64_t generated = 0;
  int64_t step_wall_us = 0;
  int64_t compute_us = 0;
  int64_t step_cpu_us = 0;
  int64_t compute_cpu_us = 0;
  std::thread thread;

  void Loop();
  // Moves queued requests and aborts into the scheduler; false once the engine is stopping.
  bool TakeInbox();
  absl::Status Dispatch(SchedulerOutput step);
  absl::Status CollectOldest();
  StepPlan BuildPlan(const SchedulerOutput& step);
  void FinishRequest(RequestId id, FinishReason reason, absl::Status error = absl::OkStatus());
  void FailAll(const absl::Status& status);
  void PublishStats();
  absl::Status KeepAlive();
  void StopWorkers();
};

bool Engine::Impl::TakeInbox() {
  std::deque<Pending> arrived;
  std::vector<RequestId> aborted;
  {
    absl::MutexLock lock(&mu);
    if (stopping) return false;
    arrived.swap(inbox);
    aborted.swap(aborts);
  }
  for (Pending& p : arrived) {
    auto tracker =
        std::make_unique<RequestTracker>(p.id, std::move(p.request), std::move(p.callback),
                                         tokenizer.get(), eos_ids, options.max_model_len);
    scheduler->Add(p.id, tracker->request().prompt_ids);
    requests[p.id] = std::move(tracker);
  }
  for (RequestId id : aborted) FinishRequest(id, FinishReason::kAbort);
  return true;
}

void Engine::Impl::FinishRequest(RequestId id, FinishReason reason, absl::Status error) {
  auto found = requests.find(id);
  if (found == requests.end()) return;
  found->second->Finish(reason, std::move(error));
  scheduler->Finish(id);
  requests.erase(found);
}

StepPlan Engine::Impl::BuildPlan(const SchedulerOutput& step) {
  StepPlan plan;
  plan.kind = StepKind::kStep;
  plan.step_id = step.step_id;
  unsent_releases.insert(unsent_releases.end(), step.released.begin(), step.released.end());
  plan.released.swap(unsent_releases);
  for (uint64_t id : plan.released) tokens_sent.erase(id);
  for (const ScheduledSequence& s : step.sequences) {
    const std::vector<int32_t>& tokens = scheduler->tokens(s.id);
    PlannedSequence& p = plan.sequences.emplace_back();
    p.id = s.id;
    p.is_new = s.is_new;
    p.samples = s.samples;
    p.num_computed = s.num_computed_tokens;
    p.num_scheduled = s.num_scheduled_tokens;
    p.block_ids = s.block_ids;
    int64_t& sent = tokens_sent[s.id];
    if (s.is_new) sent = 0;
    p.tokens.assign(tokens.begin() + sent, tokens.end());
    sent = std::ssize(tokens);
    const RequestTracker& tracker = *requests.at(s.id);
    if (s.is_new) {
      const Request& request = tracker.request();
      p.num_prompt_tokens = scheduler->num_prompt_tokens(s.id);
      p.sampling = request.sampling;
      p.min_tokens = request.stopping.min_tokens;
      if (p.min_tokens > 0) p.banned_until_min_tokens = MinTokensBans(request, eos_ids);
    }
    p.return_logits =
        s.samples && tracker.num_outputs() == 0 && tracker.request().return_first_logits;
  }
  return plan;
}

absl::Status Engine::Impl::Dispatch(SchedulerOutput step) {
  const StepPlan plan = BuildPlan(step);
  if (comms.world) SPARKSTACK_RETURN_IF_ERROR(BroadcastPlan(*comms.world, plan));
  InFlight& flight = in_flight.emplace_back();
  flight.step = std::move(step);
  SPARKSTACK_RETURN_IF_ERROR(
      runner->Execute(plan, runner->is_sampler() ? &flight.result : nullptr));
  compute_us += runner->last_compute_us();
  compute_cpu_us += runner->last_compute_cpu_us();
  return absl::OkStatus();
}

absl::Status Engine::Impl::CollectOldest() {
  InFlight flight = std::move(in_flight.front());
  in_flight.pop_front();
  if (!runner->is_sampler()) {
    SPARKSTACK_ASSIGN_OR_RETURN(
        flight.result, ReceiveResult(*comms.world, runner->sampler_rank(), options.max_num_seqs,
                                     config.vocab_size));
  }
  if (flight.result.step_id != flight.step.step_id && !flight.result.samples.empty()) {
    return absl::InternalError(absl::StrCat("result of step ", flight.result.step_id,
                                            " arrived for step ", flight.step.step_id));
  }
  std::vector<SampledTokenOf> sampled;
  sampled.reserve(flight.result.samples.size());
  for (const SequenceSample& s : flight.result.samples) {
    sampled.push_back({.id = s.id, .token = s.sample.token});
  }
  scheduler->Complete(flight.step, sampled);
  ++steps;
  generated += std::ssize(sampled);
  for (const ScheduledSequence& s : flight.step.sequences) {
    auto found = requests.find(s.id);
    if (found != requests.end() && s.is_new && found->second->num_outputs() == 0) {
      found->second->set_cached_prompt_tokens(s.num_computed_tokens);
    }
  }
  for (SequenceSample& s : flight.result.samples) {
    auto found = requests.find(s.id);
    if (found == requests.end()) continue;  // aborted while in flight
    RequestTracker& tracker = *found->second;
    std::vector<float> logits;
    for (SequenceLogits& l : flight.result.logits) {
      if (l.id == s.id) logits = std::move(l.logits);
    }
    if (tracker.OnToken(s.sample, std::move(logits))) {
      scheduler->Finish(s.id);
      requests.erase(found);
    }
  }
  return absl::OkStatus();
}

void Engine::Impl::FailAll(const absl::Status& status) {
  {
    absl::MutexLock lock(&mu);
    if (health.ok()) health = status;
  }
  std::vector<RequestId> ids;
  for (const auto& [id, tracker] : requests) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  for (RequestId id : ids) FinishRequest(id, FinishReason::kError, status);
  in_flight.clear();
}

void Engine::Impl::PublishStats() {
  const SchedulerStats s = scheduler->stats();
  absl::MutexLock lock(&mu);
  stats.running = s.running;
  stats.waiting = s.waiting;
  stats.kv_blocks_total = s.blocks_total;
  stats.kv_blocks_used = s.blocks_used;
  stats.prefix_cache_queries = s.prefix_cache_queries;
  stats.prefix_cache_hits = s.prefix_cache_hits;
  stats.preemptions = s.preemptions;
  stats.steps = steps;
  stats.generated_tokens = generated;
  stats.step_wall_us = step_wall_us;
  stats.compute_us = compute_us;
  stats.step_cpu_us = step_cpu_us;
  stats.compute_cpu_us = compute_cpu_us;
}

absl::Status Engine::Impl::KeepAlive() {
  if (!comms.world || comms.world->size() == 1) return absl::OkStatus();
  StepPlan plan;
  plan.kind = StepKind::kKeepAlive;
  SPARKSTACK_RETURN_IF_ERROR(BroadcastPlan(*comms.world, plan));
  return comms.world->Barrier();
}

void Engine::Impl::StopWorkers() {
  if (!comms.world || comms.world->size() == 1) return;
  StepPlan plan;
  plan.kind = StepKind::kStop;
  (void)BroadcastPlan(*comms.world, plan);
}

void Engine::Impl::Loop() {
  const size_t max_in_flight = static_cast<size_t>(options.plan.pp);
  absl::Status failure;
  while (TakeInbox()) {
    if (failure.ok()) {
      const auto step_start = std::chrono::steady_clock::now();
      const int64_t step_start_cpu = ThreadCpuMicros();
      absl::Status status;
      while (status.ok() && in_flight.size() < max_in_flight) {
        SchedulerOutput step = scheduler->Schedule();
        if (step.empty()) {  // its releases ride on the next plan
          unsent_releases.insert(unsent_releases.end(), step.released.begin(), step.released.end());
          break;
        }
        status = Dispatch(std::move(step));
      }
      const bool stepped = status.ok() && !in_flight.empty();
      if (stepped) status = CollectOldest();
      if (!status.ok()) failure = status;
      if (stepped) {
        step_wall_us += std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::steady_clock::now() - step_start)
                            .count();
        step_cpu_us += ThreadCpuMicros() - step_start_cpu;
      }
      PublishStats();
    }
    if (!failure.ok()) FailAll(failure);  // also what arrived after the failure
    if (failure.ok() && (!in_flight.empty() || scheduler->has_work())) continue;
    // Idle: wait for work, checking the group's liveness meanwhile.
    bool woken;
    {
      absl::MutexLock lock(&mu);
      woken = mu.AwaitWithTimeout(absl::Condition(
                                      +[](Impl* impl) ABSL_EXCLUSIVE_LOCKS_REQUIRED(impl->mu) {
                                        return impl->stopping || !impl->inbox.empty() ||
                                               !impl->aborts.empty();
                                      },
                                      this),
                                  absl::FromChrono(kKeepAliveInterval));
    }
    if (!woken && failure.ok()) failure = KeepAlive();
  }
  FailAll(absl::CancelledError("the engine is shutting down"));
  if (failure.ok()) StopWorkers();
}

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Engine::~Engine() {
  {
    absl::MutexLock lock(&impl_->mu);
    impl_->stopping = true;
  }
  if (impl_->thread.joinable()) impl_->thread.join();
}

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(const EngineOptions& options,
                                                       RankComms comms) {
  auto impl = std::make_unique<Impl>();
  SPARKSTACK_ASSIGN_OR_RETURN(impl->options, ResolveEngineOptions(options));
  impl->comms = std::move(comms);
  if (impl->comms.world && impl->comms.world->rank() != 0) {
    return absl::InvalidArgumentError("the engine runs on rank 0; other ranks run RunWorker");
  }
  SPARKSTACK_ASSIGN_OR_RETURN(impl->config, LoadModelConfig(impl->options.model_dir));
  auto tokenizer = tokenizer::Tokenizer::Load(impl->options.model_dir);
  if (tokenizer.ok()) {
    impl->tokenizer = *std::move(tokenizer);
  } else if (!absl::IsNotFound(tokenizer.status())) {
    return tokenizer.status();
  }
  impl->eos_ids = EosIds(impl->config, impl->tokenizer.get());
  if (impl->comms.world) impl->comms.world->set_timeout(kStepTimeout);
  SPARKSTACK_ASSIGN_OR_RETURN(impl->runner, ModelRunner::Create(impl->options, impl->comms));
  const EngineOptions& o = impl->options;
  const int64_t per_sequence = (o.max_model_len + kKvBlockSize - 1) / kKvBlockSize;
  SPARKSTACK_ASSIGN_OR_RETURN(int64_t blocks,
                              AgreeKvBlocks(impl->comms.world.get(), *impl->runner, per_sequence));
  SPARKSTACK_RETURN_IF_ERROR(impl->runner->AllocateKvCache(blocks));
  SPARKSTACK_ASSIGN_OR_RETURN(
      impl->scheduler, Scheduler::Create({.max_num_seqs = o.max_num_seqs,
                                          .max_num_batched_tokens = o.max_num_batched_tokens,
                                          .max_model_len = o.max_model_len,
                                          .num_blocks = blocks,
                                          .block_size = kKvBlockSize,
                                          .enable_prefix_caching = o.enable_prefix_caching}));
  impl->PublishStats();  // the KV pool's size is known before the first step
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->Loop(); });
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

absl::StatusOr<RequestId> Engine::AddRequest(Request request, OutputCallback on_output) {
  SPARKSTACK_RETURN_IF_ERROR(
      ValidateRequest(request, impl_->config, impl_->options, impl_->tokenizer != nullptr));
  absl::MutexLock lock(&impl_->mu);
  if (!impl_->health.ok()) {
    return absl::UnavailableError(
        absl::StrCat("the engine has stopped: ", impl_->health.message()));
  }
  if (impl_->stopping) return absl::UnavailableError("the engine is shutting down");
  const RequestId id = impl_->next_id++;
  impl_->inbox.push_back({id, std::move(request), std::move(on_output)});
  return id;
}

void Engine::Abort(RequestId id) {
  absl::MutexLock lock(&impl_->mu);
  impl_->aborts.push_back(id);
}

EngineStats Engine::stats() const {
  absl::MutexLock lock(&impl_->mu);
  return impl_->stats;
}

absl::Status Engine::health() const {
  absl::MutexLock lock(&impl_->mu);
  return impl_->health;
}

const ModelConfig& Engine::model_config() const { return impl_->config; }
const EngineOptions& Engine::options() const { return impl_->options; }
const tokenizer::Tokenizer* Engine::tokenizer() const { return impl_->tokenizer.get(); }

absl::Status RunWorker(const EngineOptions& options, RankComms comms,
                       const std::function<void()>& on_loaded) {
  if (!comms.world || comms.world->rank() == 0) {
    return absl::InvalidArgumentError("RunWorker is for ranks > 0 of a world");
  }
  comms.world->set_timeout(kStepTimeout);
  SPARKSTACK_ASSIGN_OR_RETURN(std::unique_ptr<ModelRunner> runner,
                              ModelRunner::Create(options, comms));
  const int64_t per_sequence = (options.max_model_len + kKvBlockSize - 1) / kKvBlockSize;
  SPARKSTACK_ASSIGN_OR_RETURN(int64_t blocks,
                              AgreeKvBlocks(comms.world.get(), *runner, per_sequence));
  SPARKSTACK_RETURN_IF_ERROR(runner->AllocateKvCache(blocks));
  if (on_loaded) on_loaded();
  Communicator& world = *comms.world;
  StepResult result;
  while (true) {
    SPARKSTACK_ASSIGN_OR_RETURN(StepPlan plan,
                                ReceivePlan(world, runner->plan_limits(), kIdleTimeout));
    switch (plan.kind) {
      case StepKind::kStop:
        return absl::OkStatus();
      case StepKind::kKeepAlive:
        SPARKSTACK_RETURN_IF_ERROR(world.Barrier());
        continue;
      case StepKind::kStep:
        break;
    }
    SPARKSTACK_RETURN_IF_ERROR(runner->Execute(plan, runner->is_sampler() ? &result : nullptr));
    if (runner->is_sampler()) SPARKSTACK_RETURN_IF_ERROR(SendResult(world, result, 0));
  }
}

}  // namespace sparkstack
