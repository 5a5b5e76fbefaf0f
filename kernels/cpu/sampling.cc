#include "kernels/cpu/sampling.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "runtime/core/philox.h"

namespace sparkstack::kernels {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kMaxFloat = std::numeric_limits<float>::max();
constexpr uint32_t kSeen = 0x80000000u;  // history_: id is in the prompt or the output
constexpr int64_t kBlock = 256;          // weights are summed per block (the draw walks blocks)

// e^x for x <= 0 in float, branch-free so that loops over it vectorize: x = n ln2 + r with
// |r| <= ln2 / 2, e^r by its Taylor series to degree 7 (truncation below 1e-8 relative), 2^n
// written into the exponent bits. Below -87 (where 2^n would leave the normal range) the result
// is 0: such weights are < 1.7e-38 of the largest one. -inf gives 0.
inline float ExpNonPositive(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693145751953125f;  // ln 2 split so that n * kLn2Hi is exact
  constexpr float kLn2Lo = 1.42860682030941723e-6f;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float xc = x < -87.0f ? -87.0f : x;
  const float n = (xc * kLog2e + kRound) - kRound;
  const float r = (xc - n * kLn2Hi) - n * kLn2Lo;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const float scale = std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
  return x < -87.0f ? 0.0f : p * scale;
}

// Candidate sort keys: ascending key order is logit descending, then id ascending.
inline uint64_t SortKey(float logit, int32_t id) {
  const uint32_t bits = std::bit_cast<uint32_t>(logit + 0.0f);  // -0 becomes +0
  const uint32_t ordered = (bits & 0x80000000u) != 0 ? ~bits : (bits | 0x80000000u);
  return (static_cast<uint64_t>(~ordered) << 32) | static_cast<uint32_t>(id);
}
inline int32_t KeyId(uint64_t key) { return static_cast<int32_t>(static_cast<uint32_t>(key)); }
inline float KeyLogit(uint64_t key) {
  const uint32_t ordered = ~static_cast<uint32_t>(key >> 32);
  return std::bit_cast<float>((ordered & 0x80000000u) != 0 ? (ordered & 0x7fffffffu) : ~ordered);
}

// The largest of v[0, n), and whether any is NaN or +inf. The maximum is taken over the floats'
// bits mapped to integers of the same order (flipping the magnitude of negative ones), which
// vectorizes where a float max reduction does not without -ffinite-math-only.
struct ScanResult {
  float max;
  bool bad;
};
ScanResult Scan(const float* v, int64_t n) {
  auto ordered = [](int32_t bits) { return bits ^ ((bits >> 31) & 0x7fffffff); };
  int32_t max = std::numeric_limits<int32_t>::min();
  int32_t bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t key = ordered(std::bit_cast<int32_t>(v[i]));
    max = key > max ? key : max;
    bad |= v[i] < kInf ? 0 : 1;  // NaN and +inf
  }
  return {std::bit_cast<float>(ordered(max)), bad != 0};
}

// The first i with v[i] == value (which must occur): whole blocks are tested with a vectorizable
// reduction first, so only the block that holds it is searched one by one.
int64_t FindFirst(const float* v, int64_t n, float value) {
  constexpr int64_t kStep = 64;
  int64_t begin = 0;
  for (; begin + kStep <= n; begin += kStep) {
    int32_t any = 0;
    for (int64_t i = begin; i < begin + kStep; ++i) any |= v[i] == value ? 1 : 0;
    if (any != 0) break;
  }
  for (int64_t i = begin; i < n; ++i) {
    if (v[i] == value) return i;
  }
  return n;
}

absl::Status BadLogitError(const float* v, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (!(v[i] < kInf))
      return absl::InvalidArgumentError(absl::StrCat("logit of id ", i, " is ", v[i]));
  }
  return absl::InternalError("no bad logit found");
}

absl::Status NothingToChooseError() {
  return absl::InvalidArgumentError("no token can be chosen: every allowed logit is -inf");
}

