// Splitting a linear layer's N output columns over threads, shared by the CPU linear kernels.
#ifndef SPARKSTACK_KERNELS_CPU_PARALLEL_COLUMNS_H_
#define SPARKSTACK_KERNELS_CPU_PARALLEL_COLUMNS_H_

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

namespace sparkstack::kernels {

// Calls columns(begin, end) over [0, n) in up to `threads` contiguous ranges, on the calling
// thread when the problem is small: below ~1M multiply-adds (`work`) a thread costs more than it
// saves.
template <typename Columns>
void ForEachColumnRange(int64_t n, int64_t work, int threads, const Columns& columns) {
  threads = static_cast<int>(std::clamp<int64_t>(std::min<int64_t>(threads, work >> 20), 1,
                                                 std::max<int64_t>(n, 1)));
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
