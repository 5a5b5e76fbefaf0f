// Warp shuffles and votes of the host emulation, as CUDA names them (__shfl_sync, __shfl_xor_sync,
// __ballot_sync, ...), each a warp-collective operation (thread_block.h) that sees every lane's
// operand. Shuffle semantics are PTX ISA 9.7.9.6 "shfl.sync" (source lane, clamp and segment mask
// from operand c, which CUDA sets to ((32 - width) << 8) | 0x1f, or (32 - width) << 8 for .up);
// reading from a lane that does not take part (not in the mask, exited) is undefined there and
// gives the poison pattern here. Values of up to 8 bytes move whole, as the two 32-bit shuffles
// CUDA issues for them would.
#ifndef SPARKSTACK_KERNELS_EMU_WARP_H_
#define SPARKSTACK_KERNELS_EMU_WARP_H_

#include <cstdint>
#include <cstring>
#include <source_location>
#include <type_traits>

#include "kernels/emu/guard.h"

namespace sparkstack::emu {

enum class ShflMode : int { kUp, kDown, kBfly, kIdx };

struct ShflIn {
  uint64_t value;
  int b;  // source lane or lane offset
  int c;  // clamp value (bits 4..0) and segment mask (bits 12..8)
  ShflMode mode;
};

// shfl.sync of the 8 value bytes in `in`; returns the received bytes.
uint64_t ShuffleBytes(uint32_t mask, const ShflIn& in, const char* what,
                      const std::source_location& where);
// vote.sync.ballot: bit l set when lane l takes part and its predicate is true.
uint32_t Ballot(uint32_t mask, bool predicate, const char* what, const std::source_location& where);
// bar.warp.sync.
void SyncWarp(uint32_t mask, const std::source_location& where);

template <typename T>
T Shuffle(ShflMode mode, uint32_t mask, T var, int b, int c, const char* what,
          const std::source_location& where) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "shuffles move up to 8 bytes");
  ShflIn in{0, b, c, mode};
  std::memcpy(&in.value, &var, sizeof(T));
  const uint64_t out = ShuffleBytes(mask, in, what, where);
  T result;
  std::memcpy(&result, &out, sizeof(T));
  return result;
}

}  // namespace sparkstack::emu

template <typename T>
T __shfl_sync(unsigned mask, T var, int src_lane, int width = 32,
              const std::source_location& where = std::source_location::current()) {
  return sparkstack::emu::Shuffle(sparkstack::emu::ShflMode::kIdx, mask, var, src_lane,
                                  ((32 - width) << 8) | 0x1f, "__shfl_sync", where);
}
template <typename T>
T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32,
                 const std::source_location& where = std::source_location::current()) {
  return sparkstack::emu::Shuffle(sparkstack::emu::ShflMode::kUp, mask, var,
                                  static_cast<int>(delta), (32 - width) << 8, "__shfl_up_sync",
                                  where);
}
template <typename T>
T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32,
                   const std::source_location& where = std::source_location::current()) {
  return sparkstack::emu::Shuffle(sparkstack::emu::ShflMode::kDown, mask, var,
                                  static_cast<int>(delta), ((32 - width) << 8) | 0x1f,
                                  "__shfl_down_sync", where);
}
template <typename T>
T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = 32,
                  const std::source_location& where = std::source_location::current()) {
  return sparkstack::emu::Shuffle(sparkstack::emu::ShflMode::kBfly, mask, var, lane_mask,
                                  ((32 - width) << 8) | 0x1f, "__shfl_xor_sync", where);
}
inline unsigned __ballot_sync(unsigned mask, int predicate,
                              const std::source_location& where = std::source_location::current()) {
  return sparkstack::emu::Ballot(mask, predicate != 0, "__ballot_sync", where);
}
inline int __any_sync(unsigned mask, int predicate,
                      const std::source_location& where = std::source_location::current()) {
  return sparkstack::emu::Ballot(mask, predicate != 0, "__any_sync", where) != 0;
}
inline int __all_sync(unsigned mask, int predicate,
                      const std::source_location& where = std::source_location::current()) {
  // All participating lanes true <=> no participating lane votes false.
  return sparkstack::emu::Ballot(mask, predicate == 0, "__all_sync", where) == 0;
}
inline void __syncwarp(unsigned mask = 0xffffffffu,
                       const std::source_location& where = std::source_location::current()) {
  sparkstack::emu::SyncWarp(mask, where);
}

#endif  // SPARKSTACK_KERNELS_EMU_WARP_H_
