#include "kernels/cpu/thread_pool.h"

#include <chrono>
#include <climits>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace sparkstack::kernels {
namespace {

// How long a thread polls before it sleeps. Ops of one step follow each other within
// microseconds; a sleeping thread costs a futex wake (several microseconds) to restart.
constexpr auto kSpinTime = std::chrono::microseconds(200);

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// Blocks while `word` holds `expected` (spurious returns are fine: callers re-check).
void FutexWait(std::atomic<uint32_t>& word, uint32_t expected) {
#if defined(__linux__)
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, nullptr,
          nullptr, 0);
#else
  word.wait(expected);
#endif
}

void FutexWakeAll(std::atomic<uint32_t>& word) {
#if defined(__linux__)
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr,
          nullptr, 0);
#else
  word.notify_all();
#endif
}

// Polls until `word` != `value` for up to kSpinTime; true when it changed.
bool SpinWhileEqual(const std::atomic<uint32_t>& word, uint32_t value) {
  const auto deadline = std::chrono::steady_clock::now() + kSpinTime;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (word.load(std::memory_order_acquire) != value) return true;
      CpuRelax();
    }
    if (std::chrono::steady_clock::now() > deadline) return false;
  }
}

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t), "futex words are 32-bit");

}  // namespace

ThreadPool::ThreadPool(int threads) {
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_seq_cst);
  epoch_.fetch_add(1, std::memory_order_seq_cst);  // open_epoch_ stays 0: nobody joins
  FutexWakeAll(epoch_);
  for (std::thread& worker : workers_) worker.join();
}

void ThreadPool::ParallelFor(int64_t tasks, absl::FunctionRef<void(int64_t, int)> body) {
  if (tasks <= 0) return;
  if (tasks == 1 || workers_.empty()) {
    for (int64_t t = 0; t < tasks; ++t) body(t, 0);
    return;
  }
  job_.body = &body;
  job_.tasks = tasks;
  next_task_.store(0, std::memory_order_relaxed);
  done_tasks_.store(0, std::memory_order_relaxed);
  const uint32_t epoch = epoch_.load(std::memory_order_relaxed) + 1;
  open_epoch_.store(epoch, std::memory_order_seq_cst);
  // seq_cst pairs with the workers' sleeping_workers_ increment (no lost wake-up).
  epoch_.store(epoch, std::memory_order_seq_cst);
  if (sleeping_workers_.load(std::memory_order_seq_cst) > 0) FutexWakeAll(epoch_);

  RunTasks(0);

  // Tasks other threads claimed may still run.
  const auto all = static_cast<uint32_t>(tasks);
  for (uint32_t done = done_tasks_.load(std::memory_order_acquire); done != all;
       done = done_tasks_.load(std::memory_order_acquire)) {
    if (SpinWhileEqual(done_tasks_, done)) continue;
    caller_sleeping_.store(1, std::memory_order_seq_cst);
    done = done_tasks_.load(std::memory_order_seq_cst);
    if (done != all) FutexWait(done_tasks_, done);
    caller_sleeping_.store(0, std::memory_order_relaxed);
  }
  // Close the job, then let workers that entered it leave before the job is reused. seq_cst pairs
  // with the workers' active_workers_ increment: a worker either sees the job closed or is counted.
  open_epoch_.store(0, std::memory_order_seq_cst);
  while (active_workers_.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
  job_.body = nullptr;
}

void ThreadPool::RunTasks(int thread) {
  absl::FunctionRef<void(int64_t, int)>& body = *job_.body;
  const int64_t tasks = job_.tasks;
  for (int64_t t = next_task_.fetch_add(1, std::memory_order_relaxed); t < tasks;
       t = next_task_.fetch_add(1, std::memory_order_relaxed)) {
    body(t, thread);
    // seq_cst pairs with the caller's caller_sleeping_ store before it re-reads done_tasks_.
    if (done_tasks_.fetch_add(1, std::memory_order_seq_cst) + 1 == tasks &&
        caller_sleeping_.load(std::memory_order_seq_cst) != 0) {
      FutexWakeAll(done_tasks_);
    }
  }
}

void ThreadPool::WorkerLoop(int index) {
  uint32_t seen = 0;
  for (;;) {
    if (!SpinWhileEqual(epoch_, seen)) {
      sleeping_workers_.fetch_add(1, std::memory_order_seq_cst);
      while (epoch_.load(std::memory_order_seq_cst) == seen) FutexWait(epoch_, seen);
      sleeping_workers_.fetch_sub(1, std::memory_order_relaxed);
    }
    seen = epoch_.load(std::memory_order_acquire);
    if (stop_.load(std::memory_order_acquire)) return;
    // Join only the job this wake-up was for, and only while it is open: its fields cannot
    // change while this worker is counted active.
    active_workers_.fetch_add(1, std::memory_order_seq_cst);
    if (open_epoch_.load(std::memory_order_seq_cst) == seen) RunTasks(index);
    active_workers_.fetch_sub(1, std::memory_order_seq_cst);
  }
}

}  // namespace sparkstack::kernels
