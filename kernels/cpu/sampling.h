// The sampling op on the CPU (runtime/backend/sampling.h states what it computes): f32 logits
// rows in, one token (and logprobs) per row out.
//
// Work per row of vocab V: one pass checks the logits and finds their maximum; penalties and bans
// touch only the ids of the row's history (on a copy of the row); greedy is one more pass. For
// sampling, min-p and top-k become a threshold on the logits and only the ids above it are
// weighed (the k-th largest logit comes from a partial selection among the ids near the maximum,
// widening until k are found); without them one pass computes every weight (a vectorizable
// float exp, summed in float64), and top-p sorts only the heaviest ids, widening until they hold
// the top_p mass. Logprobs cost one more exp pass over the raw logits and a partial selection.
#ifndef SPARKSTACK_KERNELS_CPU_SAMPLING_H_
#define SPARKSTACK_KERNELS_CPU_SAMPLING_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "runtime/backend/sampling.h"

namespace sparkstack::kernels {

// The distribution a row was drawn from, for tests: kept ids in ascending order and their
// probabilities. Greedy rows report their token with probability 1.
struct SamplingTrace {
  std::vector<int32_t> ids;
  std::vector<double> probs;
};

// Holds the scratch buffers of the op (a few arrays of the vocabulary's size), so that after the
// first call with a given vocabulary no call allocates. Not thread-safe: one per thread.
class CpuSampler {
 public:
  // Samples rows.size() rows of `vocab` f32 logits, row r at logits + r * row_stride, with
  // u = SamplingUniform(rows[r].params.seed, rows[r].output_index) each; ids >= vocab_limit are
  // never chosen nor reported. out.size() must equal rows.size(). InvalidArgument naming the row
  // for bad sizes, parameters or history ids (ValidateSamplingRow), NaN or +inf logits, or a row
  // with nothing to choose; `out` is then partially written.
  absl::Status Sample(const float* logits, int64_t vocab, int64_t row_stride, int64_t vocab_limit,
                      std::span<const SamplingRow> rows, std::span<SampledToken> out);

  // One row with the uniform given (tests; and the check of other backends against this one).
  // `trace`, when not null, receives the distribution drawn from (this allocates).
  absl::Status SampleRow(std::span<const float> logits, int64_t vocab_limit, const SamplingRow& row,
                         double uniform, SampledToken& out, SamplingTrace* trace = nullptr);

 private:
  void Reserve(int64_t vocab);
  // The op on one row of n = vocab_limit allowed ids whose sizes and history were validated.
  absl::Status SampleValidRow(const float* logits, int64_t n, const SamplingRow& row,
                              double uniform, SampledToken& out, SamplingTrace* trace);
  // Steps 4-6 of sampling.h on the penalized row l (max: its largest value, finite).
  int32_t Draw(const float* l, int64_t n, float max, const SamplingParams& params, double uniform,
               SamplingTrace* trace);
  int32_t DrawFromKept(const int32_t* kept, int64_t num_kept, const float* w, double uniform,
                       SamplingTrace* trace);
  int32_t DrawFromAll(const float* w, int64_t n, double total, double uniform,
                      SamplingTrace* trace);
  // Applies penalties and bans to a copy of the row; returns it (or `logits` when there are none).
  const float* Penalize(const float* logits, int64_t n, const SamplingRow& row);
  void ComputeLogprobs(const float* logits, int64_t n, float max_logit, int32_t num_top,
                       SampledToken& out);

  std::vector<float> penalized_;    // [V] the row after penalties and bans
  std::vector<float> weights_;      // [V] unnormalized probabilities
  std::vector<uint32_t> history_;   // [V] per id: output count | kSeen; all zero between calls
  std::vector<uint64_t> keys_;      // [V] candidate sort keys (logit descending, id ascending)
  std::vector<int32_t> kept_;       // [V] ids kept for the draw
  std::vector<double> block_sums_;  // [V / kBlock] weights summed per block
};

}  // namespace sparkstack::kernels

#endif  // SPARKSTACK_KERNELS_CPU_SAMPLING_H_
