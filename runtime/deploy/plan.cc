#include "runtime/deploy/plan.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/model/sharding.h"

namespace sparkstack::deploy {
namespace {

constexpr int64_t kBlockTokens = 16;  // KV block size (kv_cache.h)
constexpr int kMonteCarloDraws = 4096;
constexpr uint64_t kMonteCarloSeed = 0x5eed'5a7c'0000'0001ULL;

uint64_t CeilDiv(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

// Bytes and multiply-accumulates of one layer (or of the embedding / head), by sharding role.
struct Part {
  uint64_t sharded = 0, kv = 0, replicated = 0;
  uint64_t sharded_mac = 0, kv_mac = 0, replicated_mac = 0;  // per token
  uint64_t sharded_mac_fp4 = 0, kv_mac_fp4 = 0, replicated_mac_fp4 = 0;
  std::map<int64_t, uint64_t> expert_bytes;     // expert id -> bytes
  uint64_t expert_mac = 0, expert_mac_fp4 = 0;  // all experts together
  int64_t experts_seen = 0;
};

void Add(Part& p, const TensorCensus& t) {
  const uint64_t b = t.resident_bytes;
  const uint64_t mac = t.matmul_elements;
  switch (t.role) {
    case ShardRole::kSharded:
      p.sharded += b;
      p.sharded_mac += mac;
      if (t.fp4) p.sharded_mac_fp4 += mac;
      break;
    case ShardRole::kKvSharded:
      p.kv += b;
      p.kv_mac += mac;
      if (t.fp4) p.kv_mac_fp4 += mac;
      break;
    case ShardRole::kReplicated:
      p.replicated += b;
      p.replicated_mac += mac;
      if (t.fp4) p.replicated_mac_fp4 += mac;
      break;
    case ShardRole::kExpert:
      p.expert_bytes[t.expert] += b;
      p.expert_mac += mac;
      if (t.fp4) p.expert_mac_fp4 += mac;
      break;
  }
}

struct Model {
  const ModelConfig* config = nullptr;
  std::vector<Part> layers;
  Part embedding, head, other;
  int64_t num_experts = 0;  // routed experts of the config (0: dense)
  int64_t top_k = 0;
};

Model Summarize(const CheckpointCensus& census) {
  Model m;
  m.config = &census.config;
  m.layers.resize(census.config.num_layers);
  m.num_experts = census.config.moe.num_experts;
  m.top_k = census.config.moe.num_experts_per_tok;
  for (const TensorCensus& t : census.tensors) {
    switch (t.placement) {
      case Placement::kLayer:
        Add(m.layers[t.layer], t);
        break;
      case Placement::kEmbedding:
        Add(m.embedding, t);
        break;
      case Placement::kHead:
        Add(m.head, t);
        break;
      case Placement::kOther:
        Add(m.other, t);
        break;
      case Placement::kSkipped:
        break;
    }
  }
  return m;
}

uint64_t PartTotal(const Part& p) {
  uint64_t experts = 0;
  for (const auto& [e, b] : p.expert_bytes) experts += b;
  return p.sharded + p.kv + p.replicated + experts;
}

// Contiguous stages whose boundaries fall where the running bytes (embedding first, head last)
// are closest to equal shares; each stage keeps at least one layer.
std::vector<Range> SplitStages(const Model& m, int pp) {
  const int64_t layers = static_cast<int64_t>(m.layers.size());
  std::vector<double> prefix(layers + 1, 0.0);
  prefix[0] = static_cast<double>(PartTotal(m.embedding) + PartTotal(m.other));
  for (int64_t l = 0; l < layers; ++l) {
    prefix[l + 1] = prefix[l] + static_cast<double>(PartTotal(m.layers[l]));
  }
  const double total = prefix[layers] + static_cast<double>(PartTotal(m.head));
  std::vector<Range> stages;
  int64_t begin = 0;
  for (int s = 0; s < pp; ++s) {
    int64_t end = layers;
    if (s < pp - 1) {
      const double target = total * (s + 1) / pp;
      const int64_t lo = begin + 1;
      const int64_t hi = layers - (pp - 1 - s);
      end = lo;
      for (int64_t b = lo; b <= hi; ++b) {
        if (std::abs(prefix[b] - target) < std::abs(prefix[end] - target)) end = b;
      }
    }
    stages.push_back({begin, end});
    begin = end;
  }
  return stages;
}

struct Layout {
  int tp, pp, ep;
};

// Shares of one part held by a rank: sharded / tp, kv / min(tp, kv heads), replicated whole, and
// the experts of group [experts) sliced over tp / ep ranks.
struct RankShare {
  int tp = 1;
  int64_t kv_heads = 1;           // of the model
  int64_t kv_heads_per_rank = 1;  // ceil(kv_heads / min(tp, kv_heads))
  int slices = 1;
  Range experts;
};

// k/v projections: the rank's kv heads out of all of them.
uint64_t KvShare(uint64_t bytes, const RankShare& r) {
  return CeilDiv(bytes * r.kv_heads_per_rank, r.kv_heads);
}

uint64_t ShareBytes(const Part& p, const RankShare& r) {
  uint64_t bytes = CeilDiv(p.sharded, r.tp) + KvShare(p.kv, r) + p.replicated;
  for (const auto& [e, b] : p.expert_bytes) {
    if (e >= r.experts.begin && e < r.experts.end) bytes += CeilDiv(b, r.slices);
  }
  return bytes;
}

// Bytes of the part a rank reads each step besides routed experts (all of its dense share).
uint64_t DenseShareBytes(const Part& p, const RankShare& r) {
  return CeilDiv(p.sharded, r.tp) + KvShare(p.kv, r) + p.replicated;
}

// Mean bytes of one routed expert of this part, sliced for a rank.
double ExpertSliceBytes(const Part& p, const RankShare& r) {
  if (p.expert_bytes.empty()) return 0;
  uint64_t total = 0;
  for (const auto& [e, b] : p.expert_bytes) total += b;
  return static_cast<double>(total) / static_cast<double>(p.expert_bytes.size()) / r.slices;
}

// Multiply-accumulates per token on a rank: dense share plus top_k experts spread over tp ranks.
// fp4 selects the part computed at the FP4 rate.
double ShareMacs(const Part& p, const RankShare& r, int64_t top_k, int64_t num_experts, bool fp4) {
  const double sharded = static_cast<double>(fp4 ? p.sharded_mac_fp4 : p.sharded_mac);
  const double kv = static_cast<double>(fp4 ? p.kv_mac_fp4 : p.kv_mac);
  const double replicated = static_cast<double>(fp4 ? p.replicated_mac_fp4 : p.replicated_mac);
  double macs = sharded / r.tp + kv * r.kv_heads_per_rank / r.kv_heads + replicated;
  if (num_experts > 0 && !p.expert_bytes.empty()) {
    const double per_expert =
        static_cast<double>(fp4 ? p.expert_mac_fp4 : p.expert_mac) / num_experts;
    macs += static_cast<double>(top_k) * per_expert / r.tp;
  }
  return macs;
}

uint64_t KvBytesPerTokenPerLayer(const ModelConfig& c, int tp, DType kv_dtype) {
  const uint64_t elem = DTypeByteSize(kv_dtype, 1);
  if (c.mla.kv_lora_rank > 0) {
    // MLA caches the latent c_kv and the one roped key, shared by all heads: every tp rank holds
    // all of it.
    return static_cast<uint64_t>(c.mla.kv_lora_rank + c.mla.qk_rope_head_dim) * elem;
  }
  const uint64_t kv_heads = CeilDiv(c.num_kv_heads, std::min<int64_t>(tp, c.num_kv_heads));
  return 2 * kv_heads * static_cast<uint64_t>(c.head_dim) * elem;
}

uint64_t F32(uint64_t elements) { return 4 * elements; }

// The step's activations on one rank (estimate after runtime/model's WorkspaceBytes): the hidden
// state in and out, two [T, hidden] buffers through the step, and the largest block's scratch.
uint64_t WorkspaceBytes(const ModelConfig& c, const Layout& l, bool last_stage, int64_t tokens,
                        int64_t rows) {
  const uint64_t t = tokens;
  const uint64_t h = c.hidden_size;
  const uint64_t heads = CeilDiv(c.num_heads, l.tp);
  const uint64_t kv_heads = c.mla.kv_lora_rank > 0
                                ? heads
                                : CeilDiv(c.num_kv_heads, std::min<int64_t>(l.tp, c.num_kv_heads));
  const uint64_t d = c.head_dim;
  const uint64_t attention = 2 * F32(t * heads * d) + 2 * F32(t * kv_heads * d) +
                             (c.mla.kv_lora_rank > 0 ? F32(t * (c.mla.kv_lora_rank + d)) : 0);
  uint64_t ffn = 2 * F32(t * CeilDiv(c.intermediate_size, l.tp));
  if (c.moe.num_experts > 0) {
    const uint64_t k = c.moe.num_experts_per_tok;
    const uint64_t width = CeilDiv(c.moe.moe_intermediate_size, l.tp / l.ep);
    const uint64_t shared = CeilDiv(c.moe.num_shared_experts * c.moe.moe_intermediate_size, l.tp);
    const uint64_t moe =
        F32(t * c.moe.num_experts) + F32(t * k * (2 * h + 2 * width)) + 2 * F32(t * shared);
    ffn = std::max(ffn, moe);
  }
  uint64_t head = 0;
  if (last_stage) {
    const uint64_t r = rows;
    const uint64_t chunk = CeilDiv(c.vocab_size, l.tp);
    head = F32(r * h) + (l.tp > 1 ? 2 * F32(r * chunk) + F32(l.tp * r * chunk) : 0) +
           F32(r * c.vocab_size);  // the logits themselves
  }
  return F32(t * h) + 2 * F32(t * h) + std::max({attention, ffn, head});
}

// Per-rank time of one stage for a step of `batch` sequences (decode) at context `context`.
struct StageInputs {
  const Model* model;
  Layout layout;
  Range layers;
  bool first, last;
};

class ExpertLoadCache {
 public:
  double Busiest(int64_t experts, int64_t k, int64_t groups, int64_t tokens) {
    auto key = std::make_tuple(experts, k, groups, tokens);
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second;
    const double v = ExpectedBusiestGroupExperts(experts, k, groups, tokens);
    cache_.emplace(key, v);
    return v;
  }

 private:
  std::map<std::tuple<int64_t, int64_t, int64_t, int64_t>, double> cache_;
};

RankShare ShareOf(const ModelConfig& c, const Layout& l, int tp_rank) {
  RankShare r;
  r.tp = l.tp;
  r.kv_heads = std::max<int64_t>(c.num_kv_heads, 1);
  r.kv_heads_per_rank = CeilDiv(r.kv_heads, std::min<int64_t>(l.tp, r.kv_heads));
  r.slices = l.tp / l.ep;
  const int group = tp_rank / r.slices;
  if (c.moe.num_experts > 0) r.experts = BalancedSplit(c.moe.num_experts, l.ep, group);
  return r;
}

// Seconds of one decode step of `batch` sequences on the slowest rank of a stage (bandwidth and
// collectives; the host overhead is added per step by the caller).
double DecodeStageSeconds(const StageInputs& s, const PlanOptions& o, int64_t batch,
                          ExpertLoadCache& load) {
  const Model& m = *s.model;
  const ModelConfig& c = *m.config;
  const PerfConstants& p = o.perf;
  const RankShare r = ShareOf(c, s.layout, 0);
  double bytes = 0;
  for (int64_t l = s.layers.begin; l < s.layers.end; ++l) {
    const Part& part = m.layers[l];
    bytes += static_cast<double>(DenseShareBytes(part, r));
    if (!part.expert_bytes.empty()) {
      const double busiest = load.Busiest(m.num_experts, m.top_k, s.layout.ep, batch);
      bytes += busiest * ExpertSliceBytes(part, r);
    }
  }
  if (s.first) {
    // The embedding: one row per sequence (of the rank's vocabulary slice at most).
    const double table = static_cast<double>(ShareBytes(m.embedding, r));
    bytes += std::min(table, table * s.layout.tp / std::max<int64_t>(c.vocab_size, 1) * batch);
    bytes += static_cast<double>(ShareBytes(m.other, r));
  }
  if (s.last) bytes += static_cast<double>(ShareBytes(m.head, r));
  const double kv_token = static_cast<double>(KvBytesPerTokenPerLayer(c, s.layout.tp, o.kv_dtype)) *
                          static_cast<double>(s.layers.size());
  bytes += kv_token * static_cast<double>(batch) * static_cast<double>(o.perf_context);

  double seconds = bytes / p.read_bandwidth;
  if (s.layout.tp > 1) {
    const double hidden = 4.0 * static_cast<double>(batch * c.hidden_size);
    const int64_t collectives = 2 * s.layers.size() + (s.first ? 1 : 0);
    seconds += static_cast<double>(collectives) * AllReduceSeconds(p, hidden, s.layout.tp);
    if (s.last) {
      const double logits = 4.0 * batch * CeilDiv(c.vocab_size, s.layout.tp);
      seconds += AllReduceSeconds(p, logits, s.layout.tp);
    }
  }
  return seconds;
}

// Seconds of one prefill chunk of `tokens` tokens (one prompt) on the slowest rank of a stage.
double PrefillStageSeconds(const StageInputs& s, const PlanOptions& o, int64_t tokens) {
  const Model& m = *s.model;
  const ModelConfig& c = *m.config;
  const PerfConstants& p = o.perf;
  const RankShare r = ShareOf(c, s.layout, 0);
  double fp4_macs = 0, other_macs = 0, bytes = 0;
  const double touched =
      m.num_experts > 0 ? 1.0 - std::pow(1.0 - static_cast<double>(m.top_k) / m.num_experts, tokens)
                        : 0.0;
  for (int64_t l = s.layers.begin; l < s.layers.end; ++l) {
    const Part& part = m.layers[l];
    const double all = ShareMacs(part, r, m.top_k, m.num_experts, false);
    const double fp4 = ShareMacs(part, r, m.top_k, m.num_experts, true);
    fp4_macs += fp4;
    other_macs += all - fp4;
    bytes += static_cast<double>(DenseShareBytes(part, r));
    bytes += touched * static_cast<double>(r.experts.size()) * ExpertSliceBytes(part, r);
  }
  // Attention: q.k and p.v over an average context of half the prompt, per local head.
  const double heads = static_cast<double>(CeilDiv(c.num_heads, s.layout.tp));
  const double v_dim = c.mla.kv_lora_rank > 0 ? c.mla.v_head_dim : c.head_dim;
  const double attention_macs =
      heads * (c.head_dim + v_dim) * (tokens + 1) / 2.0 * static_cast<double>(s.layers.size());
  if (s.first) bytes += static_cast<double>(ShareBytes(m.other, r));
  if (s.last) bytes += static_cast<double>(ShareBytes(m.head, r));
  const double compute = 2.0 * tokens * (fp4_macs / p.fp4_flops + other_macs / p.bf16_flops) +
                         2.0 * tokens * attention_macs / p.bf16_flops;
  double seconds = std::max(compute, bytes / p.read_bandwidth);
  if (s.layout.tp > 1) {
    const int64_t collectives = 2 * s.layers.size() + (s.first ? 1 : 0);
    seconds += static_cast<double>(collectives) *
               AllReduceSeconds(p, 4.0 * static_cast<double>(tokens * c.hidden_size), s.layout.tp);
  }
  return seconds;
}

absl::Status CheckOptions(const CheckpointCensus& census, const PlanOptions& o) {
  if (o.nodes < 1) {
    return absl::InvalidArgumentError(absl::StrCat("--nodes must be at least 1, got ", o.nodes));
  }
  if (o.tp < 0 || o.pp < 0 || o.ep < 0) {
    return absl::InvalidArgumentError("--tp, --pp and --ep must be positive");
  }
  switch (o.kv_dtype) {
    case DType::kBF16:
    case DType::kF16:
    case DType::kF32:
    case DType::kF8E4M3:
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("--kv-dtype ", std::string(DTypeName(o.kv_dtype)),
                       " is not a KV cache type (bf16, f16, f32, fp8)"));
  }
  if (o.max_context < 0 || o.perf_context < 1 || o.max_num_batched_tokens < 1 ||
      o.max_num_seqs < 1) {
    return absl::InvalidArgumentError(
        "--max-context, --context and the step limits must be positive");
  }
  if (o.ep > 0 && census.config.moe.num_experts == 0 && o.ep != 1) {
    return absl::InvalidArgumentError(absl::StrCat("--ep ", o.ep, ": ", census.model_dir,
                                                   " is a dense model (no routed experts)"));
  }
  return absl::OkStatus();
}

}  // namespace

double AllReduceSeconds(const PerfConstants& p, double bytes, int ranks) {
  if (ranks <= 1) return 0;
  if (bytes <= p.allreduce_small_bytes) return p.allreduce_small_s;
  if (bytes <= p.allreduce_large_bytes) {
    const double f =
        (bytes - p.allreduce_small_bytes) / (p.allreduce_large_bytes - p.allreduce_small_bytes);
    return p.allreduce_small_s + f * (p.allreduce_large_s - p.allreduce_small_s);
  }
  const double ring = 2.0 * (ranks - 1) / ranks;
  return p.allreduce_large_s + ring * (bytes - p.allreduce_large_bytes) / p.bus_bandwidth;
}

double ExpectedBusiestGroupExperts(int64_t num_experts, int64_t top_k, int64_t groups,
                                   int64_t tokens) {
  if (num_experts <= 0 || top_k <= 0 || groups <= 0 || tokens <= 0) return 0;
  std::vector<int64_t> sizes(groups);
  std::vector<int64_t> group_of(num_experts);
  for (int64_t g = 0; g < groups; ++g) {
    const Range r = BalancedSplit(num_experts, groups, g);
    sizes[g] = r.size();
    for (int64_t e = r.begin; e < r.end; ++e) group_of[e] = g;
  }
  if (tokens == 1) {
    // P(max <= x) = [t^k] prod_g sum_{j<=x} C(m_g, j) t^j / C(E, k); E[max] = sum_x P(max > x).
    auto choose = [](int64_t n, int64_t r) {
      if (r < 0 || r > n) return 0.0;
      double v = 1;
      for (int64_t i = 1; i <= r; ++i) v = v * static_cast<double>(n - r + i) / i;
      return v;
    };
    const double all = choose(num_experts, top_k);
    double expected = 0;
    for (int64_t x = 0; x < top_k; ++x) {
      std::vector<double> poly(top_k + 1, 0.0);
      poly[0] = 1;
      for (int64_t g = 0; g < groups; ++g) {
        std::vector<double> next(top_k + 1, 0.0);
        for (int64_t a = 0; a <= top_k; ++a) {
          if (poly[a] == 0) continue;
          for (int64_t j = 0; j <= std::min(x, sizes[g]) && a + j <= top_k; ++j) {
            next[a + j] += poly[a] * choose(sizes[g], j);
          }
        }
        poly = std::move(next);
      }
      expected += 1.0 - poly[top_k] / all;
    }
    return expected;
  }
  std::mt19937_64 rng(kMonteCarloSeed);
  // A permutation of the experts; a partial Fisher-Yates shuffle of its first k slots draws a
  // uniform k-subset whatever order the previous draw left it in.
  std::vector<int64_t> ids(num_experts);
  for (int64_t e = 0; e < num_experts; ++e) ids[e] = e;
  std::vector<uint8_t> touched(num_experts);
  std::vector<int64_t> count(groups);
  double sum = 0;
  for (int draw = 0; draw < kMonteCarloDraws; ++draw) {
    std::fill(touched.begin(), touched.end(), 0);
    for (int64_t t = 0; t < tokens; ++t) {
      for (int64_t i = 0; i < std::min(top_k, num_experts); ++i) {
        // Partial Fisher-Yates: ids[i] becomes a uniform pick among the ones not yet taken.
        const uint64_t span = static_cast<uint64_t>(num_experts - i);
        const int64_t j = i + static_cast<int64_t>(rng() % span);
        std::swap(ids[i], ids[j]);
        touched[ids[i]] = 1;
      }
    }
    std::fill(count.begin(), count.end(), 0);
    for (int64_t e = 0; e < num_experts; ++e) count[group_of[e]] += touched[e];
    sum += static_cast<double>(*std::max_element(count.begin(), count.end()));
  }
  return sum / kMonteCarloDraws;
}

absl::StatusOr<Plan> MakePlan(const CheckpointCensus& census, const PlanOptions& o) {
  if (absl::Status s = CheckOptions(census, o); !s.ok()) return s;
  const ModelConfig& c = census.config;
  const Model m = Summarize(census);

  Plan plan;
  plan.model = census.model_dir;
  plan.architecture = std::string(ArchitectureName(c.architecture));
  plan.total_weight_bytes = census.resident_bytes;
  plan.checkpoint_bytes = census.checkpoint_bytes;
  plan.skipped_bytes = census.skipped_bytes;
  plan.fp8_converted = census.fp8_converted;
  plan.header_only = census.header_only;
  plan.options = o;
  plan.max_context = o.max_context > 0 ? o.max_context : c.max_position_embeddings;
  if (plan.max_context <= 0) plan.max_context = 4096;
  const int64_t context_tokens =
      (plan.max_context + kBlockTokens - 1) / kBlockTokens * kBlockTokens;

  std::vector<Layout> layouts;
  for (int tp = o.nodes; tp >= 1; --tp) {
    if (o.nodes % tp != 0) continue;
    const int pp = o.nodes / tp;
    if ((o.tp && o.tp != tp) || (o.pp && o.pp != pp)) continue;
    if (pp > c.num_layers) continue;
    for (int ep = tp; ep >= 1; --ep) {
      if (tp % ep != 0) continue;
      if (c.moe.num_experts == 0 && ep != 1) continue;
      if (c.moe.num_experts > 0 && ep > c.moe.num_experts) continue;
      if (o.ep && o.ep != ep) continue;
      layouts.push_back({tp, pp, ep});
    }
  }
  if (layouts.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "no layout of ", census.model_dir, " (", c.num_layers, " layers",
        c.moe.num_experts > 0 ? absl::StrCat(", ", c.moe.num_experts, " experts") : "",
        ") on exactly ", o.nodes, " nodes matches", o.tp ? absl::StrCat(" --tp ", o.tp) : "",
        o.pp ? absl::StrCat(" --pp ", o.pp) : "", o.ep ? absl::StrCat(" --ep ", o.ep) : "",
        ": tp x pp must equal --nodes, ep must divide tp, pp cannot exceed the layer count"));
  }

  ExpertLoadCache load;
  for (const Layout& l : layouts) {
    LayoutPlan lp;
    lp.tp = l.tp;
    lp.pp = l.pp;
    lp.ep = l.ep;
    lp.nodes = o.nodes;
    const std::vector<Range> stages = SplitStages(m, l.pp);
    lp.max_sequences = -1;
    for (int rank = 0; rank < o.nodes; ++rank) {
      NodePlan n;
      n.node = rank;
      n.stage = rank / l.tp;
      n.tp_rank = rank % l.tp;
      const Range layers = stages[n.stage];
      n.layer_begin = layers.begin;
      n.layer_end = layers.end;
      const RankShare r = ShareOf(c, l, n.tp_rank);
      n.expert_begin = r.experts.begin;
      n.expert_end = r.experts.end;
      const bool first = n.stage == 0, last = n.stage == l.pp - 1;
      for (int64_t i = layers.begin; i < layers.end; ++i)
        n.weight_bytes += ShareBytes(m.layers[i], r);
      if (first) n.weight_bytes += ShareBytes(m.embedding, r) + ShareBytes(m.other, r);
      if (last) n.weight_bytes += ShareBytes(m.head, r);
      n.kv_bytes_per_token = KvBytesPerTokenPerLayer(c, l.tp, o.kv_dtype) * layers.size();
      n.workspace_bytes = WorkspaceBytes(c, l, last, o.max_num_batched_tokens, o.max_num_seqs);
      n.reserve_bytes = static_cast<uint64_t>(o.perf.runtime_reserve_bytes);
      n.kv_budget_bytes =
          static_cast<int64_t>(o.perf.allocatable_bytes) -
          static_cast<int64_t>(n.weight_bytes + n.workspace_bytes + n.reserve_bytes);
      const int64_t per_sequence = static_cast<int64_t>(n.kv_bytes_per_token) * context_tokens;
      n.max_sequences = n.kv_budget_bytes <= 0 ? 0
                        : per_sequence == 0    ? o.max_num_seqs
                                               : n.kv_budget_bytes / per_sequence;
      if (lp.max_sequences < 0 || n.max_sequences < lp.max_sequences) {
        lp.max_sequences = n.max_sequences;
      }
      if (lp.reason.empty() && n.kv_budget_bytes <= 0) {
        lp.reason = absl::StrCat(
            "node ", rank, " needs ",
            absl::StrFormat("%.1f", (n.weight_bytes + n.workspace_bytes + n.reserve_bytes) / kGiB),
            " GiB before any KV cache; ", absl::StrFormat("%.1f", o.perf.allocatable_bytes / kGiB),
            " GiB are allocatable");
      } else if (lp.reason.empty() && n.max_sequences == 0) {
        lp.reason = absl::StrCat("node ", rank, " has no room for one sequence of ",
                                 plan.max_context, " tokens");
      }
      lp.per_node.push_back(n);
    }
    lp.fits = lp.reason.empty();
    if (!lp.fits) lp.max_sequences = 0;

    // Decode: up to pp micro-batches in flight.
    auto decode = [&](int64_t batch) {
      const int64_t micro = std::min<int64_t>(l.pp, batch);
      const int64_t each = (batch + micro - 1) / micro;
      double sum = 0, slowest = 0;
      for (int s = 0; s < l.pp; ++s) {
        const StageInputs in{&m, l, stages[s], s == 0, s == l.pp - 1};
        const double t = DecodeStageSeconds(in, o, each, load);
        sum += t;
        slowest = std::max(slowest, t);
      }
      const double handoffs = (l.pp - 1) * AllReduceSeconds(o.perf, 4.0 * each * c.hidden_size, 2);
      const double round = std::max(sum + handoffs, micro * slowest) + o.perf.host_overhead_s;
      return static_cast<double>(batch) / round;
    };
    lp.decode_tokens_per_s_batch1 = decode(1);
    lp.decode_tokens_per_s_batch32 = decode(32);
    double slowest = 0;
    for (int s = 0; s < l.pp; ++s) {
      const StageInputs in{&m, l, stages[s], s == 0, s == l.pp - 1};
      slowest = std::max(slowest, PrefillStageSeconds(in, o, o.max_num_batched_tokens));
    }
    lp.prefill_tokens_per_s =
        static_cast<double>(o.max_num_batched_tokens) / (slowest + o.perf.host_overhead_s);
    plan.layouts.push_back(std::move(lp));
  }
  return plan;
}

}  // namespace sparkstack::deploy
