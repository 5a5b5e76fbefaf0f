// The thread pool runs every task exactly once, on valid thread indices, across many back-to-back
// jobs (the spin path) and jobs separated by sleeps (the futex path).
#include "kernels/cpu/thread_pool.h"

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace sparkstack::kernels {
namespace {

void ExpectEveryTaskOnce(ThreadPool& pool, int64_t tasks) {
  std::vector<std::atomic<int>> runs(tasks);
  std::atomic<bool> bad_thread{false};
  pool.ParallelFor(tasks, [&](int64_t task, int thread) {
    if (thread < 0 || thread >= pool.size()) bad_thread = true;
    runs[task].fetch_add(1);
  });
  for (int64_t t = 0; t < tasks; ++t) ASSERT_EQ(runs[t].load(), 1) << "task " << t;
  EXPECT_FALSE(bad_thread.load());
}

TEST(ThreadPoolTest, RunsEveryTaskOnceForManySizes) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int64_t tasks : {0, 1, 2, 3, 7, 64, 1000}) ExpectEveryTaskOnce(pool, tasks);
  }
}

TEST(ThreadPoolTest, BackToBackJobsAndJobsAfterSleeping) {
  ThreadPool pool(3);
  for (int i = 0; i < 2000; ++i) ExpectEveryTaskOnce(pool, 1 + i % 9);
  for (int i = 0; i < 5; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(3));  // workers go to sleep
    ExpectEveryTaskOnce(pool, 17);
  }
}

TEST(ThreadPoolTest, WorkersShareTheLoad) {
  ThreadPool pool(2);
  std::atomic<int> on_worker{0};
  // Tasks long enough that the worker wakes up and claims some.
  for (int attempt = 0; attempt < 20 && on_worker.load() == 0; ++attempt) {
    pool.ParallelFor(64, [&](int64_t, int thread) {
      if (thread != 0) on_worker.fetch_add(1);
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    });
  }
  EXPECT_GT(on_worker.load(), 0);
}

TEST(ThreadPoolTest, ResultsAreVisibleToTheCaller) {
  ThreadPool pool(4);
  std::vector<int64_t> out(4096, 0);
  for (int round = 1; round <= 50; ++round) {
    pool.ParallelFor(std::ssize(out), [&](int64_t t, int) { out[t] = t * round; });
    for (int64_t t = 0; t < std::ssize(out); ++t) ASSERT_EQ(out[t], t * round);
  }
}

}  // namespace
}  // namespace sparkstack::kernels
