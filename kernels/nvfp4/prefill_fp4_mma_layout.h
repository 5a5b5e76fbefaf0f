// Data layouts of the sm_121a W4A4 prefill GEMM (prefill_fp4_mma.cuh), as plain constexpr
// C++ that nvcc and the host compiler both read, so that the host tests check the very functions
// the kernel uses (tests/unit/kernels/nvfp4_cuda/nvfp4_fp4_mma_layout_test.cc).
//
// The instruction. One warp executes
//   mma.sync.aligned.m16n8k64.row.col.kind::mxf4nvf4.block_scale.scale_vec::4X
//       .f32.e2m1.e2m1.f32.ue4m3  d, a, b, c, sfa, {0, 0}, sfb, {0, 0}
// computing D[16x8] = C + sum_k A[16x64][i][k] * sfa(i, k/16) * B[64x8][k][j] * sfb(j, k/16),
// where A and B hold e2m1 codes and sfa/sfb are ue4m3 scale bytes, one per 16 values of k
// ("scale_vec::4X": four scales along the 64 k values). B is given "col", i.e. as the 8 weight
// rows (n) of 64 k values each: exactly the checkpoint's [n, k/2] code layout.
//
// Fragments (NVFP4.md "GB10 (sm_121) instructions", derived from CUTLASS; they agree with the PTX
// ISA's tables as kernels/emu/fragments.h transcribes them, which the emulated kernel test checks;
// UNVERIFIED on hardware). With lane l, g = l >> 2 (the "group", 0..7) and t = l & 3 (the thread in the group, 0..3):
//   A: 4 registers of 8 nibbles. a0 = row g, k 8t..8t+7; a1 = row g+8, same k; a2 = row g,
//      k 32+8t..32+8t+7; a3 = row g+8, k 32+8t... . The lowest k sits in the lowest nibble, so a
//      register is 4 consecutive bytes of a row in the [row, k/2] code layout (element 2i in the
//      low nibble of byte i): no repacking is needed, a fragment is one 32-bit load.
//   B: 2 registers. b0 = weight row (column of B) g, k 8t..8t+7; b1 = same row, k 32+8t... .
//   C/D: 4 floats. d0, d1 = row g, columns 2t, 2t+1; d2, d3 = row g+8, columns 2t, 2t+1.
//   SFA: one 32-bit register per lane, byte j = the scale of k in [16j, 16j+16). With the thread
//      selector 0 the instruction reads it from lanes t = 0 (row g) and t = 1 (row g+8) of every
//      group (which of the pair holds which row is drawn in the ISA's Figure 43 only, the one
//      fact here the emulation could not take from text); we fill all lanes (t even: row g, t odd: row g+8, as CUTLASS's SFA layout does), so
//      the selector value is irrelevant to correctness of the data we provide.
//   SFB: one 32-bit register, byte j = scale of k in [16j, 16j+16) of weight row g (every t holds
//      the same value; selector 0 reads t = 0).
//
// Shared-memory tile (one k-slice of kFp4MmaBK = 128 values), for A (BM activation rows) and B
// (BN weight rows) alike:
//   codes:  rows of kFp4MmaCodeRowBytes = 64 data bytes + 16 pad bytes. The pad makes the
//           8 groups x 4 threads of a fragment load hit 32 distinct banks: word address
//           20 * g + t (mod 32) is distinct for g < 8, t < 4.
//   scales: rows of kFp4MmaBK / 16 = 8 bytes; byte j scales codes [16j, 16j+16) of the slice.
// The slice holds two m16n8k64 k-steps (s = 0, 1): step s uses code bytes [32s, 32s+32) and
// scale bytes [4s, 4s+4) of each row.
#ifndef SPARKSTACK_KERNELS_NVFP4_PREFILL_FP4_MMA_LAYOUT_H_
#define SPARKSTACK_KERNELS_NVFP4_PREFILL_FP4_MMA_LAYOUT_H_

