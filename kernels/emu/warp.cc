#include "kernels/emu/warp.h"

#include "kernels/emu/shared_memory.h"
#include "kernels/emu/thread_block.h"

namespace sparkstack::emu {
namespace {

void CombineShuffle(WarpCall* const lanes[kWarpSize]) {
  uint64_t poison;
  std::memset(&poison, SharedMemory::poison_byte(), sizeof(poison));
  uint64_t received[kWarpSize];
  for (int lane = 0; lane < kWarpSize; ++lane) {
    if (lanes[lane] == nullptr) continue;
    const auto& in = *static_cast<const ShflIn*>(lanes[lane]->in);
    const int bval = in.b & 0x1f;
    const int cval = in.c & 0x1f;
    const int segmask = (in.c >> 8) & 0x1f;
    const int max_lane = (lane & segmask) | (cval & ~segmask);
    const int min_lane = lane & segmask;
    int j = lane;
    bool pval = false;
    switch (in.mode) {
      case ShflMode::kUp:
        j = lane - bval;
        pval = j >= max_lane;
        break;
      case ShflMode::kDown:
        j = lane + bval;
        pval = j <= max_lane;
        break;
      case ShflMode::kBfly:
        j = lane ^ bval;
        pval = j <= max_lane;
        break;
      case ShflMode::kIdx:
        j = min_lane | (bval & ~segmask);
        pval = j <= max_lane;
        break;
    }
    if (!pval) j = lane;
    received[lane] = lanes[j] != nullptr ? static_cast<const ShflIn*>(lanes[j]->in)->value : poison;
  }
  for (int lane = 0; lane < kWarpSize; ++lane) {
    if (lanes[lane] != nullptr) *static_cast<uint64_t*>(lanes[lane]->out) = received[lane];
  }
}

void CombineBallot(WarpCall* const lanes[kWarpSize]) {
  uint32_t ballot = 0;
  for (int lane = 0; lane < kWarpSize; ++lane) {
    if (lanes[lane] != nullptr && *static_cast<const bool*>(lanes[lane]->in)) ballot |= 1u << lane;
  }
  for (int lane = 0; lane < kWarpSize; ++lane) {
    if (lanes[lane] != nullptr) *static_cast<uint32_t*>(lanes[lane]->out) = ballot;
  }
}

void CombineNothing(WarpCall* const[kWarpSize]) {}

}  // namespace

uint64_t ShuffleBytes(uint32_t mask, const ShflIn& in, const char* what,
                      const std::source_location& where) {
  uint64_t out = 0;
  WarpCall call{what, where, mask, false, &in, &out, &CombineShuffle};
  WarpRendezvous(call);
  return out;
}

uint32_t Ballot(uint32_t mask, bool predicate, const char* what,
                const std::source_location& where) {
  uint32_t out = 0;
  WarpCall call{what, where, mask, false, &predicate, &out, &CombineBallot};
  WarpRendezvous(call);
  return out;
}

void SyncWarp(uint32_t mask, const std::source_location& where) {
  WarpCall call{"__syncwarp", where, mask, false, nullptr, nullptr, &CombineNothing};
  WarpRendezvous(call);
}

}  // namespace sparkstack::emu