// e^((v_i - max) / t) for i < n, stored in w when kStore, summed in float64 per block of kBlock
// (block_sums[b], when kStore) and in total (the sum of the block sums, in order).
template <bool kStore>
double SumWeights(const float* v, int64_t n, float max, float t, float* w, double* block_sums) {
  constexpr int kSumLanes = 8;
  float local[kBlock];
  const float inverse_t = 1.0f / t;  // a multiply is several times cheaper than a divide
  double total = 0.0;
  for (int64_t begin = 0; begin < n; begin += kBlock) {
    const int64_t length = std::min(kBlock, n - begin);
    float* out = kStore ? w + begin : local;
    const float* in = v + begin;
    if (inverse_t <= kMaxFloat) {
      for (int64_t i = 0; i < length; ++i) out[i] = ExpNonPositive((in[i] - max) * inverse_t);
    } else {  // t below 1 / FLT_MAX: only a division keeps (l - max) / t exact
      for (int64_t i = 0; i < length; ++i) out[i] = ExpNonPositive((in[i] - max) / t);
    }
    double lanes[kSumLanes] = {};
    int64_t i = 0;
    for (; i + kSumLanes <= length; i += kSumLanes) {
      for (int j = 0; j < kSumLanes; ++j) lanes[j] += out[i + j];
    }
    for (; i < length; ++i) lanes[0] += out[i];
    double block = 0.0;
    for (double lane : lanes) block += lane;
    if constexpr (kStore) block_sums[begin / kBlock] = block;
    total += block;
  }
  return total;
}

// Appends the keys of ids i < n with v[i] >= threshold, in id order; returns how many.
int64_t CollectKeys(const float* v, int64_t n, float threshold, uint64_t* keys) {
  int64_t count = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (v[i] >= threshold) keys[count++] = SortKey(v[i], static_cast<int32_t>(i));
  }
  return count;
}

// Collects into keys (any order) at least `k` ids: all those within a window below `max`, the
// window widening until it holds k (the whole row at worst). Returns how many.
int64_t CollectTop(const float* v, int64_t n, int64_t k, float max, uint64_t* keys) {
  for (float window : {4.0f, 16.0f, 64.0f}) {
    const int64_t count = CollectKeys(v, n, max - window, keys);
    if (count >= k) return count;
  }
  return CollectKeys(v, n, -kInf, keys);
}

// Orders keys[0, count) by key far enough to find the top-p nucleus: the shortest prefix such
// that each kept key's preceding weight is < limit. Returns the prefix length (>= 1).
int64_t KeepNucleus(uint64_t* keys, int64_t count, const float* w, double limit) {
  double before = 0.0;
  int64_t sorted = 0;
  for (int64_t chunk = 64;; chunk *= 4) {
    const int64_t end = std::min(count, sorted + chunk);
    if (end < count) std::nth_element(keys + sorted, keys + end, keys + count);
    std::sort(keys + sorted, keys + end);
    for (int64_t j = sorted; j < end; ++j) {
      if (!(before < limit)) return j;
      before += w[KeyId(keys[j])];
    }
    if (end == count) return count;
    sorted = end;
  }
}

}  // namespace

void CpuSampler::Reserve(int64_t vocab) {
  if (static_cast<int64_t>(penalized_.size()) >= vocab) return;
  penalized_.resize(vocab);
  weights_.resize(vocab);
  history_.assign(vocab, 0u);
  keys_.resize(vocab);
  kept_.resize(vocab);
  block_sums_.resize((vocab + kBlock - 1) / kBlock);
}

const float* CpuSampler::Penalize(const float* logits, int64_t n, const SamplingRow& row) {
  const SamplingParams& p = row.params;
  const bool repetition = p.repetition_penalty != 1.0f;
  const bool counted = p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f;
  if (!repetition && !counted && row.banned_tokens.empty()) return logits;
  float* l = penalized_.data();
  std::copy(logits, logits + n, l);
  // history_ is all zero between calls: mark, apply each id once (on its first occurrence) and
  // clear it again, so the cost is the history's length, not the vocabulary's.
  if (repetition) {
    for (int32_t id : row.prompt_tokens) history_[id] |= kSeen;
    for (int32_t id : row.output_tokens) history_[id] |= kSeen;
  }
  if (repetition || counted) {
    for (int32_t id : row.output_tokens) ++history_[id];
  }
  auto apply = [&](int32_t id) {
    const uint32_t h = history_[id];
    if (h == 0) return;
    history_[id] = 0;
    if (id >= n) return;
    float v = l[id];
    if ((h & kSeen) != 0) v = v > 0.0f ? v / p.repetition_penalty : v * p.repetition_penalty;
    const uint32_t count = h & ~kSeen;
    if (count > 0) {
      const float frequency = p.frequency_penalty * static_cast<float>(count);
      v = v - frequency;
      v = v - p.presence_penalty;
    }
    l[id] = std::min(v, kMaxFloat);
  };
  if (repetition) {
    for (int32_t id : row.prompt_tokens) apply(id);
  }
  for (int32_t id : row.output_tokens) apply(id);
  for (int32_t id : row.banned_tokens) {
    if (id < n) l[id] = -kInf;
  }
  return l;
}

