#include "kernels/cpu/moe_permute.h"

#include <algorithm>
#include <cstring>

#include "kernels/cpu/parallel_columns.h"

namespace sparkstack::kernels {

int64_t MoePermutePlan(const int32_t* ids, int64_t tokens, int64_t top_k, int64_t first_expert,
                       int64_t local_experts, int32_t* expert_offsets, int32_t* permuted_token,
                       int32_t* slot_row) {
  const int64_t slots = tokens * top_k;
  std::fill(expert_offsets, expert_offsets + local_experts + 1, 0);
  for (int64_t s = 0; s < slots; ++s) {
    const int64_t e = ids[s] - first_expert;
    if (e >= 0 && e < local_experts) ++expert_offsets[e + 1];
  }
  for (int64_t e = 0; e < local_experts; ++e) expert_offsets[e + 1] += expert_offsets[e];
  // expert_offsets[e] doubles as expert e's insertion cursor, then is restored by one shift.
  for (int64_t s = 0; s < slots; ++s) {
    const int64_t e = ids[s] - first_expert;
    if (e < 0 || e >= local_experts) {
      slot_row[s] = -1;
      continue;
    }
    const int32_t row = expert_offsets[e]++;
    permuted_token[row] = static_cast<int32_t>(s / top_k);
    slot_row[s] = row;
  }
  for (int64_t e = local_experts; e > 0; --e) expert_offsets[e] = expert_offsets[e - 1];
  expert_offsets[0] = 0;
  return expert_offsets[local_experts];
}

void MoeGatherRowsF32(const float* x, int64_t hidden, const int32_t* permuted_token, int64_t rows,
                      float* x_perm, int threads) {
  ForEachColumnRange(rows, rows * hidden, threads, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      std::memcpy(x_perm + r * hidden, x + int64_t{permuted_token[r]} * hidden,
                  hidden * sizeof(float));
    }
  });
}

void MoeCombineF32(const float* y_perm, int64_t hidden, const int32_t* slot_row,
                   const float* weights, int64_t tokens, int64_t top_k, float* out, int threads) {
  ForEachColumnRange(tokens, tokens * top_k * hidden, threads, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      float* o = out + t * hidden;
      std::fill(o, o + hidden, 0.0f);
      for (int64_t j = 0; j < top_k; ++j) {
        const int32_t row = slot_row[t * top_k + j];
        if (row < 0) continue;
        const float w = weights[t * top_k + j];
        const float* y = y_perm + int64_t{row} * hidden;
        for (int64_t i = 0; i < hidden; ++i) o[i] += w * y[i];
      }
    }
  });
}

int64_t MoePermutePlanReference(const int32_t* ids, int64_t tokens, int64_t top_k,
                                int64_t first_expert, int64_t local_experts,
                                int32_t* expert_offsets, int32_t* permuted_token,
                                int32_t* slot_row) {
  const int64_t slots = tokens * top_k;
  for (int64_t s = 0; s < slots; ++s) slot_row[s] = -1;
  int32_t row = 0;
  for (int64_t e = 0; e < local_experts; ++e) {
    expert_offsets[e] = row;
    for (int64_t s = 0; s < slots; ++s) {
      if (ids[s] != first_expert + e) continue;
      permuted_token[row] = static_cast<int32_t>(s / top_k);
      slot_row[s] = row++;
    }
  }
  expert_offsets[local_experts] = row;
  return row;
}

void MoeCombineReference(const float* y_perm, int64_t hidden, const int32_t* slot_row,
                         const float* weights, int64_t tokens, int64_t top_k, double* out) {
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t i = 0; i < hidden; ++i) {
      double sum = 0.0;
      for (int64_t j = 0; j < top_k; ++j) {
        const int32_t row = slot_row[t * top_k + j];
        if (row >= 0) sum += double{weights[t * top_k + j]} * y_perm[int64_t{row} * hidden + i];
      }
      out[t * hidden + i] = sum;
    }
  }
}

}  // namespace sparkstack::kernels
