// ThreadPool: the worker threads of one CPU backend, created once and shared by every op.
//
// ParallelFor is a fork-join over `tasks` independent tasks: the calling thread and the workers
// claim task indices from one atomic counter until none is left, and the call returns when every
// task has finished. Nothing is allocated per call (the task body is passed as an
// absl::FunctionRef, the job lives in the pool), and no thread is created per call.
//
// Between jobs a worker spins for a short while (a decode step runs dozens of ops back to back,
// microseconds apart) and then sleeps on a futex, so an idle engine costs no CPU. The caller never
// waits for a worker that has not started: it runs the unclaimed tasks itself and waits only for
// tasks already claimed, so a descheduled worker (an oversubscribed machine) cannot stall a job.
//
// Thread safety: one thread at a time calls ParallelFor (a backend is used by one thread at a
// time); the task body must not call ParallelFor on the same pool. Tasks get the index of the
// thread that runs them (0 is the caller) so they can use per-thread scratch without locks.
#ifndef SPARKSTACK_KERNELS_CPU_THREAD_POOL_H_
#define SPARKSTACK_KERNELS_CPU_THREAD_POOL_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "absl/functional/function_ref.h"

namespace sparkstack::kernels {

class ThreadPool {
 public:
  // `threads` threads in all, counting the caller of ParallelFor (values below 1 mean 1: no
  // workers, everything runs on the caller).
  explicit ThreadPool(int threads);
  ~ThreadPool();

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Threads that may run tasks, the caller included; thread indices are [0, size()).
  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs body(task, thread) for every task in [0, tasks) and returns when all have run. Tasks may
  // run in any order and on any thread; with one task (or one thread) everything runs inline.
  void ParallelFor(int64_t tasks, absl::FunctionRef<void(int64_t task, int thread)> body);

 private:
  // One fork-join at a time: published through `epoch_`, read by the workers.
  struct Job {
    absl::FunctionRef<void(int64_t, int)>* body = nullptr;
    int64_t tasks = 0;
  };

  void WorkerLoop(int index);
  // Claims and runs tasks of the current job until none is left.
  void RunTasks(int thread);

  Job job_;
  alignas(64) std::atomic<int64_t> next_task_{0};
  alignas(64) std::atomic<uint32_t> done_tasks_{0};  // futex word the caller sleeps on
  alignas(64) std::atomic<uint32_t> epoch_{0};       // bumped to start a job (futex word)
  std::atomic<int32_t> sleeping_workers_{0};         // workers in futex wait on epoch_
  std::atomic<uint32_t> open_epoch_{0};              // epoch of the job workers may join (0: none)
  std::atomic<int32_t> active_workers_{0};           // workers inside RunTasks
  std::atomic<int32_t> caller_sleeping_{0};
  std::atomic<bool> stop_{false};
  std::vector<std::thread> workers_;
};

}  // namespace sparkstack::kernels

#endif  // SPARKSTACK_KERNELS_CPU_THREAD_POOL_H_
