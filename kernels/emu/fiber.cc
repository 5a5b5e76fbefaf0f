#include "kernels/emu/fiber.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#if defined(__SANITIZE_ADDRESS__)
#define SPARKSTACK_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SPARKSTACK_EMU_ASAN 1
#endif
#endif

#if defined(SPARKSTACK_EMU_ASAN)
#include <sanitizer/common_interface_defs.h>
#endif

namespace sparkstack::emu {
namespace {

[[noreturn]] void Die(const char* what) {
  std::perror(what);
  std::abort();
}

// Announces a switch to the stack [bottom, bottom + size); `save` receives the current fake stack
// (nullptr when the current fiber will never run again).
inline void StartSwitch(void** save, const void* bottom, size_t size) {
#if defined(SPARKSTACK_EMU_ASAN)
  __sanitizer_start_switch_fiber(save, bottom, size);
#else
  (void)save, (void)bottom, (void)size;
#endif
}

inline void FinishSwitch(void* fake_stack, const void** old_bottom, size_t* old_size) {
#if defined(SPARKSTACK_EMU_ASAN)
  __sanitizer_finish_switch_fiber(fake_stack, old_bottom, old_size);
#else
  (void)fake_stack, (void)old_bottom, (void)old_size;
#endif
}

}  // namespace

FiberStack::FiberStack(size_t bytes) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  size_ = (bytes + page - 1) / page * page;
  mapping_size_ = size_ + page;
  mapping_ = mmap(nullptr, mapping_size_, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mapping_ == MAP_FAILED) Die("sparkstack emu: mmap of a fiber stack");
  if (mprotect(mapping_, page, PROT_NONE) != 0) Die("sparkstack emu: guard page");
  base_ = static_cast<char*>(mapping_) + page;
}

FiberStack::~FiberStack() { munmap(mapping_, mapping_size_); }

Fiber::Fiber(FiberStack& stack, void (*entry)(void*), void* arg)
    : stack_(stack), entry_(entry), arg_(arg) {
  if (getcontext(&context_) != 0) Die("sparkstack emu: getcontext");
  context_.uc_stack.ss_sp = stack.base();
  context_.uc_stack.ss_size = stack.size();
  context_.uc_link = nullptr;  // Trampoline never returns
  // makecontext passes int arguments only: the pointer travels as two halves.
  const auto self = reinterpret_cast<uintptr_t>(this);
  makecontext(&context_, reinterpret_cast<void (*)()>(&Fiber::Trampoline), 2,
              static_cast<unsigned int>(static_cast<uint64_t>(self) >> 32),
              static_cast<unsigned int>(self & 0xffffffffu));
}

void Fiber::Trampoline(unsigned int hi, unsigned int lo) {
  auto* self = reinterpret_cast<Fiber*>((static_cast<uintptr_t>(hi) << 32) | lo);
  FinishSwitch(nullptr, &self->caller_stack_bottom_, &self->caller_stack_size_);
  self->entry_(self->arg_);
  self->finished_ = true;
  StartSwitch(nullptr, self->caller_stack_bottom_, self->caller_stack_size_);
  setcontext(&self->caller_);
  Die("sparkstack emu: setcontext returned");
}

void Fiber::Resume() {
  StartSwitch(&caller_fake_stack_, stack_.base(), stack_.size());
  if (swapcontext(&caller_, &context_) != 0) Die("sparkstack emu: swapcontext");
  FinishSwitch(caller_fake_stack_, nullptr, nullptr);
}

void Fiber::Suspend() {
  StartSwitch(&fake_stack_, caller_stack_bottom_, caller_stack_size_);
  if (swapcontext(&context_, &caller_) != 0) Die("sparkstack emu: swapcontext");
  FinishSwitch(fake_stack_, &caller_stack_bottom_, &caller_stack_size_);
}

}  // namespace sparkstack::emu
