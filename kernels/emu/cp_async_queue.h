// The outstanding cp.async copies of one emulated thread, grouped as PTX groups them
// (ISA 9.7.9.25.3, "cp.async", "cp.async.commit_group", "cp.async.wait_group"): copies issued since
// the last commit form the open group; commit closes it (an empty group is trivially complete);
// wait_group N completes every committed group but the N most recent. The emulation completes a
// copy as late as PTX allows, at the wait that covers it, and the issuing code poisons the
// destination at issue: reading a stage before its wait, or overwriting one another thread still
// reads, shows up as garbage in the result.
#ifndef SPARKSTACK_KERNELS_EMU_CP_ASYNC_QUEUE_H_
#define SPARKSTACK_KERNELS_EMU_CP_ASYNC_QUEUE_H_

#include <cstdint>
#include <deque>
#include <vector>

#include "kernels/emu/guard.h"

namespace sparkstack::emu {

class CpAsyncQueue {
 public:
  // Records a copy into `dst` of `src_bytes` bytes read from `src` now, zero-filled up to
  // `cp_bytes` (<= 16).
  void Issue(void* dst, const void* src, int cp_bytes, int src_bytes);
  void Commit();
  // Completes (writes) every committed group but the `n` most recent.
  void WaitGroup(int n);
  // Copies issued and not yet completed (open group included).
  int outstanding() const;

 private:
  struct Copy {
    uint8_t* dst;
    uint8_t data[16];
    int bytes;
  };
  std::vector<Copy> open_;
  std::deque<std::vector<Copy>> committed_;
};

}  // namespace sparkstack::emu

#endif  // SPARKSTACK_KERNELS_EMU_CP_ASYNC_QUEUE_H_
