// The data-plane probe: proves that a group formed by the control plane can run collectives, before
// (or instead of) loading a model. Every rank builds a HostCommunicator from the bootstrap and
// all-reduces two f32 buffers of rank-dependent small integers — one small enough for the latency
// algorithm, one large enough for the ring — and checks every element against the exact sum (the
// values are integers below 2^24, so the f32 sums are exact whatever the order). The rank then
// holds its communicator until stopped, so the group stays connected like a serving one.
//
// Used by tests and by `sparkstack serve --probe` (a cluster check without a model).
#ifndef SPARKSTACK_RUNTIME_CONTROL_DATA_PLANE_PROBE_H_
#define SPARKSTACK_RUNTIME_CONTROL_DATA_PLANE_PROBE_H_

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "runtime/control/head_rank.h"
#include "runtime/control/worker_rank.h"
#include "runtime/parallel/communicator.h"

namespace sparkstack::control {

// Elements of the two probe buffers (odd sizes on purpose).
inline constexpr size_t kProbeSmallCount = 1001;
inline constexpr size_t kProbeLargeCount = 300007;

// The value rank `rank` contributes at element i (an integer; the sum over ranks is exact in f32).
float ProbeValue(int rank, size_t i);

// Builds the host communicator from `bootstrap`, runs and checks both all-reduces. The error names
// the first wrong element (index, expected, found).
absl::StatusOr<std::unique_ptr<Communicator>> ProbeDataPlane(Bootstrap& bootstrap);

// Worker side: reports kConnecting, probes, reports kReady (with what was checked), holds the
// communicator until stopped.
absl::Status RunDataPlaneProbeWorker(const LoadPlan& plan, Bootstrap& bootstrap,
                                     WorkerContext& context);

// Head side (rank 0). Thread-safe accessors for tests.
class DataPlaneProbeHead final : public HeadRank {
 public:
  absl::Status Start(const LoadPlan& plan, Bootstrap& bootstrap,
                     const std::atomic<bool>& cancel) override;
  void Stop(const absl::Status& why) override;

  // How many groups this head has formed and verified.
  int verified_groups() const;
  // The reason of the last Stop ("" before any).
  std::string last_stop_reason() const;

 private:
  mutable std::mutex mu_;
  std::unique_ptr<Communicator> world_ ABSL_GUARDED_BY(mu_);
  int verified_ ABSL_GUARDED_BY(mu_) = 0;
  std::string last_stop_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sparkstack::control

#endif  // SPARKSTACK_RUNTIME_CONTROL_DATA_PLANE_PROBE_H_
