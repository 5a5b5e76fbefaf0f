#include "kernels/emu/thread_block.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <utility>

namespace sparkstack::emu {
namespace {

// Enough for Debug + ASan frames of the kernels (a few KiB); small because ASan's swapcontext
// interceptor clears the shadow of the whole target stack on every switch.
constexpr size_t kStackBytes = 64 * 1024;
constexpr uint32_t kFullMask = 0xffffffffu;

enum class State { kRunnable, kAtBarrier, kInWarpCall, kExited, kFailed };

struct Thread {
  ThreadContext ctx{};
  State state = State::kRunnable;
  std::unique_ptr<Fiber> fiber;
  CpAsyncQueue cp_async;
};

struct Warp {
  WarpCall* lanes[kWarpSize] = {};
  WarpCall* first = nullptr;  // the pending operation (the first lane to arrive)
  uint32_t arrived = 0;
  uint32_t exists = 0;  // lanes that exist in the block
  uint32_t exited = 0;
};

// Thrown at a fiber's suspension point when its block is abandoned after a failure: unwinding the
// fiber's stack runs its destructors (no leaks, clean sanitizer state). Never leaves the fiber.
struct Abandoned {};

struct Block {
  Block(size_t dynamic_smem, size_t smem_limit) : smem(dynamic_smem, smem_limit) {}
  std::vector<Thread> threads;
  std::vector<Warp> warps;
  SharedMemory smem;
  const std::function<void()>* body = nullptr;
  int live = 0;
  int barrier_arrived = 0;
  std::source_location barrier_site;
  std::vector<std::pair<void*, size_t>> releases;
  bool failed = false;
  bool abandoning = false;
  BlockResult failure;
};

thread_local Block* g_block = nullptr;
thread_local Thread* g_thread = nullptr;

Thread& Self() {
  if (g_thread == nullptr) {
    std::fprintf(stderr, "sparkstack emu: a CUDA device builtin was used outside a kernel\n");
    std::abort();
  }
  return *g_thread;
}

bool SameSite(const std::source_location& a, const std::source_location& b) {
  return a.line() == b.line() && a.column() == b.column() &&
         std::strcmp(a.file_name(), b.file_name()) == 0;
}

std::string Hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08x", v);
  return buf;
}

void CompleteBarrier(Block& b) {
  for (const auto& [p, bytes] : b.releases) SharedMemory::Poison(p, bytes);
  b.releases.clear();
  for (Thread& t : b.threads) {
    if (t.state == State::kAtBarrier) t.state = State::kRunnable;
  }
  b.barrier_arrived = 0;
}

// Completes the warp's pending operation when every lane it needs has arrived.
bool TryCompleteWarp(Block& b, int warp_index) {
  Warp& w = b.warps[warp_index];
  if (w.first == nullptr) return false;
  const uint32_t required = w.first->aligned ? w.exists : (w.first->mask & w.exists & ~w.exited);
  if ((w.arrived & required) != required) return false;
  WarpCall* lanes[kWarpSize];
  for (int l = 0; l < kWarpSize; ++l) lanes[l] = (w.arrived >> l) & 1u ? w.lanes[l] : nullptr;
  const uint32_t arrived = w.arrived;
  WarpCall* const first = w.first;
  w.first = nullptr;
  w.arrived = 0;
  std::fill(std::begin(w.lanes), std::end(w.lanes), nullptr);
  first->combine(lanes);
  for (int l = 0; l < kWarpSize; ++l) {
    Thread& t = b.threads[warp_index * kWarpSize + l];
    if ((arrived >> l) & 1u && t.state == State::kInWarpCall) t.state = State::kRunnable;
  }
  return true;
}

void OnExit(Block& b, Thread& t) {
  if (const int n = t.cp_async.outstanding(); n > 0) {
    FailKernel(cudaErrorLaunchFailure,
               "exits with " + std::to_string(n) +
                   " cp.async copies not waited for (cp.async.wait_group / wait_all)");
  }
  Warp& w = b.warps[t.ctx.warp];
  if (w.first != nullptr && w.first->aligned) {
    FailKernel(cudaErrorLaunchFailure, std::string("exits while its warp waits in ") +
                                           w.first->what + " at " + DescribeSite(w.first->where) +
                                           ", which every lane must execute");
  }
  t.state = State::kExited;
  --b.live;
  w.exited |= 1u << t.ctx.lane;
  TryCompleteWarp(b, t.ctx.warp);
  if (b.barrier_arrived > 0 && b.barrier_arrived == b.live) CompleteBarrier(b);
}

// Suspends the current thread; throws Abandoned when the scheduler resumes it only to unwind it.
void Suspend(Thread& t) {
  t.fiber->Suspend();
  if (g_block->abandoning) throw Abandoned{};
}

void ThreadMain(void* arg) {
  if (g_block->abandoning) return;  // never started before its block failed
  try {
    (*g_block->body)();
    OnExit(*g_block, *static_cast<Thread*>(arg));
  } catch (const Abandoned&) {
  }
}

std::string DescribeDeadlock(const Block& b) {
  std::ostringstream s;
  s << "block (" << b.threads[0].ctx.block_idx.x << "," << b.threads[0].ctx.block_idx.y << ","
    << b.threads[0].ctx.block_idx.z << ") deadlocks: " << b.live << " threads have not finished";
  if (b.barrier_arrived > 0) {
    s << "; " << b.barrier_arrived << " wait at __syncthreads at " << DescribeSite(b.barrier_site);
  }
  for (size_t i = 0; i < b.warps.size(); ++i) {
    const Warp& w = b.warps[i];
    if (w.first == nullptr) continue;
    s << "; warp " << i << " lanes " << Hex(w.arrived) << " wait in " << w.first->what << " at "
      << DescribeSite(w.first->where) << " (member mask " << Hex(w.first->mask) << ", exited "
      << Hex(w.exited) << ")";
  }
  return s.str();
}

}  // namespace

