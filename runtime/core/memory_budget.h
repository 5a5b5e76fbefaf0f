// How much memory this process may still allocate, checked before large allocations.
//
// On the DGX Spark's unified memory an allocation past what is free can freeze the whole machine,
// and everywhere an unchecked `new` of a size taken from a file ends in std::bad_alloc (or the
// OOM killer). Code that sizes an allocation from input (tensor shapes, config sizes, CLI flags)
// calls CheckMemoryBudget first and reports ResourceExhausted with the numbers instead.
#ifndef SPARKSTACK_RUNTIME_CORE_MEMORY_BUDGET_H_
#define SPARKSTACK_RUNTIME_CORE_MEMORY_BUDGET_H_

#include <cstdint>
#include <new>
#include <string>
#include <utility>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace sparkstack {

// Environment variable that caps the budget (bytes, or with a K/M/G/T suffix meaning KiB..TiB):
// for operators sharing a machine and for tests that need a deterministic limit.
inline constexpr char kMemoryBudgetEnv[] = "SPARKSTACK_MEMORY_BUDGET";

struct MemoryHeadroom {
  uint64_t bytes = 0;      // what may still be allocated
  std::string limited_by;  // which limit is the smallest, for messages ("ulimit -v", ...)
};

// The smallest of: MemAvailable from /proc/meminfo; the cgroup v2 memory.max minus
// memory.current; RLIMIT_AS minus the current virtual size; RLIMIT_DATA minus the current data
// size; $SPARKSTACK_MEMORY_BUDGET. Limits that cannot be read are skipped. Thread-safe; reads a
// few /proc and /sys files, so call it per large allocation, not per element.
MemoryHeadroom AvailableMemory();

// OK when `bytes` fit in AvailableMemory(). Otherwise ResourceExhausted:
//   "<what> needs 37.3 GiB, but only 3.2 GiB can be allocated (limited by ulimit -v)".
absl::Status CheckMemoryBudget(uint64_t bytes, absl::string_view what);

// Allocations at least this large are checked against the budget where they happen (host tensor
// storage): reading the limits costs microseconds, zeroing 64 MiB milliseconds.
inline constexpr uint64_t kCheckedAllocationBytes = 64ull << 20;

// Thrown by allocators that cannot return a Status (AllocateAligned) when an allocation does not
// fit the budget: a std::bad_alloc, so existing handlers treat it as one, whose what() carries the
// CheckMemoryBudget message. Commands catch it at their boundary and print it.
class MemoryBudgetExceeded : public std::bad_alloc {
 public:
  explicit MemoryBudgetExceeded(std::string message) : message_(std::move(message)) {}
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_CORE_MEMORY_BUDGET_H_