void CpuSampler::ComputeLogprobs(const float* x, int64_t n, float max_logit, int32_t num_top,
                                 SampledToken& out) {
  const double log_z =
      max_logit + std::log(SumWeights<false>(x, n, max_logit, 1.0f, nullptr, nullptr));
  out.logprob = static_cast<float>(x[out.token] - log_z);
  out.num_top = static_cast<int32_t>(std::min<int64_t>(num_top, n));
  if (out.num_top == 0) return;
  uint64_t* keys = keys_.data();
  const int64_t count = CollectTop(x, n, out.num_top, max_logit, keys);
  std::partial_sort(keys, keys + out.num_top, keys + count);
  for (int32_t j = 0; j < out.num_top; ++j) {
    const int32_t id = KeyId(keys[j]);
    out.top[j] = {id, static_cast<float>(x[id] - log_z)};
  }
}

absl::Status CpuSampler::SampleRow(std::span<const float> logits, int64_t vocab_limit,
                                   const SamplingRow& row, double uniform, SampledToken& out,
                                   SamplingTrace* trace) {
  const int64_t vocab = static_cast<int64_t>(logits.size());
  if (vocab_limit <= 0 || vocab_limit > vocab) {
    return absl::InvalidArgumentError(
        absl::StrCat("vocab_limit ", vocab_limit, " is not in [1, ", vocab, "]"));
  }
  if (absl::Status status = ValidateSamplingRow(row, vocab); !status.ok()) return status;
  Reserve(vocab);
  return SampleValidRow(logits.data(), vocab_limit, row, uniform, out, trace);
}

