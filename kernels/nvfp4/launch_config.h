// Launch geometry and shared-memory budgets of the NVFP4 CUDA kernels, as plain constexpr C++.
//
// This header is included both by the .cu files (which launch with exactly these numbers) and by
// host code and tests that must reason about the kernels without a GPU: which prefill tile fits a
// device's shared-memory limit, how many blocks a decode launch uses, whether an argument set is
// valid. No CUDA types, no absl: nvcc and the host compiler both read it.
//
// Operand layouts shared by every kernel (see /work/shared/NVFP4.md):
//   x      bf16 [m, k], row stride ldx elements; 16-byte aligned base, ldx a multiple of 8.
//   codes  u8 [n, k/2], row stride ldw bytes: element 2i of a row in the LOW nibble of byte i,
//          element 2i+1 in the high nibble; 8-byte aligned base, ldw a multiple of 8.
//   scales E4M3 bytes [n, k/16], row stride lds bytes: byte j scales elements [16j, 16j+16).
//   global f32: W[r][c] = e2m1(code) * e4m3(scale) * global.
//   y      [m, n] bf16 or f32, row stride ldy elements: y = x . W^T.
// k must be a multiple of 16 (one block); n and m are arbitrary (>= 1).
#ifndef SPARKSTACK_KERNELS_NVFP4_LAUNCH_CONFIG_H_
#define SPARKSTACK_KERNELS_NVFP4_LAUNCH_CONFIG_H_

#include <cstdint>