const ThreadContext& CurrentThread() { return Self().ctx; }

std::string DescribeSite(const std::source_location& where) {
  const char* file = where.file_name();
  const char* slash = std::strrchr(file, '/');
  return std::string(slash != nullptr ? slash + 1 : file) + ":" + std::to_string(where.line());
}

std::string DescribeCurrentThread() {
  const ThreadContext& c = CurrentThread();
  std::ostringstream s;
  s << "block (" << c.block_idx.x << "," << c.block_idx.y << "," << c.block_idx.z << ") thread ("
    << c.thread_idx.x << "," << c.thread_idx.y << "," << c.thread_idx.z << ")";
  return s.str();
}

void FailKernel(cudaError_t error, const std::string& message) {
  if (g_thread == nullptr || g_block == nullptr) {
    std::fprintf(stderr, "sparkstack emu: %s\n", message.c_str());
    std::abort();
  }
  if (!g_block->failed) {
    g_block->failed = true;
    g_block->failure = {error, DescribeCurrentThread() + ": " + message};
  }
  g_thread->state = State::kFailed;
  Suspend(*g_thread);  // resumed only to unwind
  std::abort();
}

void SyncThreads(const std::source_location& where) {
  Block& b = *g_block;
  Thread& t = Self();
  if (b.barrier_arrived == 0) {
    b.barrier_site = where;
  } else if (!SameSite(where, b.barrier_site)) {
    FailKernel(cudaErrorLaunchFailure, "__syncthreads at " + DescribeSite(where) +
                                           " while other threads wait at the one at " +
                                           DescribeSite(b.barrier_site) +
                                           ": a barrier in divergent code");
  }
  if (++b.barrier_arrived == b.live) {
    CompleteBarrier(b);
    return;
  }
  t.state = State::kAtBarrier;
  Suspend(t);
}

void ReleaseSharedAtNextBarrier(const void* p, size_t bytes, const std::source_location& where) {
  Block& b = *g_block;
  Self();
  if (!b.smem.Contains(p, bytes)) {
    FailKernel(cudaErrorIllegalAddress, "releases " + std::to_string(bytes) +
                                            " bytes that are not shared memory of this block at " +
                                            DescribeSite(where));
  }
  b.releases.emplace_back(const_cast<void*>(p), bytes);
}

