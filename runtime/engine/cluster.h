// A rank of a tensor x pipeline parallel group running one model: joins the group, loads its
// shard, and executes steps. Rank 0 drives (it decides every step and broadcasts a StepPlan over
// the data plane); every other rank follows until rank 0 sends Stop. The last stage's tp rank 0
// samples and sends the token back to rank 0.
//
// Several sequences in flight are micro-batches of the pipeline: in each step rank 0 dispatches
// every active sequence's plan before it collects any token, so while stage s works on sequence
// i, stage s - 1 already works on sequence i + 1. Sends are eager (they do not wait for the
// receiver), so no stage waits for a later one inside a step.
//
// One code path at every scale: the ranks may be threads' processes on one machine (loopback),
// processes in network namespaces, or separate machines; only the rendezvous address differs.
#ifndef SPARKSTACK_RUNTIME_ENGINE_CLUSTER_H_
#define SPARKSTACK_RUNTIME_ENGINE_CLUSTER_H_

#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/backend/backend.h"
#include "runtime/engine/generation.h"
#include "runtime/engine/step_plan.h"
#include "runtime/model/model.h"
#include "runtime/parallel/communicator.h"
#include "runtime/parallel/parallel_plan.h"
#include "runtime/parallel/rendezvous.h"

namespace sparkstack {

// What every rank runs. Rank 0 sends it to the others through the rendezvous, so a worker needs
// only its rank, the world size and rank 0's address.
struct ClusterJob {
  std::string model_dir;
  ParallelPlan plan;
  int threads = 1;  // CPU threads per rank for the linear layers
};

class ClusterRank {
 public:
  // Joins the group. Rank 0 passes `job` (and may pass a pre-bound listener); other ranks pass
  // nullptr and receive it. Then every rank connects the data plane and loads its shard.
  static absl::StatusOr<std::unique_ptr<ClusterRank>> Join(const RendezvousOptions& options,
                                                           const ClusterJob* job,
                                                           RendezvousListener* listener = nullptr);
  ~ClusterRank();

  const RankInfo& info() const { return info_; }
  const ClusterJob& job() const { return job_; }

  // Rank 0 only: generates for each prompt with all ranks taking part, the prompts as
  // micro-batches in flight together. Sequence i samples with seed options.sampling.seed + i.
  absl::StatusOr<std::vector<GenerationResult>> Generate(
      std::span<const std::vector<int32_t>> prompts, const GenerationOptions& options);
  // Rank 0 only: tells every rank to leave Follow().
  absl::Status Stop();
  // Ranks other than 0: executes rank 0's steps until it sends Stop.
  absl::Status Follow();

 private:
  ClusterRank() = default;
  struct StepOutput {
    int32_t token = -1;        // the sampled token (on the sampling rank, then on rank 0)
    std::vector<float> logits;  // the step's logits, prefill steps only (same ranks)
  };
  struct Sequence {
    KvCache cache;
    std::unique_ptr<Sampler> sampler;
  };
  // This rank's part of a step: embed or receive, run its layers, send on or sample. The sampling
  // rank sends the token (and prefill logits) to rank 0, which picks them up with Collect.
  absl::StatusOr<StepOutput> Dispatch(const StepPlan& plan);
  absl::StatusOr<StepOutput> Collect(const StepPlan& plan, StepOutput dispatched);
  absl::Status BroadcastPlan(StepPlan& plan);
  int SamplerRank() const { return info_.plan.RankOf(info_.plan.pp - 1, 0); }

  ClusterJob job_;
  RankInfo info_;
  std::unique_ptr<Rendezvous> rendezvous_;
  std::unique_ptr<Communicator> world_;
  std::unique_ptr<Communicator> tp_group_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Model> model_;
  std::map<uint32_t, Sequence> sequences_;
};

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_ENGINE_CLUSTER_H_
