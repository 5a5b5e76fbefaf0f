// HeadRank: rank 0 as the coordinator sees it. On the head, `sparkstack serve` runs rank 0 (the
// engine core and rank 0's share of the model) in its own process; the coordinator builds it anew
// each time it forms the group and tears it down when the group fails.
#ifndef SPARKSTACK_RUNTIME_CONTROL_HEAD_RANK_H_
#define SPARKSTACK_RUNTIME_CONTROL_HEAD_RANK_H_

#include <atomic>

#include "absl/status/status.h"
#include "runtime/control/control_types.h"
#include "runtime/parallel/bootstrap.h"

namespace sparkstack::control {

class HeadRank {
 public:
  virtual ~HeadRank() = default;

  // Builds rank 0 of a newly formed group (`plan.rank` is 0) from `bootstrap`, which relays blobs
  // to the node agents' ranks and stays valid until Stop returns. Called on a coordinator thread,
  // concurrently with the nodes loading; returns once rank 0 is loaded and connected (the group is
  // ready when every node also is) or with the error that fails the formation. `cancel` becomes
  // true when the formation is abandoned (a node failed meanwhile): return promptly; the
  // bootstrap's calls fail from then on.
  virtual absl::Status Start(const LoadPlan& plan, Bootstrap& bootstrap,
                             const std::atomic<bool>& cancel) = 0;

  // The group is gone (a node failed, or the coordinator shuts down): end rank 0's in-flight work
  // with `why` (Unavailable naming the node) and release its communicators. Called once after
  // every Start (also a failed or cancelled one), never concurrently with it.
  virtual void Stop(const absl::Status& why) = 0;
};

}  // namespace sparkstack::control

#endif  // SPARKSTACK_RUNTIME_CONTROL_HEAD_RANK_H_
