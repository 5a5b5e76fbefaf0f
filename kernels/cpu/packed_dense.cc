#include "kernels/cpu/packed_dense.h"

#include <algorithm>
#include <cstring>

#include "kernels/cpu/isa_kernels.h"
#include "runtime/core/dtype.h"

namespace sparkstack::kernels {
namespace {

constexpr int64_t kGroup = kPackedGroupColumns;

// Row blocks of a prefill's tasks: the kernels' row chunk (a multiple of every tile height).
constexpr int64_t kRowBlock = kGemmRowBlock;

// Below this many multiply-adds one thread is cheaper than a fork-join.
constexpr int64_t kParallelWork = int64_t{1} << 16;

int64_t Groups(int64_t n) { return (n + kGroup - 1) / kGroup; }

}  // namespace

int64_t PackedDenseElements(int64_t n, int64_t k) { return Groups(n) * kGroup * k; }

void PackDense(const void* w, DType dtype, int64_t n, int64_t k, void* packed, ThreadPool& pool) {
  const size_t bytes = DTypeByteSize(dtype, 1);
  const auto* src = static_cast<const unsigned char*>(w);
  auto* dst = static_cast<unsigned char*>(packed);
  pool.ParallelFor(Groups(n), [&](int64_t g, int) {
    unsigned char* group = dst + g * k * kGroup * bytes;
    std::memset(group, 0, k * kGroup * bytes);
    const int64_t columns = std::min(kGroup, n - g * kGroup);
    for (int64_t c = 0; c < columns; ++c) {
      const unsigned char* row = src + (g * kGroup + c) * k * bytes;
      for (int64_t i = 0; i < k; ++i) {
        std::memcpy(group + (i * kGroup + c) * bytes, row + i * bytes, bytes);
      }
    }
  });
}

void PackedDenseLinear(const float* x, int64_t m, int64_t k, const void* packed, DType dtype,
                       int64_t n, float* y, ThreadPool& pool, CpuIsa isa) {
  if (m <= 0 || n <= 0) return;
  const IsaKernels& kernels = KernelsFor(isa);
  const GemmArgs args{
      .x = x, .ldx = k, .packed = packed, .dtype = dtype, .n = n, .k = k, .y = y, .ldy = n};
  if (k == 0) {
    std::fill(y, y + m * n, 0.0f);
    return;
  }
  const int64_t groups = Groups(n);
  const int64_t row_blocks = (m + kRowBlock - 1) / kRowBlock;
  const int threads = pool.size();
  if (threads == 1 || m * n * k < kParallelWork) {
    kernels.gemm(args, 0, m, 0, groups);
    return;
  }
  // About four tasks per thread (dynamic claiming evens out uneven progress), each a run of
  // column groups of one row block.
  const int64_t wanted = 4 * threads;
  const int64_t groups_per_task =
      std::min(groups, std::max<int64_t>(1, (groups * row_blocks + wanted - 1) / wanted));
  const int64_t group_chunks = (groups + groups_per_task - 1) / groups_per_task;
  pool.ParallelFor(group_chunks * row_blocks, [&](int64_t task, int) {
    const int64_t block = task % row_blocks;
    const int64_t chunk = task / row_blocks;
    const int64_t g0 = chunk * groups_per_task;
    const int64_t m0 = block * kRowBlock;
    kernels.gemm(args, m0, std::min(m, m0 + kRowBlock), g0, std::min(groups, g0 + groups_per_task));
  });
}

}  // namespace sparkstack::kernels
