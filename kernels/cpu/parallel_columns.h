// Splitting a range of independent items (rows, columns) over the backend's thread pool.
#ifndef SPARKSTACK_KERNELS_CPU_PARALLEL_COLUMNS_H_
#define SPARKSTACK_KERNELS_CPU_PARALLEL_COLUMNS_H_

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

#include "kernels/cpu/thread_pool.h"

namespace sparkstack::kernels {

// Below this much work (about one multiply-add or element each) a fork-join costs more than it
// saves: the calling thread does it all.
inline constexpr int64_t kMinParallelWork = int64_t{1} << 15;

// Calls fn(begin, end) over [0, n) in contiguous ranges on `pool` (about four per thread, claimed
// dynamically), or once on the calling thread when `work` is small. No allocation.
template <typename Fn>
void ParallelRanges(ThreadPool& pool, int64_t n, int64_t work, const Fn& fn) {
  if (n <= 0) return;
  const int64_t parts = std::min<int64_t>(n, 4 * pool.size());
  if (pool.size() == 1 || parts <= 1 || work < kMinParallelWork) {
    fn(int64_t{0}, n);
    return;
  }
  const int64_t chunk = (n + parts - 1) / parts;
  pool.ParallelFor((n + chunk - 1) / chunk,
                   [&](int64_t part, int) { fn(part * chunk, std::min(n, (part + 1) * chunk)); });
}

// Legacy: a thread per call. Kept for kernels not yet handed the backend's pool
// (kernels/cpu/moe_*); new code uses ParallelRanges.
template <typename Columns>
void ForEachColumnRange(int64_t n, int64_t work, int threads, const Columns& columns) {
  threads = static_cast<int>(
      std::clamp<int64_t>(std::min<int64_t>(threads, work >> 20), 1, std::max<int64_t>(n, 1)));
  if (threads <= 1) {
    columns(int64_t{0}, n);
    return;
  }
  std::vector<std::thread> workers;
  const int64_t chunk = (n + threads - 1) / threads;
  for (int t = 0; t < threads; ++t) {
    const int64_t begin = t * chunk;
    const int64_t end = std::min(n, begin + chunk);
    if (begin >= end) break;
    workers.emplace_back([&columns, begin, end] { columns(begin, end); });
  }
  for (auto& worker : workers) worker.join();
}

}  // namespace sparkstack::kernels

#endif  // SPARKSTACK_KERNELS_CPU_PARALLEL_COLUMNS_H_