absl::Status CpuSampler::Sample(const float* logits, int64_t vocab, int64_t row_stride,
                                int64_t vocab_limit, std::span<const SamplingRow> rows,
                                std::span<SampledToken> out) {
  if (rows.size() != out.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Sample: ", rows.size(), " rows but ", out.size(), " outputs"));
  }
  if (vocab_limit <= 0 || vocab_limit > vocab || row_stride < vocab) {
    return absl::InvalidArgumentError(
        absl::StrCat("Sample: vocab_limit ", vocab_limit, " must be in [1, vocab ", vocab,
                     "] and the row stride ", row_stride, " at least vocab"));
  }
  Reserve(vocab);
  for (size_t r = 0; r < rows.size(); ++r) {
    absl::Status status = ValidateSamplingRow(rows[r], vocab);
    if (status.ok()) {
      const double u = SamplingUniform(rows[r].params.seed, rows[r].output_index);
      status = SampleValidRow(logits + static_cast<int64_t>(r) * row_stride, vocab_limit, rows[r],
                              u, out[r], nullptr);
    }
    if (!status.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("Sample: row ", r, ": ", status.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status CpuSampler::SampleValidRow(const float* x, int64_t n, const SamplingRow& row,
                                        double uniform, SampledToken& out, SamplingTrace* trace) {
  const SamplingParams& p = row.params;
  const ScanResult raw = Scan(x, n);
  if (raw.bad) return BadLogitError(x, n);
  const float* l = Penalize(x, n, row);
  const float max = l == x ? raw.max : Scan(l, n).max;
  if (max == -kInf) return NothingToChooseError();
  out = SampledToken{};
  if (trace != nullptr) *trace = {};

  if (p.temperature == 0.0f) {
    out.token = static_cast<int32_t>(FindFirst(l, n, max));
    if (trace != nullptr) *trace = {{out.token}, {1.0}};
  } else {
    out.token = Draw(l, n, max, p, uniform, trace);
  }
  if (p.logprobs >= 0) ComputeLogprobs(x, n, raw.max, p.logprobs, out);
  return absl::OkStatus();
}

int32_t CpuSampler::Draw(const float* l, int64_t n, float max, const SamplingParams& p,
                         double uniform, SamplingTrace* trace) {
  const float t = p.temperature;
  float* w = weights_.data();
  uint64_t* keys = keys_.data();
  int32_t* kept = kept_.data();
  int64_t num_kept = 0;
  bool kept_in_id_order = true;

  // min-p and top-k are thresholds on l: w_i >= min_p is l_i >= max + t * log(min_p).
  float threshold = -kInf;
  if (p.min_p > 0.0f) {
    threshold = static_cast<float>(max + static_cast<double>(t) * std::log(p.min_p));
  }
  int64_t count = -1;  // candidates in keys, when a threshold selected them
  if (p.top_k > 0 && p.top_k < n) {
    count = CollectTop(l, n, p.top_k, max, keys);
    std::nth_element(keys, keys + (p.top_k - 1), keys + count);
    threshold = std::max(threshold, KeyLogit(keys[p.top_k - 1]));
    // Keep those at or above the threshold (a superset of them was collected).
    count = std::remove_if(keys, keys + count,
                           [threshold](uint64_t key) { return KeyLogit(key) < threshold; }) -
            keys;
    kept_in_id_order = false;
  } else if (threshold > -kInf) {
    count = CollectKeys(l, n, threshold, keys);
  }

  if (count >= 0) {
    double mass = 0.0;
    for (int64_t j = 0; j < count; ++j) {
      const int32_t id = KeyId(keys[j]);
      w[id] = ExpNonPositive((l[id] - max) / t);
      mass += w[id];
    }
    if (p.top_p < 1.0f) {
      count = KeepNucleus(keys, count, w, p.top_p * mass);
      kept_in_id_order = false;
    }
    for (int64_t j = 0; j < count; ++j) kept[j] = KeyId(keys[j]);
    num_kept = count;
  } else {
    const double mass = SumWeights<true>(l, n, max, t, w, block_sums_.data());
    if (p.top_p >= 1.0f) return DrawFromAll(w, n, mass, uniform, trace);
    // The ids with the largest logits hold the nucleus if their weight reaches the top-p limit
    // (every other id comes after them in the order). Widen the window (in units of t: weights
    // down to 1e-3, 1e-6, 1e-12 of the largest, then all) until they do.
    const double limit = p.top_p * mass;
    for (float window : {6.9f, 13.8f, 27.6f, kInf}) {
      const float cutoff = window == kInf ? -kInf : max - t * window;
      count = 0;
      double heavy = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        if (l[i] >= cutoff) {
          keys[count++] = SortKey(l[i], static_cast<int32_t>(i));
          heavy += w[i];
        }
      }
      if (heavy >= limit || window == kInf) break;
    }
    num_kept = KeepNucleus(keys, count, w, limit);
    for (int64_t j = 0; j < num_kept; ++j) kept[j] = KeyId(keys[j]);
    kept_in_id_order = false;
  }
  if (!kept_in_id_order) std::sort(kept, kept + num_kept);
  return DrawFromKept(kept, num_kept, w, uniform, trace);
}

int32_t CpuSampler::DrawFromKept(const int32_t* kept, int64_t num_kept, const float* w,
                                 double uniform, SamplingTrace* trace) {
  double total = 0.0;
  for (int64_t j = 0; j < num_kept; ++j) total += w[kept[j]];
  if (trace != nullptr) {
    for (int64_t j = 0; j < num_kept; ++j) {
      if (w[kept[j]] == 0.0f) continue;
      trace->ids.push_back(kept[j]);
      trace->probs.push_back(w[kept[j]] / total);
    }
  }
  const double target = uniform * total;
  double cumulative = 0.0;
  int32_t last = -1;
  for (int64_t j = 0; j < num_kept; ++j) {
    if (w[kept[j]] == 0.0f) continue;
    cumulative += w[kept[j]];
    if (target < cumulative) return kept[j];
    last = kept[j];
  }
  return last;  // u * total rounded up to total
}

int32_t CpuSampler::DrawFromAll(const float* w, int64_t n, double total, double uniform,
                                SamplingTrace* trace) {
  if (trace != nullptr) {
    for (int64_t i = 0; i < n; ++i) {
      if (w[i] == 0.0f) continue;
      trace->ids.push_back(static_cast<int32_t>(i));
      trace->probs.push_back(w[i] / total);
    }
  }
  // Walk the block sums (the same ones, added in the same order, that make `total`), then the
  // block where the target falls.
  const double target = uniform * total;
  double cumulative = 0.0;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  int64_t b = 0;
  for (; b < blocks; ++b) {
    if (target < cumulative + block_sums_[b]) break;
    cumulative += block_sums_[b];
  }
  if (b == blocks) {  // u * total rounded up to total: the last block with weight
    for (b = blocks - 1; block_sums_[b] == 0.0; --b) {
    }
  }
  int32_t last = -1;
  for (int64_t i = b * kBlock; i < std::min(n, (b + 1) * kBlock); ++i) {
    if (w[i] == 0.0f) continue;
    cumulative += w[i];
    if (target < cumulative) return static_cast<int32_t>(i);
    last = static_cast<int32_t>(i);
  }
  return last;  // rounding inside the block: its last id that can be chosen
}

}  // namespace sparkstack::kernels
