#include "runtime/backend/cuda/device_arena.h"

#include "absl/strings/str_cat.h"
#include "runtime/backend/cuda/device.h"

namespace sparkstack::cuda_backend {

absl::StatusOr<std::unique_ptr<DeviceArena>> DeviceArena::Create(int64_t reserve_bytes) {
  std::unique_ptr<DeviceArena> arena(new DeviceArena());
  if (reserve_bytes < 0) {
    return absl::InvalidArgumentError(absl::StrCat("device arena of ", reserve_bytes, " bytes"));
  }
  if (reserve_bytes > 0) {
    absl::StatusOr<void*> p = DeviceMalloc(static_cast<size_t>(reserve_bytes));
    if (!p.ok()) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "cuda: the memory plan's arena of ", reserve_bytes, " bytes cannot be allocated (",
          p.status().message(), ")"));
    }
    arena->region_ = std::shared_ptr<void>(*p, [](void* q) { DeviceFree(q); });
    arena->capacity_ = reserve_bytes;
  }
  return arena;
}

absl::StatusOr<DeviceArena::Block> DeviceArena::Allocate(size_t bytes, const std::string& what) {
  const int64_t rounded =
      static_cast<int64_t>((bytes + kAlignment - 1) / kAlignment * kAlignment);
  if (!reserved()) {
    absl::StatusOr<void*> p = DeviceMalloc(bytes);
    if (!p.ok()) {
      return absl::ResourceExhaustedError(absl::StrCat(what, ": ", p.status().message()));
    }
    used_ += rounded;
    return Block{*p, std::shared_ptr<void>(*p, [](void* q) { DeviceFree(q); })};
  }
  if (rounded > remaining()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "cuda: ", what, " needs ", bytes, " bytes but the memory plan's arena has ", remaining(),
        " of ", capacity_, " left; the plan underestimated this rank's memory"));
  }
  void* p = static_cast<char*>(region_.get()) + used_;
  used_ += rounded;
  return Block{p, region_};
}

}  // namespace sparkstack::cuda_backend
