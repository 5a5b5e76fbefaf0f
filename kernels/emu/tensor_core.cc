#include "kernels/emu/tensor_core.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <string>

#include "kernels/emu/fragments.h"
#include "kernels/emu/thread_block.h"

namespace sparkstack::emu {
namespace {

constexpr uint32_t kFullMask = 0xffffffffu;

struct LdMatrixIn {
  int num;
  bool trans;
  const void* row_address;
};

uint16_t ReadU16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

void CombineLdMatrix(WarpCall* const lanes[kWarpSize]) {
  const auto& first = *static_cast<const LdMatrixIn*>(lanes[0]->in);
  const uint8_t* rows[32] = {};
  SharedMemory& smem = BlockSharedMemory();
  for (int l = 0; l < 8 * first.num; ++l) {
    const auto& in = *static_cast<const LdMatrixIn*>(lanes[l]->in);
    if (in.num != first.num || in.trans != first.trans) {
      FailKernel(cudaErrorLaunchFailure, "ldmatrix: lanes disagree on .num / .trans");
    }
    rows[l] = static_cast<const uint8_t*>(in.row_address);
    if (reinterpret_cast<uintptr_t>(rows[l]) % 16 != 0) {
      FailKernel(cudaErrorMisalignedAddress, "ldmatrix at " + DescribeSite(lanes[l]->where) +
                                                 ": lane " + std::to_string(l) +
                                                 "'s row address is not 16-byte aligned");
    }
    if (!smem.Contains(rows[l], 16)) {
      FailKernel(cudaErrorIllegalAddress,
                 "ldmatrix at " + DescribeSite(lanes[l]->where) + ": lane " + std::to_string(l) +
                     "'s 16-byte row is not inside the block's shared memory");
    }
  }
  for (int l = 0; l < kWarpSize; ++l) {
    auto* out = static_cast<uint32_t*>(lanes[l]->out);
    for (int m = 0; m < first.num; ++m) {
      uint32_t reg = 0;
      for (int half = 0; half < 2; ++half) {
        const ptx::RowCol rc = ptx::LdMatrixElement(l, half, first.trans);
        reg |= uint32_t{ReadU16(rows[8 * m + rc.row] + 2 * rc.col)} << (16 * half);
      }
      out[m] = reg;
    }
  }
}

float Bf16Bits(uint32_t bits16) { return std::bit_cast<float>(bits16 << 16); }

struct MmaBf16In {
  uint32_t a[4];
  uint32_t b[2];
  float c[4];
};

void CombineMmaBf16(WarpCall* const lanes[kWarpSize]) {
  double a[16][16], b[16][8], c[16][8];
  for (int l = 0; l < kWarpSize; ++l) {
    const auto& in = *static_cast<const MmaBf16In*>(lanes[l]->in);
    for (int i = 0; i < 8; ++i) {
      const ptx::RowCol rc = ptx::M16N8K16A(l, i);
      a[rc.row][rc.col] = Bf16Bits((in.a[i / 2] >> (16 * (i % 2))) & 0xffffu);
    }
    for (int i = 0; i < 4; ++i) {
      const ptx::RowCol rc = ptx::M16N8K16B(l, i);
      b[rc.row][rc.col] = Bf16Bits((in.b[i / 2] >> (16 * (i % 2))) & 0xffffu);
    }
    for (int i = 0; i < 4; ++i) {
      const ptx::RowCol rc = ptx::M16N8Accumulator(l, i);
      c[rc.row][rc.col] = in.c[i];
    }
  }
  for (int l = 0; l < kWarpSize; ++l) {
    auto* d = static_cast<float*>(lanes[l]->out);
    for (int i = 0; i < 4; ++i) {
      const ptx::RowCol rc = ptx::M16N8Accumulator(l, i);
      double sum = 0.0;
      for (int k = 0; k < 16; ++k) sum += a[rc.row][k] * b[k][rc.col];
      d[i] = static_cast<float>(c[rc.row][rc.col] + sum);
    }
  }
}

struct MmaFp4In {
  uint32_t a[4];
  uint32_t b[2];
  float c[4];
  uint32_t sfa, sfb;
  int byte_id_a, thread_id_a, byte_id_b, thread_id_b;
};

double Ue4m3Value(uint32_t byte, const WarpCall& call, const char* operand) {
  if (byte & 0x80u) {
    FailKernel(cudaErrorLaunchFailure,
               "mma.m16n8k64 block_scale at " + DescribeSite(call.where) + ": " + operand +
                   " byte " + std::to_string(byte) +
                   " has its MSB set (ue4m3 is 7 bits; stale shared memory reads as 0xff)");
  }
  if (byte == 0x7fu) return NAN;
  const int e = static_cast<int>(byte >> 3);
  const int m = static_cast<int>(byte & 7u);
  return e == 0 ? std::ldexp(static_cast<double>(m), -9) : std::ldexp(8.0 + m, e - 10);
}

void CombineMmaFp4(WarpCall* const lanes[kWarpSize]) {
  const auto& first = *static_cast<const MmaFp4In*>(lanes[0]->in);
  if (first.byte_id_a != 0 || first.byte_id_b != 0 || first.thread_id_a < 0 ||
      first.thread_id_a > 1 || first.thread_id_b < 0 || first.thread_id_b > 3) {
    FailKernel(cudaErrorLaunchFailure,
               "mma.m16n8k64 scale_vec::4X at " + DescribeSite(lanes[0]->where) +
                   ": selectors must be byte-id 0, thread-id-a 0..1, thread-id-b 0..3 (PTX ISA "
                   "9.7.14.3, Table 37)");
  }
  double a[16][64], b[64][8], c[16][8], sa[16][4], sb[4][8];
  for (int l = 0; l < kWarpSize; ++l) {
    const auto& in = *static_cast<const MmaFp4In*>(lanes[l]->in);
    if (in.byte_id_a != first.byte_id_a || in.thread_id_a != first.thread_id_a ||
        in.byte_id_b != first.byte_id_b || in.thread_id_b != first.thread_id_b) {
      FailKernel(cudaErrorLaunchFailure, "mma.m16n8k64 at " + DescribeSite(lanes[l]->where) +
                                             ": lanes disagree on the scale selectors");
    }
    for (int i = 0; i < 32; ++i) {
      const ptx::RowCol rc = ptx::M16N8K64A(l, i);
      a[rc.row][rc.col] = ptx::E2M1Value((in.a[i / 8] >> (4 * (i % 8))) & 0xfu);
    }
    for (int i = 0; i < 16; ++i) {
      const ptx::RowCol rc = ptx::M16N8K64B(l, i);
      b[rc.row][rc.col] = ptx::E2M1Value((in.b[i / 8] >> (4 * (i % 8))) & 0xfu);
    }
    for (int i = 0; i < 4; ++i) {
      const ptx::RowCol rc = ptx::M16N8Accumulator(l, i);
      c[rc.row][rc.col] = in.c[i];
    }
    if (const int row = ptx::ScaleVec4xARow(l, in.thread_id_a); row >= 0) {
      for (int j = 0; j < 4; ++j)
        sa[row][j] = Ue4m3Value((in.sfa >> (8 * j)) & 0xffu, *lanes[l], "SF_A");
    }
    if (const int col = ptx::ScaleVec4xBCol(l, in.thread_id_b); col >= 0) {
      for (int j = 0; j < 4; ++j)
        sb[j][col] = Ue4m3Value((in.sfb >> (8 * j)) & 0xffu, *lanes[l], "SF_B");
    }
  }
  for (int l = 0; l < kWarpSize; ++l) {
    auto* d = static_cast<float*>(lanes[l]->out);
    for (int i = 0; i < 4; ++i) {
      const ptx::RowCol rc = ptx::M16N8Accumulator(l, i);
      double sum = 0.0;
      for (int k = 0; k < 64; ++k) {
        sum += (a[rc.row][k] * sa[rc.row][k / 16]) * (b[k][rc.col] * sb[k / 16][rc.col]);
      }
      d[i] = static_cast<float>(c[rc.row][rc.col] + sum);
    }
  }
}

}  // namespace

void LdMatrix(int num, bool trans, uint32_t* r, const void* row_address,
              const std::source_location& where) {
  LdMatrixIn in{num, trans, row_address};
  WarpCall call{"ldmatrix.m8n8.b16", where, kFullMask, true, &in, r, &CombineLdMatrix};
  WarpRendezvous(call);
}

void MmaM16N8K16Bf16(float* d, const uint32_t* a, const uint32_t* b,
                     const std::source_location& where) {
  MmaBf16In in;
  std::memcpy(in.a, a, sizeof(in.a));
  std::memcpy(in.b, b, sizeof(in.b));
  std::memcpy(in.c, d, sizeof(in.c));
  WarpCall call{"mma.m16n8k16.bf16", where, kFullMask, true, &in, d, &CombineMmaBf16};
  WarpRendezvous(call);
}

void MmaM16N8K64Mxf4Nvf4(float* d, const uint32_t* a, const uint32_t* b, uint32_t sfa,
                         int byte_id_a, int thread_id_a, uint32_t sfb, int byte_id_b,
                         int thread_id_b, const std::source_location& where) {
  MmaFp4In in;
  std::memcpy(in.a, a, sizeof(in.a));
  std::memcpy(in.b, b, sizeof(in.b));
  std::memcpy(in.c, d, sizeof(in.c));
  in.sfa = sfa;
  in.sfb = sfb;
  in.byte_id_a = byte_id_a;
  in.thread_id_a = thread_id_a;
  in.byte_id_b = byte_id_b;
  in.thread_id_b = thread_id_b;
  WarpCall call{"mma.m16n8k64.mxf4nvf4", where, kFullMask, true, &in, d, &CombineMmaFp4};
  WarpRendezvous(call);
}

}  // namespace sparkstack::emu