#include <cstdint>

#if defined(__CUDACC__)
#define SPARKSTACK_FP4MMA_HD __host__ __device__ __forceinline__
#else
#define SPARKSTACK_FP4MMA_HD inline
#endif

namespace sparkstack::kernels::nvfp4 {

// ---------------------------------------------------------------------------------------------
// Block tile and thread mapping.
//
// A block of 8 warps computes a kFp4MmaBM x kFp4MmaBN tile of y. The warps form a 2 (along m) x
// 4 (along n) grid; warp (wm, wn) owns rows [64 wm, 64 wm + 64) and columns [32 wn, 32 wn + 32)
// of the tile: 4 x 4 m16n8 accumulator tiles, 64 floats per thread. Per k-slice every thread
// quantizes 4 of the tile's 16-value activation blocks (bf16 -> e2m1 + ue4m3) into shared memory
// and copies 4 8-byte chunks of weight codes and 4 scale bytes, then the warps run 2 k-steps x 16
// MMAs. Single-buffered: a first correct version, not yet pipelined.
inline constexpr int kFp4MmaThreads = 256;
inline constexpr int kFp4MmaBM = 128;
inline constexpr int kFp4MmaBN = 128;
inline constexpr int kFp4MmaBK = 128;
inline constexpr int kFp4MmaWarpM = 64;
inline constexpr int kFp4MmaWarpN = 32;
inline constexpr int kFp4MmaCodeRowBytes = kFp4MmaBK / 2 + 16;
inline constexpr int kFp4MmaScaleRowBytes = kFp4MmaBK / 16;

// Byte offsets of the four regions inside the block's dynamic shared memory.
inline constexpr int kFp4MmaSmemACodes = 0;
inline constexpr int kFp4MmaSmemBCodes = kFp4MmaSmemACodes + kFp4MmaBM * kFp4MmaCodeRowBytes;
inline constexpr int kFp4MmaSmemAScales = kFp4MmaSmemBCodes + kFp4MmaBN * kFp4MmaCodeRowBytes;
inline constexpr int kFp4MmaSmemBScales = kFp4MmaSmemAScales + kFp4MmaBM * kFp4MmaScaleRowBytes;

// Dynamic shared memory of one block, in bytes.
constexpr int Fp4MmaSmemBytes() {
  return kFp4MmaSmemBScales + kFp4MmaBN * kFp4MmaScaleRowBytes;
}
static_assert(Fp4MmaSmemBytes() <= 101376,
              "the FP4 MMA tile must fit GB10's 101,376 bytes of shared memory per block");
static_assert(kFp4MmaCodeRowBytes % 16 == 0 && kFp4MmaSmemBCodes % 16 == 0 &&
                  kFp4MmaSmemAScales % 16 == 0 && kFp4MmaSmemBScales % 16 == 0,
              "regions and rows must stay 16-byte aligned");
static_assert(kFp4MmaThreads == 32 * (kFp4MmaBM / kFp4MmaWarpM) * (kFp4MmaBN / kFp4MmaWarpN),
              "one warp per warp tile");

// ---------------------------------------------------------------------------------------------
// Fragment helpers. `lane` is 0..31; rows and k are relative to one m16n8k64 operand tile.

// Row of the 16 x 64 A tile held by A register `reg` (0..3) of `lane`.
SPARKSTACK_FP4MMA_HD constexpr int Fp4FragARow(int lane, int reg) {
  return (lane >> 2) + ((reg & 1) ? 8 : 0);
}
// First of the 8 consecutive k values of A register `reg` (nibble i holds k + i).
SPARKSTACK_FP4MMA_HD constexpr int Fp4FragAK(int lane, int reg) {
  return 8 * (lane & 3) + ((reg & 2) ? 32 : 0);
}
// Weight row (column of B, 0..7) held by every B register of `lane`.
SPARKSTACK_FP4MMA_HD constexpr int Fp4FragBCol(int lane) { return lane >> 2; }
// First of the 8 consecutive k values of B register `reg` (0..1).
SPARKSTACK_FP4MMA_HD constexpr int Fp4FragBK(int lane, int reg) {
  return 8 * (lane & 3) + (reg ? 32 : 0);
}
// Row and column of accumulator element `i` (0..3) of `lane` in the 16 x 8 D tile.
SPARKSTACK_FP4MMA_HD constexpr int Fp4FragDRow(int lane, int i) {
  return (lane >> 2) + (i >= 2 ? 8 : 0);
}
SPARKSTACK_FP4MMA_HD constexpr int Fp4FragDCol(int lane, int i) { return 2 * (lane & 3) + (i & 1); }
// Row of the A tile whose 4 scale bytes `lane` provides in its SFA register.
SPARKSTACK_FP4MMA_HD constexpr int Fp4FragSfaRow(int lane) {
  return (lane >> 2) + ((lane & 1) ? 8 : 0);
}
// Weight row whose 4 scale bytes `lane` provides in its SFB register.
SPARKSTACK_FP4MMA_HD constexpr int Fp4FragSfbCol(int lane) { return lane >> 2; }
// The lanes the instruction reads the scales from, with both thread selectors 0 (PTX ISA: the
// selector picks the thread(s) of each group of four). Documented for the emulation.
SPARKSTACK_FP4MMA_HD constexpr bool Fp4SfaLaneIsRead(int lane) { return (lane & 3) < 2; }
SPARKSTACK_FP4MMA_HD constexpr bool Fp4SfbLaneIsRead(int lane) { return (lane & 3) == 0; }

// Byte offsets in the shared-memory tile described above, for the operand tile whose first row is
// `row0` (a multiple of 16 for A, 8 for B) and k-step `s` (0..1) of the slice. Every offset is a
// multiple of 4: each register is a single aligned 32-bit load.
SPARKSTACK_FP4MMA_HD constexpr int Fp4SmemAOffset(int row0, int s, int lane, int reg) {
  return (row0 + Fp4FragARow(lane, reg)) * kFp4MmaCodeRowBytes + 32 * s + Fp4FragAK(lane, reg) / 2;
}
SPARKSTACK_FP4MMA_HD constexpr int Fp4SmemBOffset(int row0, int s, int lane, int reg) {
  return (row0 + Fp4FragBCol(lane)) * kFp4MmaCodeRowBytes + 32 * s + Fp4FragBK(lane, reg) / 2;
}
SPARKSTACK_FP4MMA_HD constexpr int Fp4SmemSfaOffset(int row0, int s, int lane) {
  return (row0 + Fp4FragSfaRow(lane)) * kFp4MmaScaleRowBytes + 4 * s;
}
SPARKSTACK_FP4MMA_HD constexpr int Fp4SmemSfbOffset(int row0, int s, int lane) {
  return (row0 + Fp4FragSfbCol(lane)) * kFp4MmaScaleRowBytes + 4 * s;
}

// Nibble `i` (0..7, lowest k first) of a packed register, and byte `j` (0..3) of a scale register.
SPARKSTACK_FP4MMA_HD constexpr uint32_t Fp4Nibble(uint32_t reg, int i) { return (reg >> (4 * i)) & 0xfu; }
SPARKSTACK_FP4MMA_HD constexpr uint32_t Fp4ScaleByte(uint32_t reg, int j) {
  return (reg >> (8 * j)) & 0xffu;
}
// Little-endian 32-bit word from 4 bytes (what a 32-bit shared-memory load returns on the GPU).
SPARKSTACK_FP4MMA_HD constexpr uint32_t Fp4LoadWord(const uint8_t* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}

}  // namespace sparkstack::kernels::nvfp4

#endif  // SPARKSTACK_KERNELS_NVFP4_PREFILL_FP4_MMA_LAYOUT_H_
