#include "kernels/cpu/moe_experts.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/convert.h"
#include "kernels/cpu/dense_linear.h"
#include "kernels/cpu/nvfp4_linear.h"
#include "kernels/cpu/nvfp4_reference.h"
#include "kernels/cpu/swiglu.h"

namespace sparkstack::kernels {
namespace {

// y[m, c1 - c0] = x[m, K] · W[c0:c1, :]^T on the calling thread.
void LinearColumns(const float* x, int64_t m, const Weight& w, int64_t c0, int64_t c1, float* y) {
  const int64_t k = w.cols();
  if (w.format() == WeightFormat::kDense) {
    const Tensor& t = w.dense();
    const char* base = static_cast<const char*>(t.data()) + DTypeByteSize(t.dtype(), c0 * k);
    DenseLinearF32(x, m, k, base, t.dtype(), c1 - c0, y, 1);
    return;
  }
  const Nvfp4Parts& q = w.nvfp4();
  Nvfp4LinearF32(x, m, k, q.codes.data_as<const uint8_t>() + c0 * (k / 2),
                 q.block_scales.data_as<const uint8_t>() + c0 * (k / kNvfp4BlockSize),
                 q.global_scale, c1 - c0, y, 1);
}

// Columns [begin, end) of one expert's matrix.
struct Segment {
  int64_t expert;
  int64_t begin;
  int64_t end;
};

// Splits the columns of the experts with rows into up to `parts` lists of segments of about equal
// cost. A column costs the read of its weight row (about two rows' worth of multiply-adds on a
// bandwidth-bound core) plus one dot product per row. Cuts fall on multiples of 8 columns.
std::vector<std::vector<Segment>> SplitColumns(std::span<const int64_t> widths,
                                               const int32_t* offsets, int parts) {
  const int64_t experts = static_cast<int64_t>(widths.size());
  auto rows = [&](int64_t e) { return int64_t{offsets[e + 1]} - offsets[e]; };
  double total = 0;
  for (int64_t e = 0; e < experts; ++e) {
    if (rows(e) > 0) total += static_cast<double>(widths[e]) * static_cast<double>(2 + rows(e));
  }
  std::vector<std::vector<Segment>> out(std::max(parts, 1));
  const double target = total / static_cast<double>(out.size());
  size_t part = 0;
  double filled = 0;
  for (int64_t e = 0; e < experts; ++e) {
    if (rows(e) <= 0) continue;
    const double per_column = static_cast<double>(2 + rows(e));
    int64_t c = 0;
    while (c < widths[e]) {
      int64_t take = widths[e] - c;
      if (part + 1 < out.size()) {
        const double room = std::max(0.0, target - filled);
        int64_t fit = static_cast<int64_t>(room / per_column);
        fit = std::max<int64_t>(8, fit / 8 * 8);  // progress, and aligned cuts
        take = std::min(take, fit);
      }
      out[part].push_back({e, c, c + take});
      filled += static_cast<double>(take) * per_column;
      c += take;
      if (part + 1 < out.size() && filled >= target - per_column * 4) {
        ++part;
        filled = 0;
      }
    }
  }
  while (!out.empty() && out.back().empty()) out.pop_back();
  return out;
}

template <typename Work>
void RunParts(const std::vector<std::vector<Segment>>& parts, const Work& work) {
  std::vector<std::thread> workers;
  for (size_t p = 1; p < parts.size(); ++p) {
    workers.emplace_back([&work, &parts, p] { work(static_cast<int>(p), parts[p]); });
  }
  if (!parts.empty()) work(0, parts[0]);
  for (auto& worker : workers) worker.join();
}

// Below ~2M multiply-adds a second thread costs more than it saves.
int UsefulThreads(std::span<const MoeExpertWeights> experts, const int32_t* offsets, int threads) {
  int64_t work = 0;
  for (size_t e = 0; e < experts.size(); ++e) {
    const int64_t rows = int64_t{offsets[e + 1]} - offsets[e];
    if (rows > 0) work += (rows + 2) * experts[e].gate->rows() * experts[e].gate->cols() * 3;
  }
  return static_cast<int>(std::clamp<int64_t>(work >> 21, 1, std::max(threads, 1)));
}

}  // namespace

size_t MoeExpertsWorkspaceFloats(int64_t rows, int64_t max_intermediate, int threads) {
  return static_cast<size_t>(rows * max_intermediate) +
         static_cast<size_t>(std::max(threads, 1)) * 2 * kMoeRowBlock * kMoeColumnBlock;
}

std::string MoeExpertsWeightsError(std::span<const MoeExpertWeights> experts, int64_t hidden,
                                   int64_t max_intermediate) {
  for (size_t e = 0; e < experts.size(); ++e) {
    const MoeExpertWeights& x = experts[e];
    if (x.gate == nullptr || x.up == nullptr || x.down == nullptr) {
      return absl::StrCat("expert ", e, " lacks a gate, up or down weight");
    }
    const int64_t width = x.gate->rows();
    if (x.gate->cols() != hidden || x.up->rows() != width || x.up->cols() != hidden ||
        x.down->rows() != hidden || x.down->cols() != width || width > max_intermediate ||
        width <= 0) {
      return absl::StrCat("expert ", e, ": gate ", x.gate->DebugString(), ", up ",
                          x.up->DebugString(), ", down ", x.down->DebugString(),
                          " do not form a SwiGLU MLP of hidden ", hidden,
                          " and width <= ", max_intermediate);
    }
    for (const Weight* w : {x.gate, x.up, x.down}) {
      if (w->format() == WeightFormat::kDense && !IsFloatDType(w->dense().dtype())) {
        return absl::StrCat("expert ", e, ": weight ", w->DebugString(),
                            " is not f32, f16, bf16 or nvfp4");
      }
    }
  }
  return "";
}

void MoeExpertsSwiGluF32(const float* x_perm, int64_t hidden, const int32_t* expert_offsets,
                         std::span<const MoeExpertWeights> experts, int64_t max_intermediate,
                         float* y_perm, float* workspace, int threads) {
  const int64_t count = static_cast<int64_t>(experts.size());
  float* h = workspace;  // expert e's rows at h + offsets[e] * max_intermediate, stride I_e
  float* scratch = workspace + int64_t{expert_offsets[count]} * max_intermediate;
  threads = UsefulThreads(experts, expert_offsets, threads);
  std::vector<int64_t> widths(count), hiddens(count, hidden);
  for (int64_t e = 0; e < count; ++e) widths[e] = experts[e].gate->rows();
  constexpr int64_t kScratch = 2 * kMoeRowBlock * kMoeColumnBlock;

  // Phase 1: h = silu(x · gate^T) * (x · up^T), split over the intermediate columns.
  RunParts(SplitColumns(widths, expert_offsets, threads),
           [&](int part, const std::vector<Segment>& segments) {
             float* g = scratch + part * kScratch;
             float* u = g + kMoeRowBlock * kMoeColumnBlock;
             for (const Segment& s : segments) {
               const MoeExpertWeights& w = experts[s.expert];
               const int64_t first = expert_offsets[s.expert];
               const int64_t rows = int64_t{expert_offsets[s.expert + 1]} - first;
               const int64_t width = widths[s.expert];
               float* h_e = h + first * max_intermediate;
               for (int64_t r0 = 0; r0 < rows; r0 += kMoeRowBlock) {
                 const int64_t m = std::min(kMoeRowBlock, rows - r0);
                 const float* x = x_perm + (first + r0) * hidden;
                 for (int64_t c0 = s.begin; c0 < s.end; c0 += kMoeColumnBlock) {
                   const int64_t n = std::min(kMoeColumnBlock, s.end - c0);
                   LinearColumns(x, m, *w.gate, c0, c0 + n, g);
                   LinearColumns(x, m, *w.up, c0, c0 + n, u);
                   SwiGluF32(g, u, m * n, g);
                   for (int64_t i = 0; i < m; ++i) {
                     std::copy(g + i * n, g + (i + 1) * n, h_e + (r0 + i) * width + c0);
                   }
                 }
               }
             }
           });

  // Phase 2: y = h · down^T, split over the hidden columns.
  RunParts(SplitColumns(hiddens, expert_offsets, threads),
           [&](int part, const std::vector<Segment>& segments) {
             float* t = scratch + part * kScratch;
             for (const Segment& s : segments) {
               const MoeExpertWeights& w = experts[s.expert];
               const int64_t first = expert_offsets[s.expert];
               const int64_t rows = int64_t{expert_offsets[s.expert + 1]} - first;
               const int64_t width = widths[s.expert];
               const float* h_e = h + first * max_intermediate;
               for (int64_t r0 = 0; r0 < rows; r0 += kMoeRowBlock) {
                 const int64_t m = std::min(kMoeRowBlock, rows - r0);
                 for (int64_t c0 = s.begin; c0 < s.end; c0 += kMoeColumnBlock) {
                   const int64_t n = std::min(kMoeColumnBlock, s.end - c0);
                   LinearColumns(h_e + r0 * width, m, *w.down, c0, c0 + n, t);
                   for (int64_t i = 0; i < m; ++i) {
                     std::copy(t + i * n, t + (i + 1) * n, y_perm + (first + r0 + i) * hidden + c0);
                   }
                 }
               }
             }
           });
}

namespace {

// The weight as float64 [rows, cols], dequantized exactly.
std::vector<double> Dequantize(const Weight& w) {
  const int64_t n = w.rows();
  const int64_t k = w.cols();
  std::vector<float> f(n * k);
  if (w.format() == WeightFormat::kDense) {
    LoadAsFloat(w.dense().data(), w.dense().dtype(), 0, n * k, f.data());
  } else {
    const Nvfp4Parts& q = w.nvfp4();
    Nvfp4DequantizeReference(q.codes.data_as<const uint8_t>(), k / 2,
                             q.block_scales.data_as<const uint8_t>(), k / kNvfp4BlockSize,
                             q.global_scale, n, k, f.data(), k);
  }
  return std::vector<double>(f.begin(), f.end());
}

}  // namespace

void MoeExpertsSwiGluReference(const float* x_perm, int64_t hidden, const int32_t* expert_offsets,
                               std::span<const MoeExpertWeights> experts, double* y_perm) {
  for (size_t e = 0; e < experts.size(); ++e) {
    if (expert_offsets[e + 1] == expert_offsets[e]) continue;
    const int64_t width = experts[e].gate->rows();
    const std::vector<double> gate = Dequantize(*experts[e].gate);
    const std::vector<double> up = Dequantize(*experts[e].up);
    const std::vector<double> down = Dequantize(*experts[e].down);
    std::vector<double> act(width);
    for (int64_t r = expert_offsets[e]; r < expert_offsets[e + 1]; ++r) {
      const float* x = x_perm + r * hidden;
      for (int64_t i = 0; i < width; ++i) {
        double g = 0, u = 0;
        for (int64_t c = 0; c < hidden; ++c) {
          g += gate[i * hidden + c] * x[c];
          u += up[i * hidden + c] * x[c];
        }
        act[i] = g / (1.0 + std::exp(-g)) * u;
      }
      for (int64_t o = 0; o < hidden; ++o) {
        double y = 0;
        for (int64_t i = 0; i < width; ++i) y += down[o * width + i] * act[i];
        y_perm[r * hidden + o] = y;
      }
    }
  }
}

}  // namespace sparkstack::kernels