void WarpRendezvous(WarpCall& call) {
  Block& b = *g_block;
  Thread& t = Self();
  Warp& w = b.warps[t.ctx.warp];
  const uint32_t bit = 1u << t.ctx.lane;
  const auto where = [&call] { return std::string(call.what) + " at " + DescribeSite(call.where); };
  if ((call.mask & bit) == 0) {
    FailKernel(cudaErrorLaunchFailure, where() + ": lane " + std::to_string(t.ctx.lane) +
                                           " is not in the member mask " + Hex(call.mask));
  }
  if (call.aligned && (w.exists != kFullMask || w.exited != 0)) {
    FailKernel(cudaErrorLaunchFailure, where() + ": needs all 32 lanes of the warp, but lanes " +
                                           Hex(w.exited) + " exited and lanes " + Hex(~w.exists) +
                                           " do not exist");
  }
  if (w.first == nullptr) {
    w.first = &call;
  } else if (std::strcmp(call.what, w.first->what) != 0 || !SameSite(call.where, w.first->where) ||
             call.mask != w.first->mask) {
    FailKernel(cudaErrorLaunchFailure,
               where() + " (mask " + Hex(call.mask) + ") while lanes " + Hex(w.arrived) +
                   " of its warp wait in " + w.first->what + " at " + DescribeSite(w.first->where) +
                   " (mask " + Hex(w.first->mask) + "): divergent warp-collective operations");
  }
  w.lanes[t.ctx.lane] = &call;
  w.arrived |= bit;
  if (TryCompleteWarp(b, t.ctx.warp)) return;
  t.state = State::kInWarpCall;
  Suspend(t);
}

SharedMemory& BlockSharedMemory() {
  Self();
  return g_block->smem;
}

CpAsyncQueue& ThreadCpAsyncQueue() { return Self().cp_async; }

BlockResult RunBlock(dim3 grid, dim3 block, uint3 block_idx, size_t dynamic_smem, size_t smem_limit,
                     const std::function<void()>& body,
                     std::vector<std::unique_ptr<FiberStack>>& stacks) {
  if (g_block != nullptr) {
    std::fprintf(stderr, "sparkstack emu: kernel launch from inside an emulated kernel\n");
    std::abort();
  }
  const int n = static_cast<int>(block.x * block.y * block.z);
  Block b(dynamic_smem, smem_limit);
  b.body = &body;
  b.threads.resize(static_cast<size_t>(n));
  b.warps.resize(static_cast<size_t>((n + kWarpSize - 1) / kWarpSize));
  while (stacks.size() < static_cast<size_t>(n))
    stacks.push_back(std::make_unique<FiberStack>(kStackBytes));
  for (int i = 0; i < n; ++i) {
    Thread& t = b.threads[static_cast<size_t>(i)];
    const unsigned u = static_cast<unsigned>(i);
    t.ctx.thread_idx = {u % block.x, (u / block.x) % block.y, u / (block.x * block.y)};
    t.ctx.block_idx = block_idx;
    t.ctx.block_dim = block;
    t.ctx.grid_dim = grid;
    t.ctx.linear = i;
    t.ctx.lane = i % kWarpSize;
    t.ctx.warp = i / kWarpSize;
    b.warps[static_cast<size_t>(t.ctx.warp)].exists |= 1u << t.ctx.lane;
    t.fiber = std::make_unique<Fiber>(*stacks[static_cast<size_t>(i)], &ThreadMain, &t);
  }
  b.live = n;
  g_block = &b;
  for (;;) {
    bool ran = false;
    for (Thread& t : b.threads) {
      if (t.state != State::kRunnable) continue;
      g_thread = &t;
      t.fiber->Resume();
      g_thread = nullptr;
      ran = true;
      if (b.failed) break;
    }
    if (b.failed || b.live == 0) break;
    if (!ran) {
      b.failed = true;
      b.failure = {cudaErrorLaunchFailure, DescribeDeadlock(b)};
      break;
    }
  }
  if (b.failed) {
    // Unwind every unfinished fiber (Suspend throws), so that nothing is left on its stack.
    b.abandoning = true;
    for (Thread& t : b.threads) {
      if (t.fiber->finished()) continue;
      g_thread = &t;
      t.fiber->Resume();
      g_thread = nullptr;
    }
  }
  g_block = nullptr;
  return b.failed ? b.failure : BlockResult{};
}

}  // namespace sparkstack::emu
