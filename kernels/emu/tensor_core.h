// Emulation of the warp-level matrix instructions the kernels use, on the fragment tables of
// fragments.h. Each is a warp-collective operation (thread_block.h): the combine step gathers all
// 32 lanes' registers into whole matrices, computes, and scatters the results back. Operands are
// checked where cheap: ldmatrix row addresses must be 16-byte aligned rows inside the block's
// shared memory, scale selectors must be valid and equal in all lanes, ue4m3 scale bytes must have
// their MSB clear. Products are exact in double and each mma adds its sum to the f32 accumulator
// with one rounding (the hardware's internal order and precision may differ: tests use tolerances).
#ifndef SPARKSTACK_KERNELS_EMU_TENSOR_CORE_H_
#define SPARKSTACK_KERNELS_EMU_TENSOR_CORE_H_

#include <cstdint>
#include <source_location>

#include "kernels/emu/guard.h"

namespace sparkstack::emu {

// ldmatrix.sync.aligned.m8n8.x{num}{.trans}.shared.b16 r, [row_address] (num = 1, 2 or 4).
void LdMatrix(int num, bool trans, uint32_t* r, const void* row_address,
              const std::source_location& where);

// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {d}, {a0..a3}, {b0, b1}, {d}.
void MmaM16N8K16Bf16(float* d, const uint32_t* a, const uint32_t* b,
                     const std::source_location& where);

// mma.sync.aligned.m16n8k64.row.col.kind::mxf4nvf4.block_scale.scale_vec::4X.f32.e2m1.e2m1.f32.ue4m3
//   {d}, {a0..a3}, {b0, b1}, {d}, sfa, {byte_id_a, thread_id_a}, sfb, {byte_id_b, thread_id_b}.
void MmaM16N8K64Mxf4Nvf4(float* d, const uint32_t* a, const uint32_t* b, uint32_t sfa,
                         int byte_id_a, int thread_id_a, uint32_t sfb, int byte_id_b,
                         int thread_id_b, const std::source_location& where);

}  // namespace sparkstack::emu

#endif  // SPARKSTACK_KERNELS_EMU_TENSOR_CORE_H_
