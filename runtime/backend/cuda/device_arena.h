// DeviceArena: the CUDA backend's device memory. With a reservation (the memory plan's total, one
// cudaMalloc at start-up) every allocation is carved from that one region with a bump pointer,
// and asking for more than the plan is ResourceExhausted naming the request and the plan, so the
// process never allocates past what it planned. Without one (tests, tools), each allocation is
// its own cudaMalloc. Memory is returned when the arena and every tensor carved from it are gone
// (tensors hold the region's owner). Nothing is freed individually: buffers live as long as the
// backend (weights, KV pools, the workspace and scratch are all load-time allocations).
//
// Thread-compatible: one thread allocates at a time.
#ifndef SPARKSTACK_RUNTIME_BACKEND_CUDA_DEVICE_ARENA_H_
#define SPARKSTACK_RUNTIME_BACKEND_CUDA_DEVICE_ARENA_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace sparkstack::cuda_backend {

class DeviceArena {
 public:
  // Alignment of every allocation (cudaMalloc's).
  static constexpr size_t kAlignment = 256;

  // reserve_bytes > 0: one region of that size, allocated now; 0: one cudaMalloc per allocation.
  static absl::StatusOr<std::unique_ptr<DeviceArena>> Create(int64_t reserve_bytes);

  // `bytes` of device memory (not initialized) and what keeps it alive. `what` names the request
  // in errors.
  struct Block {
    void* data = nullptr;
    std::shared_ptr<const void> owner;
  };
  absl::StatusOr<Block> Allocate(size_t bytes, const std::string& what);

  bool reserved() const { return capacity_ > 0; }
  int64_t capacity() const { return capacity_; }
  // Bytes handed out so far, alignment included.
  int64_t used() const { return used_; }
  // Bytes left in the reservation (0 without one).
  int64_t remaining() const { return capacity_ - used_; }

 private:
  DeviceArena() = default;
  std::shared_ptr<void> region_;
  int64_t capacity_ = 0;
  int64_t used_ = 0;
};

}  // namespace sparkstack::cuda_backend

#endif  // SPARKSTACK_RUNTIME_BACKEND_CUDA_DEVICE_ARENA_H_