namespace sparkstack::kernels::nvfp4 {

// GB10 (sm_121) allows at most this much shared memory per block; every tile configuration must
// fit in it so that one binary runs on GB10 and Hopper alike.
inline constexpr int kGb10MaxSmemPerBlock = 101376;
// Without cudaFuncSetAttribute a block gets at most 48 KiB of dynamic shared memory.
inline constexpr int kDefaultSmemPerBlock = 49152;
inline constexpr int kBlockSize = 16;  // elements per E4M3 block scale

enum class OutType : int { kBF16 = 0, kF32 = 1 };

// One GEMM problem y = x . dequant(W)^T with the layouts above. Pointers are device pointers.
struct GemmArgs {
  const void* x = nullptr;  // bf16
  int64_t ldx = 0;
  const uint8_t* codes = nullptr;
  int64_t ldw = 0;
  const uint8_t* scales = nullptr;
  int64_t lds = 0;
  float global_scale = 0.0f;
  void* y = nullptr;
  int64_t ldy = 0;
  OutType out_type = OutType::kBF16;
  int64_t m = 0;
  int64_t n = 0;
  int64_t k = 0;
  // W4A4 variants only (kPrefillFp4Mma): the static activation scale input_scale =
  // amax_calib / (6 * 448) of the checkpoint; y is then alpha * quant(x) . W^T with
  // alpha = input_scale * global_scale. Ignored by the W4A16 variants.
  float input_scale = 0.0f;
};

// Checks sizes, strides and alignment shared by every GEMM kernel. Returns nullptr when valid,
// else a static message naming the field and the rule it breaks.
inline const char* ValidateGemmArgs(const GemmArgs& a) {
  if (a.m < 1 || a.n < 1 || a.k < 1) return "m, n and k must be >= 1";
  if (a.k % kBlockSize != 0) return "k must be a multiple of 16 (one NVFP4 block)";
  if (a.k > (int64_t{1} << 30) || a.n > (int64_t{1} << 30) || a.m > (int64_t{1} << 30)) {
    return "m, n and k must be below 2^30";
  }
  if (a.x == nullptr || a.codes == nullptr || a.scales == nullptr || a.y == nullptr) {
    return "x, codes, scales and y must be non-null";
  }
  if (a.ldx < a.k || a.ldx % 8 != 0) return "ldx must be >= k and a multiple of 8 elements";
  if (a.ldw < a.k / 2 || a.ldw % 8 != 0) return "ldw must be >= k/2 and a multiple of 8 bytes";
  if (a.lds < a.k / kBlockSize) return "lds must be >= k/16";
  if (a.ldy < a.n) return "ldy must be >= n";
  if (reinterpret_cast<uintptr_t>(a.x) % 16 != 0) return "x must be 16-byte aligned";
  if (reinterpret_cast<uintptr_t>(a.codes) % 8 != 0) return "codes must be 8-byte aligned";
  if (a.out_type != OutType::kBF16 && a.out_type != OutType::kF32) return "unknown out_type";
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Decode (W4A16 GEMV / skinny GEMM, m <= 16 per launch row of the grid).
//
// Thread mapping: a block of kDecodeWarps warps; warp w of block b owns the kDecodeRowsPerWarp
// weight rows starting at (b * kDecodeWarps + w) * kDecodeRowsPerWarp and every m of its
// m-tile (grid y). Lane l streams the row's 16-byte chunks l, l + 32, l + 64, ... (32 elements
// and two block scales each), so a warp's loads are 512 contiguous bytes per row; the x values of
// a chunk come from L1 (x is small and read by every warp), are converted once and reused for
// every row of the warp. Partial sums are reduced across the warp with shuffles.
// When a row's base is not 16-byte aligned (ldw % 16 != 0, e.g. k = 16 * odd), the kernel
// streams 8-byte chunks instead (the "vec8" instance).
inline constexpr int kDecodeWarps = 4;
inline constexpr int kDecodeRowsPerWarp = 2;
inline constexpr int kDecodeThreads = kDecodeWarps * 32;
inline constexpr int kDecodeRowsPerBlock = kDecodeWarps * kDecodeRowsPerWarp;

// The m-tiles the decode kernel is instantiated for.
inline constexpr int kDecodeMTiles[] = {1, 2, 4, 8, 16};

// Smallest instantiated m-tile >= m (16 for m > 16: the grid's y dimension covers the rest).
constexpr int DecodeMTileFor(int64_t m) {
  for (int t : kDecodeMTiles) {
    if (m <= t) return t;
  }
  return 16;
}

struct DecodeLaunch {
  int grid_x = 0;
  int grid_y = 0;
  int block = 0;
  int m_tile = 0;
  bool vec16 = false;  // 16-byte weight loads (rows 16-byte aligned) or 8-byte ones
};

inline DecodeLaunch PlanDecode(const GemmArgs& a) {
  DecodeLaunch l;
  l.m_tile = DecodeMTileFor(a.m);
  l.grid_x = static_cast<int>((a.n + kDecodeRowsPerBlock - 1) / kDecodeRowsPerBlock);
  l.grid_y = static_cast<int>((a.m + l.m_tile - 1) / l.m_tile);
  l.block = kDecodeThreads;
  l.vec16 = a.ldw % 16 == 0 && reinterpret_cast<uintptr_t>(a.codes) % 16 == 0;
  return l;
}

// ---------------------------------------------------------------------------------------------
// Prefill (W4A16 tensor-core GEMM for m >= 64 on sm_80+).
//
// A block computes a BM x BN tile of y (BM rows of x, BN weight rows) with 8 warps laid out
// 2 (along m) x 4 (along n); each warp owns a (BM/2) x 32 sub-tile made of m16n8k16 bf16 mma
// tiles. Per BK = 64 slice of k, a pipeline stage holds the x tile (bf16, padded rows), the raw
// weight codes and the block scales; one shared bf16 buffer holds the dequantized weight tile
// that the mma reads through ldmatrix.
inline constexpr int kPrefillThreads = 256;
inline constexpr int kPrefillBK = 64;
inline constexpr int kPrefillSmemPad = 8;  // bf16 elements added to each 64-element row

struct PrefillTile {
  int bm;
  int bn;
  int stages;
};

// Shared-memory bytes one block of `t` needs (all dynamic shared memory).
constexpr int PrefillSmemBytes(PrefillTile t) {
  const int row_bytes = (kPrefillBK + kPrefillSmemPad) * 2;  // one padded bf16 row
  const int x_stage = t.bm * row_bytes;
  const int codes_stage = t.bn * (kPrefillBK / 2);
  const int scales_stage = t.bn * (kPrefillBK / kBlockSize);
  const int dequant = t.bn * row_bytes;
  return t.stages * (x_stage + codes_stage + scales_stage) + dequant;
}

// The instantiated tiles, largest first (the selector's preference order).
inline constexpr PrefillTile kPrefillTileLarge{128, 128, 3};
inline constexpr PrefillTile kPrefillTileSmall{64, 128, 2};
static_assert(PrefillSmemBytes(kPrefillTileLarge) <= kGb10MaxSmemPerBlock,
              "the large prefill tile must fit GB10's 101,376 bytes of shared memory");
static_assert(PrefillSmemBytes(kPrefillTileSmall) <= kDefaultSmemPerBlock,
              "the small prefill tile must run without a shared-memory opt-in");

struct PrefillLaunch {
  int grid_x = 0;  // tiles along n
  int grid_y = 0;  // tiles along m
  int block = 0;
  int smem_bytes = 0;
};

constexpr PrefillLaunch PlanPrefill(const GemmArgs& a, PrefillTile t) {
  PrefillLaunch l;
  l.grid_x = static_cast<int>((a.n + t.bn - 1) / t.bn);
  l.grid_y = static_cast<int>((a.m + t.bm - 1) / t.bm);
  l.block = kPrefillThreads;
  l.smem_bytes = PrefillSmemBytes(t);
  return l;
}

// ---------------------------------------------------------------------------------------------
// Quantize kernels: one thread per 16-element block.
inline constexpr int kQuantizeThreads = 256;

}  // namespace sparkstack::kernels::nvfp4

#endif  // SPARKSTACK_KERNELS_NVFP4_LAUNCH_CONFIG_H_
