// Fragment layouts of the warp-level matrix instructions, transcribed from the PTX ISA (release
// 9.0) section by section; the emulation of ldmatrix and mma.sync (tensor_core.cc) rests on these
// tables and on nothing in kernels/nvfp4. In every formula groupID = %laneid >> 2 and
// threadID_in_group = %laneid % 4, and "element i" counts the fragment's elements low to high:
// element 2r and 2r+1 of a 16-bit fragment are the low and high halves of register r; element i of
// a 4-bit fragment is nibble i % 8 (lowest first) of register i / 8.
#ifndef SPARKSTACK_KERNELS_EMU_FRAGMENTS_H_
#define SPARKSTACK_KERNELS_EMU_FRAGMENTS_H_

#include "kernels/emu/guard.h"

namespace sparkstack::emu::ptx {

struct RowCol {
  int row;
  int col;
};

constexpr int GroupId(int lane) { return lane >> 2; }
constexpr int ThreadInGroup(int lane) { return lane % 4; }

// 9.7.14.5.8 "Matrix Fragments for mma.m16n8k16 with floating point type", .f16/.bf16 A (16x16,
// four .f16x2 registers, a0..a7):
//   row = groupID       for ai where 0 <= i < 2 || 4 <= i < 6
//         groupID + 8   otherwise
//   col = threadID_in_group * 2 + (i & 0x1)       for ai where i < 4
//         threadID_in_group * 2 + (i & 0x1) + 8   for ai where i >= 4
constexpr RowCol M16N8K16A(int lane, int i) {
  const bool low_row = (i >= 0 && i < 2) || (i >= 4 && i < 6);
  return {GroupId(lane) + (low_row ? 0 : 8), ThreadInGroup(lane) * 2 + (i & 1) + (i >= 4 ? 8 : 0)};
}
// Same section, .f16/.bf16 B (16x8, rows are k; two .f16x2 registers, b0..b3):
//   row = threadID_in_group * 2 + (i & 0x1)       for bi where i < 2
//         threadID_in_group * 2 + (i & 0x1) + 8   for bi where i >= 2
//   col = groupID
constexpr RowCol M16N8K16B(int lane, int i) {
  return {ThreadInGroup(lane) * 2 + (i & 1) + (i >= 2 ? 8 : 0), GroupId(lane)};
}
// Same section, .f32 C/D (16x8, c0..c3), and identically 9.7.14.5.11 for m16n8k64:
//   row = groupID for ci where i < 2, groupID + 8 for ci where i >= 2
//   col = threadID_in_group * 2 + (i & 0x1)
constexpr RowCol M16N8Accumulator(int lane, int i) {
  return {GroupId(lane) + (i >= 2 ? 8 : 0), ThreadInGroup(lane) * 2 + (i & 1)};
}

// 9.7.14.5.11 "Matrix Fragments for mma.m16n8k64", .e2m1 A (16x64, four .b32 registers of eight
// elements, a0..a31):
//   row = groupID       for ai where 0 <= i < 8 || 16 <= i < 24
//         groupID + 8   otherwise
//   col = threadID_in_group * 8 + (i & 0x7)        for ai where i < 16
//         threadID_in_group * 8 + (i & 0x7) + 32   for ai where i >= 16
constexpr RowCol M16N8K64A(int lane, int i) {
  const bool low_row = (i >= 0 && i < 8) || (i >= 16 && i < 24);
  return {GroupId(lane) + (low_row ? 0 : 8),
          ThreadInGroup(lane) * 8 + (i & 7) + (i >= 16 ? 32 : 0)};
}
// Same section, .e2m1 B (64x8, rows are k; two .b32 registers, b0..b15):
//   row = threadID_in_group * 8 + (i & 0x7)        for bi where i < 8
//         threadID_in_group * 8 + (i & 0x7) + 32   for bi where i >= 8
//   col = groupID
constexpr RowCol M16N8K64B(int lane, int i) {
  return {ThreadInGroup(lane) * 8 + (i & 7) + (i >= 8 ? 32 : 0), GroupId(lane)};
}

// 9.7.14.3 "Block Scaling for mma.sync", .scale_vec::4X: scale_A is M x 4 (16 x 4) and scale_B is
// 4 x N (4 x 8); byte j of a scale register is the factor of k in [16j, 16j + 16) ("all four bytes
// within scale-a-data and scale-b-data contribute the values", byte-id must be 0).
//   SF_A: "one thread-pair within the quad determined by thread-id-a contributes the SF_A values":
//   thread-id-a 0 selects the lanes with %laneid % 4 == 0 or 1, thread-id-a 1 those with 2 or 3.
//   Within the pair, the lower lane holds row groupID and the upper lane row groupID + 8 (this
//   assignment is drawn in the ISA's Figure 43 only, not in its text: it is the one fact of these
//   tables not transcribed from a formula).
//   SF_B: "each thread satisfying %laneid % 4 == thread-id-b provides the SF_B", for column
//   groupID (the column its B fragment holds).
// Row of scale_A provided by `lane`, or -1 when the lane provides none.
constexpr int ScaleVec4xARow(int lane, int thread_id_a) {
  const int t = ThreadInGroup(lane);
  if (t / 2 != thread_id_a) return -1;
  return GroupId(lane) + (t % 2 == 0 ? 0 : 8);
}
// Column of scale_B provided by `lane`, or -1.
constexpr int ScaleVec4xBCol(int lane, int thread_id_b) {
  return ThreadInGroup(lane) == thread_id_b ? GroupId(lane) : -1;
}

// 9.7.14.5.15 "Warp-level matrix load instruction: ldmatrix", .m8n8 .b16: the row addresses of
// matrix m (m < .num) come from lanes 8m .. 8m + 7 ("addr0-addr7 correspond to the rows of the
// first matrix, addr8-addr15 to the second, ..."); "a group of four consecutive threads loads" a
// 16-byte row and "thread 0 receives the first fragment": lane l receives, in register m, the two
// elements (row l >> 2, columns 2 (l % 4) and 2 (l % 4) + 1) of matrix m, the lower column in the
// low half. With .trans the matrix is read column-major: lane l receives (rows 2 (l % 4) and
// 2 (l % 4) + 1, column l >> 2).
constexpr RowCol LdMatrixElement(int lane, int half, bool trans) {
  const RowCol rc{lane >> 2, 2 * (lane % 4) + half};
  return trans ? RowCol{rc.col, rc.row} : rc;
}

// 5.2.3 "Alternate Floating-Point Data Formats": e2m1 is 1 sign, 2 exponent and 1 mantissa bits,
// no infinity or NaN (OCP FP4: bias 1, exponent 0 subnormal, so 0 or 0.5); ue4m3 is a 7-bit
// unsigned format, 4 exponent and 3 mantissa bits, in a byte whose MSB is zero, NaN only 0x7f (OCP
// E4M3 magnitudes: bias 7, exponent 0 subnormal m * 2^-9).
constexpr double E2M1Value(unsigned code) {
  const unsigned e = (code >> 1) & 3u;
  const unsigned m = code & 1u;
  const double magnitude = e == 0 ? 0.5 * m : (1.0 + 0.5 * m) * static_cast<double>(1u << e) / 2.0;
  return (code & 8u) != 0 ? -magnitude : magnitude;
}

}  // namespace sparkstack::emu::ptx

#endif  // SPARKSTACK_KERNELS_EMU_FRAGMENTS_H_
