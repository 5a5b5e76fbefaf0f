// Cooperative user-space threads for the CUDA emulation: every emulated GPU thread of a block is a
// Fiber, and all of them run on the OS thread that launched the kernel, one at a time, switching
// only where the emulation says so (barriers, warp-collective operations, exit). Built on POSIX
// ucontext (glibc, x86-64 and aarch64). Each switch is announced to AddressSanitizer
// (__sanitizer_start/finish_switch_fiber) so that ASan builds keep checking the fibers' stacks.
//
// Thread safety: a Fiber belongs to the OS thread that created it.
#ifndef SPARKSTACK_KERNELS_EMU_FIBER_H_
#define SPARKSTACK_KERNELS_EMU_FIBER_H_

#include <ucontext.h>

#include <cstddef>

#include "kernels/emu/guard.h"

namespace sparkstack::emu {

// A fiber stack: anonymous memory with an inaccessible guard page below it, so that an overflow
// faults instead of corrupting a neighbour.
class FiberStack {
 public:
  explicit FiberStack(size_t bytes);
  ~FiberStack();
  FiberStack(const FiberStack&) = delete;
  FiberStack& operator=(const FiberStack&) = delete;

  void* base() const { return base_; }
  size_t size() const { return size_; }

 private:
  void* mapping_ = nullptr;
  size_t mapping_size_ = 0;
  void* base_ = nullptr;  // lowest usable address (above the guard page)
  size_t size_ = 0;
};

class Fiber {
 public:
  // A fiber that runs entry(arg) on `stack` the first time it is resumed. The stack must outlive
  // the fiber and not be used by another live fiber.
  Fiber(FiberStack& stack, void (*entry)(void*), void* arg);
  Fiber(const Fiber&) = delete;
  Fiber& operator=(const Fiber&) = delete;

  // From the scheduler: runs the fiber until it calls Suspend() or its entry returns.
  void Resume();
  // From inside the fiber: switches back to the scheduler that resumed it.
  void Suspend();
  // True once entry() has returned; the fiber must not be resumed again.
  bool finished() const { return finished_; }

 private:
  static void Trampoline(unsigned int hi, unsigned int lo);

  ucontext_t context_{};
  ucontext_t caller_{};
  FiberStack& stack_;
  void (*entry_)(void*);
  void* arg_;
  bool finished_ = false;
  // AddressSanitizer bookkeeping (unused without ASan).
  void* fake_stack_ = nullptr;         // this fiber's fake stack while it is switched out
  void* caller_fake_stack_ = nullptr;  // the scheduler's fake stack while the fiber runs
  const void* caller_stack_bottom_ = nullptr;
  size_t caller_stack_size_ = 0;
};

}  // namespace sparkstack::emu

#endif  // SPARKSTACK_KERNELS_EMU_FIBER_H_
