// Plan numbers against hand computations: a tiny model whose every byte and microsecond is worked
// out below, Llama-3.1-405B's per-node bytes from its shapes, and the five flagship models'
// parameter counts, NVFP4 sizes and batch-1 bytes per token against /work/shared/MODELS.md.
#include "runtime/deploy/plan.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runtime/deploy/plan_report.h"
#include "tests/unit/deploy/model_fixture.h"
#include "tests/unit/model/test_util.h"

namespace sparkstack::deploy {
namespace {

using ::sparkstack::testing::FixtureConfigPath;
using ::sparkstack::testing::FixtureWeights;
using ::sparkstack::testing::ScratchDir;
using ::sparkstack::testing::WriteBytes;
using ::sparkstack::testing::WriteHeaderOnlyCheckpoint;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// hidden 64, intermediate 128, 4 layers, 4 heads of 16, 2 kv heads, vocab 256, all BF16:
//   layer  = norms 2*64*2 + q 64*64*2 + k,v 2*(32*64*2) + o 64*64*2 + mlp 3*128*64*2 = 73984
//   embed  = 256*64*2 = 32768; lm_head 32768; final norm 128
constexpr uint64_t kTinyLayer = 73984, kTinyEmbed = 32768, kTinyHead = 32768 + 128;

void WriteTinyModel(const ScratchDir& dir) {
  const nlohmann::json config = {{"architectures", {"LlamaForCausalLM"}},
                                 {"model_type", "llama"},
                                 {"hidden_size", 64},
                                 {"intermediate_size", 128},
                                 {"num_hidden_layers", 4},
                                 {"num_attention_heads", 4},
                                 {"num_key_value_heads", 2},
                                 {"vocab_size", 256},
                                 {"max_position_embeddings", 1024}};
  WriteBytes(dir.File("tiny.json"), config.dump());
  ASSERT_TRUE(
      WriteHeaderOnlyCheckpoint(dir.File("tiny.json"), dir.File("model"), FixtureWeights::kBf16, 5)
          .ok());
}

PlanOptions TinyOptions(int nodes) {
  PlanOptions o;
  o.nodes = nodes;
  o.max_context = 1000;
  o.perf_context = 100;
  o.max_num_batched_tokens = 8;
  o.max_num_seqs = 2;
  o.perf.read_bandwidth = 1e9;
  o.perf.allocatable_bytes = 1048576;
  o.perf.runtime_reserve_bytes = 0;
  return o;
}

const LayoutPlan& Find(const Plan& plan, int tp, int pp, int ep = 1) {
  for (const LayoutPlan& l : plan.layouts) {
    if (l.tp == tp && l.pp == pp && l.ep == ep) return l;
  }
  ADD_FAILURE() << "no layout tp=" << tp << " pp=" << pp << " ep=" << ep;
  static LayoutPlan none;
  return none;
}

TEST(PlanTest, TinyModelBytesByHand) {
  ScratchDir dir;
  WriteTinyModel(dir);
  absl::StatusOr<CheckpointCensus> census = TakeCensus(dir.File("model"));
  ASSERT_TRUE(census.ok()) << census.status();
  EXPECT_TRUE(census->header_only);
  absl::StatusOr<Plan> plan = MakePlan(*census, TinyOptions(2));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->total_weight_bytes, 4 * kTinyLayer + kTinyEmbed + kTinyHead);
  ASSERT_EQ(plan->layouts.size(), 2u);  // tp=2 pp=1, tp=1 pp=2 (dense: ep 1 only)

  // tp=2: q, o and the MLP halve (65536 / 2), k and v halve (8192 / 2, one kv head each), norms
  // stay whole (256): 37120 per layer; embedding and lm_head halve, the final norm stays whole.
  const LayoutPlan& tp2 = Find(*plan, 2, 1);
  ASSERT_EQ(tp2.per_node.size(), 2u);
  for (const NodePlan& n : tp2.per_node) {
    EXPECT_EQ(n.weight_bytes, 4 * 37120 + 16384 + 16384 + 128);
    EXPECT_EQ(n.kv_bytes_per_token, 4u * 1 * 16 * 2 * 2);  // layers x kv heads x dim x (k,v) x bf16
    // Workspace (T 8, R 2): hidden in + 2 step buffers 3*8*64*4 = 6144, plus the largest block:
    // the head's R*64*4 + 2*R*128*4 + 2*R*128*4 + R*256*4 = 6656 (attention 3072, MLP 4096).
    EXPECT_EQ(n.workspace_bytes, 6144u + 6656u);
    // (1 MiB - 181376 - 12800) / (1008 tokens * 256) = 3.3
    EXPECT_EQ(n.kv_budget_bytes, 1048576 - 181376 - 12800);
    EXPECT_EQ(n.max_sequences, 3);
  }
  EXPECT_TRUE(tp2.fits);
  EXPECT_EQ(tp2.max_sequences, 3);

  // pp=2: running bytes 32768 + 73984 b are closest to half of 361600 at b = 2.
  const LayoutPlan& pp2 = Find(*plan, 1, 2);
  ASSERT_EQ(pp2.per_node.size(), 2u);
  EXPECT_EQ(pp2.per_node[0].layer_begin, 0);
  EXPECT_EQ(pp2.per_node[0].layer_end, 2);
  EXPECT_EQ(pp2.per_node[0].weight_bytes, kTinyEmbed + 2 * kTinyLayer);
  EXPECT_EQ(pp2.per_node[1].weight_bytes, 2 * kTinyLayer + kTinyHead);
  EXPECT_EQ(pp2.per_node[1].kv_bytes_per_token, 2u * 2 * 16 * 2 * 2);

  // tp=3 with 2 kv heads: each rank holds one kv head (half of k and v, 8192 / 2), a third of the
  // rest rounded up (ceil(65536 / 3) = 21846) and the norms: 26198 per layer; embedding and
  // lm_head ceil(32768 / 3) = 10923 each, plus the final norm.
  absl::StatusOr<Plan> three = MakePlan(*census, TinyOptions(3));
  ASSERT_TRUE(three.ok()) << three.status();
  const LayoutPlan& tp3 = Find(*three, 3, 1);
  ASSERT_EQ(tp3.per_node.size(), 3u);
  EXPECT_EQ(tp3.per_node[2].weight_bytes, 4u * 26198 + 10923 + 10923 + 128);
  EXPECT_EQ(tp3.per_node[2].kv_bytes_per_token, 4u * 1 * 16 * 2 * 2);
}

TEST(PlanTest, TinyModelSpeedByHand) {
  ScratchDir dir;
  WriteTinyModel(dir);
  absl::StatusOr<CheckpointCensus> census = TakeCensus(dir.File("model"));
  ASSERT_TRUE(census.ok()) << census.status();
  absl::StatusOr<Plan> plan = MakePlan(*census, TinyOptions(2));
  ASSERT_TRUE(plan.ok()) << plan.status();

  // tp=2, batch 1, 100 tokens of context, 1 GB/s:
  //   reads 148480 (layers) + 128 (one embedding row of the half table) + 16512 (lm_head half +
  //   norm) + 100 * 256 (KV) = 190720 bytes = 190.72 us; 9 all-reduces of 256 B (2 per layer +
  //   the embedding) and the logits gather of 512 B at 30 us = 300 us; host 500 us.
  const LayoutPlan& tp2 = Find(*plan, 2, 1);
  EXPECT_NEAR(tp2.decode_tokens_per_s_batch1, 1.0 / 990.72e-6, 1e-6);
  //   batch 32: 148480 + 32 rows 4096 + 16512 + 32 * 25600 = 988288 bytes; 9 all-reduces of
  //   8 KiB at 30 us; the logits gather of 16 KiB interpolates to 30 + 35 * 8/56 = 35 us.
  EXPECT_NEAR(tp2.decode_tokens_per_s_batch32, 32.0 / (988.288e-6 + 270e-6 + 35e-6 + 500e-6), 1e-6);

  // pp=2, batch 1: stage 0 reads 147968 + 128 + 25600 = 173696 B, stage 1 147968 + 32896 + 25600
  // = 206464 B, one hand-off of 256 B (30 us) between them, then the host's 500 us.
  const LayoutPlan& pp2 = Find(*plan, 1, 2);
  EXPECT_NEAR(pp2.decode_tokens_per_s_batch1, 1.0 / (173.696e-6 + 206.464e-6 + 30e-6 + 500e-6),
              1e-6);
}

TEST(PlanTest, DoesNotFitNamesTheNode) {
  ScratchDir dir;
  WriteTinyModel(dir);
  absl::StatusOr<CheckpointCensus> census = TakeCensus(dir.File("model"));
  ASSERT_TRUE(census.ok()) << census.status();
  PlanOptions o = TinyOptions(2);
  o.perf.allocatable_bytes = 150000;
  absl::StatusOr<Plan> plan = MakePlan(*census, o);
  ASSERT_TRUE(plan.ok()) << plan.status();
  const LayoutPlan& tp2 = Find(*plan, 2, 1);
  EXPECT_FALSE(tp2.fits);
  EXPECT_EQ(tp2.max_sequences, 0);
  EXPECT_THAT(tp2.reason, HasSubstr("node 0 needs"));

  o = TinyOptions(2);
  o.max_context = 4000;  // 4000 * 256 B = 1 MB per sequence: none fits in 854400 B
  plan = MakePlan(*census, o);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_FALSE(Find(*plan, 2, 1).fits);
  EXPECT_THAT(Find(*plan, 2, 1).reason, HasSubstr("no room for one sequence of 4000 tokens"));
}

TEST(PlanTest, BadOptionsAreRefusedByName) {
  ScratchDir dir;
  WriteTinyModel(dir);
  absl::StatusOr<CheckpointCensus> census = TakeCensus(dir.File("model"));
  ASSERT_TRUE(census.ok()) << census.status();
  PlanOptions o = TinyOptions(2);
  o.ep = 2;
  EXPECT_THAT(MakePlan(*census, o).status().message(), HasSubstr("is a dense model"));
  o = TinyOptions(0);
  EXPECT_THAT(MakePlan(*census, o).status().message(), HasSubstr("--nodes must be at least 1"));
  o = TinyOptions(4);
  o.tp = 3;
  EXPECT_THAT(MakePlan(*census, o).status().message(), HasSubstr("--tp 3"));
  o = TinyOptions(5);  // pp 5 > 4 layers, tp 5 the only other
  o.pp = 5;
  EXPECT_THAT(MakePlan(*census, o).status().message(), HasSubstr("pp cannot exceed"));
  o = TinyOptions(2);
  o.kv_dtype = DType::kI32;
  EXPECT_THAT(MakePlan(*census, o).status().message(), HasSubstr("--kv-dtype i32"));
}

TEST(PlanTest, JsonHasTheIssuesShape) {
  ScratchDir dir;
  WriteTinyModel(dir);
  absl::StatusOr<CheckpointCensus> census = TakeCensus(dir.File("model"));
  ASSERT_TRUE(census.ok()) << census.status();
  absl::StatusOr<Plan> plan = MakePlan(*census, TinyOptions(2));
  ASSERT_TRUE(plan.ok()) << plan.status();
  const nlohmann::json j = PlanToJson(*plan);
  std::vector<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
  EXPECT_THAT(keys, ElementsAre("layouts", "model", "total_weight_bytes"));
  const nlohmann::json& layout = j["layouts"][0];
  for (const char* key : {"tp", "pp", "ep", "nodes", "fits", "per_node", "max_sequences",
                          "decode_tokens_per_s", "prefill_tokens_per_s"}) {
    EXPECT_TRUE(layout.contains(key)) << key;
  }
  EXPECT_EQ(layout.size(), 9u);
  EXPECT_TRUE(layout["decode_tokens_per_s"].contains("batch1"));
  EXPECT_TRUE(layout["decode_tokens_per_s"].contains("batch32"));
  EXPECT_EQ(layout["per_node"][0]["weight_bytes"].get<uint64_t>(), 181376u);
  EXPECT_EQ(layout["per_node"][0]["kv_bytes_per_token"].get<uint64_t>(), 256u);
  EXPECT_EQ(j["total_weight_bytes"].get<uint64_t>(), 4 * kTinyLayer + kTinyEmbed + kTinyHead);
}

TEST(PlanTest, TheCommandPrintsTheSamePlan) {
  const char* binary = std::getenv("SPARKSTACK_BINARY");
  if (binary == nullptr || !std::filesystem::exists(binary)) GTEST_SKIP() << "no sparkstack binary";
  ScratchDir dir;
  WriteTinyModel(dir);
  const std::string command = std::string(binary) + " plan --model " + dir.File("model") +
                              " --nodes 2 --max-context 1000 --json > " + dir.File("out.json");
  ASSERT_EQ(std::system(command.c_str()), 0);
  const nlohmann::json j =
      nlohmann::json::parse(::sparkstack::testing::ReadBytes(dir.File("out.json")));
  EXPECT_EQ(j["layouts"].size(), 2u);
  EXPECT_EQ(j["layouts"][0]["per_node"][0]["weight_bytes"].get<uint64_t>(), 181376u);
  const std::string bad = std::string(binary) + " plan --model " + dir.File("model") +
                          " --nodes 2 --kv-dtype q3 2> " + dir.File("err.txt");
  EXPECT_NE(std::system(bad.c_str()), 0);
  EXPECT_THAT(::sparkstack::testing::ReadBytes(dir.File("err.txt")), HasSubstr("--kv-dtype q3"));
}

TEST(AllReduceSecondsTest, FollowsTheMeasuredPoints) {
  const PerfConstants p;
  EXPECT_EQ(AllReduceSeconds(p, 1e6, 1), 0.0);
  EXPECT_DOUBLE_EQ(AllReduceSeconds(p, 100, 2), 30e-6);
  EXPECT_DOUBLE_EQ(AllReduceSeconds(p, 8192, 2), 30e-6);
  EXPECT_DOUBLE_EQ(AllReduceSeconds(p, 36864, 2), 47.5e-6);  // half way
  EXPECT_DOUBLE_EQ(AllReduceSeconds(p, 65536, 4), 65e-6);
  // 1 MiB among 4 ranks: 65 us + 1.5 * (1048576 - 65536) / 24e9.
  EXPECT_DOUBLE_EQ(AllReduceSeconds(p, 1048576, 4), 65e-6 + 1.5 * 983040 / 24e9);
}

// Brute force: every top-k set of a small expert pool, equally likely.
double BruteForceBusiest(int experts, int k, int groups) {
  double total = 0;
  int sets = 0;
  for (int mask = 0; mask < (1 << experts); ++mask) {
    if (__builtin_popcount(mask) != k) continue;
    std::vector<int> count(groups, 0);
    for (int e = 0; e < experts; ++e) {
      if (mask & (1 << e)) {
        // BalancedSplit: the first experts % groups groups are one longer.
        int g = 0, begin = 0;
        for (; g < groups; ++g) {
          const int size = experts / groups + (g < experts % groups ? 1 : 0);
          if (e < begin + size) break;
          begin += size;
        }
        ++count[g];
      }
    }
    total += *std::max_element(count.begin(), count.end());
    ++sets;
  }
  return total / sets;
}

TEST(ExpectedBusiestGroupExpertsTest, OneTokenIsExact) {
  for (auto [e, k, g] : {std::tuple{8, 3, 2}, {12, 4, 3}, {10, 5, 4}, {9, 2, 1}, {16, 8, 4}}) {
    EXPECT_NEAR(ExpectedBusiestGroupExperts(e, k, g, 1), BruteForceBusiest(e, k, g), 1e-12)
        << e << " " << k << " " << g;
  }
  EXPECT_DOUBLE_EQ(ExpectedBusiestGroupExperts(256, 8, 1, 1), 8.0);
  EXPECT_DOUBLE_EQ(ExpectedBusiestGroupExperts(256, 8, 256, 1), 1.0);
}

TEST(ExpectedBusiestGroupExpertsTest, ManyTokensInOneGroupMatchTheClosedForm) {
  // One group: the distinct experts touched, whose mean is E (1 - (1 - k/E)^B) (MODELS.md lists
  // 8, 57, 163, 222 for 256/8 at B = 1, 8, 32, 64).
  for (auto [e, k, b] : {std::tuple{256, 8, 32}, {128, 8, 8}, {160, 8, 64}, {128, 4, 32}}) {
    const double closed = e * (1.0 - std::pow(1.0 - static_cast<double>(k) / e, b));
    EXPECT_NEAR(ExpectedBusiestGroupExperts(e, k, 1, b), closed, 0.01 * closed) << e << " " << b;
  }
  EXPECT_NEAR(ExpectedBusiestGroupExperts(256, 8, 1, 32), 163, 1.0);
  // More groups: the busiest holds at least its share and at most the whole group.
  const double four = ExpectedBusiestGroupExperts(256, 8, 4, 32);
  EXPECT_GT(four, 163.0 / 4);
  EXPECT_LT(four, 64);
}

// ---- The five flagship models at their real shapes (header-only NVFP4 fixtures). ----

struct Flagship {
  const char* name;
  double params_b;         // MODELS.md "params" (billions, without MTP layers)
  double nvfp4_gb;         // MODELS.md "NVFP4 GB": every weight at 4.5 bits
  double read_gb;          // MODELS.md "read/token GB" at batch 1 (embedding: one row)
  double lm_head_bf16_gb;  // MODELS.md "lm_head BF16": what a BF16 lm_head adds to read/token
};

constexpr Flagship kFlagships[] = {
    {"llama-3.1-405b", 405.9, 228.3, 227.1, 3.02}, {"qwen3-235b-a22b", 235.1, 132.2, 12.1, 0.89},
    {"deepseek-v3", 671.0, 377.5, 20.6, 1.33},     {"glm-4.6", 352.8, 198.4, 18.5, 1.12},
    {"minimax-m2", 228.7, 128.6, 5.86, 0.88},
};

// Header-only checkpoints written once per test program (the DeepSeek headers alone declare
// 190,000 tensors) and removed when it ends.
class FixtureCache : public ::testing::Environment {
 public:
  void TearDown() override {
    censuses_.clear();
    dir_.reset();
  }
  static const CheckpointCensus& Get(const std::string& name, FixtureWeights weights) {
    const std::string key = absl::StrCat(name, weights == FixtureWeights::kFp8 ? "-fp8" : "");
    auto it = censuses_.find(key);
    if (it != censuses_.end()) return it->second;
    if (!dir_) {
      dir_.reset(new std::filesystem::path(std::filesystem::path(::testing::TempDir()) /
                                           absl::StrCat("sparkstack_plan_fixtures_", ::getpid())));
    }
    const std::string out = (*dir_ / key).string();
    const absl::Status written = WriteHeaderOnlyCheckpoint(FixtureConfigPath(name), out, weights);
    EXPECT_TRUE(written.ok()) << written;
    absl::StatusOr<CheckpointCensus> census = TakeCensus(out);
    EXPECT_TRUE(census.ok()) << census.status();
    return censuses_.emplace(key, census.ok() ? *std::move(census) : CheckpointCensus{})
        .first->second;
  }

 private:
  struct Remove {
    void operator()(std::filesystem::path* p) const {
      std::error_code ec;
      std::filesystem::remove_all(*p, ec);
      delete p;
    }
  };
  static inline std::unique_ptr<std::filesystem::path, Remove> dir_;
  static inline std::map<std::string, CheckpointCensus> censuses_;
};

const ::testing::Environment* const kFixtureCache =
    ::testing::AddGlobalTestEnvironment(new FixtureCache);

class FlagshipTest : public ::testing::TestWithParam<Flagship> {
 protected:
  static const CheckpointCensus& Census(const std::string& name) {
    return FixtureCache::Get(name, FixtureWeights::kNvfp4);
  }
};

TEST_P(FlagshipTest, ParametersAndBytesMatchModelsMd) {
  const Flagship f = GetParam();
  const CheckpointCensus& census = Census(f.name);
  ASSERT_FALSE(census.tensors.empty());
  double params = 0, embed_and_head = 0;
  for (const TensorCensus& t : census.tensors) {
    if (t.placement == Placement::kSkipped || t.name.ends_with("_scale") ||
        t.name.ends_with("_scale_2")) {
      continue;
    }
    double numel = 1;
    for (int64_t d : t.shape) numel *= static_cast<double>(d);
    params += t.fp4 ? 2 * numel : numel;
    if (t.placement == Placement::kEmbedding || t.name == "lm_head.weight") embed_and_head += numel;
  }
  EXPECT_NEAR(params / 1e9, f.params_b, 0.06) << f.name;
  // Resident: MODELS.md's all-NVFP4 bytes, plus what keeping the embedding and lm_head in BF16
  // adds (2 - 0.5625 bytes per element); routers and norms in BF16 add well under 0.3%.
  const double expected = f.nvfp4_gb * 1e9 + embed_and_head * (2 - 0.5625);
  EXPECT_NEAR(static_cast<double>(census.resident_bytes), expected, 0.003 * expected) << f.name;
}

TEST_P(FlagshipTest, BatchOneReadsWhatModelsMdSays) {
  const Flagship f = GetParam();
  const CheckpointCensus& census = Census(f.name);
  PlanOptions o;
  o.nodes = 1;
  o.perf_context = 1;
  o.perf.host_overhead_s = 0;
  absl::StatusOr<Plan> plan = MakePlan(census, o);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->layouts.size(), 1u);
  // One node, batch 1: tokens/s = bandwidth / (active weights + the BF16 lm_head's extra).
  const double expected = o.perf.read_bandwidth / ((f.read_gb + f.lm_head_bf16_gb) * 1e9);
  EXPECT_NEAR(plan->layouts[0].decode_tokens_per_s_batch1, expected, 0.015 * expected) << f.name;
  EXPECT_FALSE(plan->layouts[0].fits);  // none of them fits one Spark
}

TEST_P(FlagshipTest, FourNodesListEveryLayout) {
  const Flagship f = GetParam();
  const CheckpointCensus& census = Census(f.name);
  PlanOptions o;
  o.nodes = 4;
  o.max_context = 32768;
  absl::StatusOr<Plan> plan = MakePlan(census, o);
  ASSERT_TRUE(plan.ok()) << plan.status();
  std::vector<std::string> names;
  for (const LayoutPlan& l : plan->layouts) {
    names.push_back(absl::StrCat(l.tp, "x", l.pp, "x", l.ep));
    uint64_t sum = 0;
    for (const NodePlan& n : l.per_node) sum += n.weight_bytes;
    // Nodes together hold the model, plus what tp ranks replicate (at most 3 %).
    EXPECT_GE(sum, plan->total_weight_bytes) << f.name << " " << names.back();
    EXPECT_LE(sum, 1.03 * plan->total_weight_bytes) << f.name << " " << names.back();
    EXPECT_GT(l.decode_tokens_per_s_batch32, l.decode_tokens_per_s_batch1);
    EXPECT_GT(l.prefill_tokens_per_s, l.decode_tokens_per_s_batch1);
  }
  if (census.config.moe.num_experts > 0) {
    EXPECT_THAT(names, ElementsAre("4x1x4", "4x1x2", "4x1x1", "2x2x2", "2x2x1", "1x4x1"));
  } else {
    EXPECT_THAT(names, ElementsAre("4x1x1", "2x2x1", "1x4x1"));
  }
  // Every one of them fits four Sparks at 32K context.
  for (const LayoutPlan& l : plan->layouts) EXPECT_TRUE(l.fits) << f.name << " " << l.reason;
}

INSTANTIATE_TEST_SUITE_P(Models, FlagshipTest, ::testing::ValuesIn(kFlagships),
                         [](const auto& info) {
                           std::string name = info.param.name;
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

TEST(LlamaPlanTest, FourWayTensorParallelByHand) {
  const CheckpointCensus& census = FixtureCache::Get("llama-3.1-405b", FixtureWeights::kNvfp4);
  PlanOptions o;
  o.nodes = 4;
  o.tp = 4;
  absl::StatusOr<Plan> plan = MakePlan(census, o);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->layouts.size(), 1u);
  const NodePlan& n = plan->layouts[0].per_node[0];

  // NVFP4 linear [N, K]: N*K/2 codes + N*K/16 scales (= 9/16 byte per weight) + two f32 scalars.
  const uint64_t h = 16384, inter = 53248, kv = 1024, vocab = 128256;
  const uint64_t sharded = (2 * h * h + 3 * h * inter) * 9 / 16;  // q, o, gate, up, down
  const uint64_t kv_proj = 2 * kv * h * 9 / 16;                   // k, v (8 heads: / 4)
  const uint64_t replicated = 2 * h * 2 + 7 * 8;                  // two norms, 14 scalars
  const uint64_t layer = sharded / 4 + kv_proj / 4 + replicated;
  const uint64_t expected = 126 * layer + vocab * h * 2 / 4 + vocab * h * 2 / 4 + h * 2;
  EXPECT_EQ(n.weight_bytes, expected);
  // KV: 126 layers x 2 kv heads x 128 x (k, v) x bf16.
  EXPECT_EQ(n.kv_bytes_per_token, 126u * 2 * 128 * 2 * 2);

  // Decode, batch 1, 2048 tokens of context: the node's weights less the embedding table plus
  // one row of it, and 2048 tokens of KV; 253 all-reduces of 64 KiB (65 us) and a logits gather
  // of 4 * 32064 B (65 us + 1.5 * 62720 B / 24 GB/s); 0.5 ms of host.
  const double bytes =
      static_cast<double>(expected - vocab * h * 2 / 4 + h * 2 + 2048 * n.kv_bytes_per_token);
  const double seconds =
      bytes / 232e9 + 253 * 65e-6 + (65e-6 + 1.5 * (4.0 * 32064 - 65536) / 24e9) + 0.5e-3;
  EXPECT_NEAR(plan->layouts[0].decode_tokens_per_s_batch1, 1.0 / seconds, 1e-9);
}

TEST(DeepseekPlanTest, Fp8CheckpointPlansAsNvfp4) {
  const CheckpointCensus* fp8 = &FixtureCache::Get("deepseek-v3", FixtureWeights::kFp8);
  EXPECT_TRUE(fp8->fp8_converted);
  // As stored: 671.0B + the ~11.5B MTP layer at a byte each; the embedding, lm_head and the MTP
  // head (3 x 129280 x 7168) a byte more each in BF16; routers and eh_proj in BF16 (~0.2 GB more);
  // f32 scales per 128 x 128 block (~0.17 GB).
  EXPECT_NEAR(fp8->checkpoint_bytes / 1e9, 682.5 + 3 * 0.9267 + 0.2 + 0.17, 1.5);
  // Loaded: the same 4.5 bits per weight as the NVFP4 checkpoint's (which stores two f32 scalars
  // per linear where the conversion makes one).
  int64_t linears = 0;
  for (const TensorCensus& t : fp8->tensors) {
    if (t.placement != Placement::kSkipped && t.name.ends_with(".weight_scale_inv")) ++linears;
  }
  const CheckpointCensus* fp4 = &FixtureCache::Get("deepseek-v3", FixtureWeights::kNvfp4);
  EXPECT_EQ(fp4->resident_bytes - fp8->resident_bytes, static_cast<uint64_t>(4 * linears));
  // MLA: 576 latent values per token and layer, whole on every tp rank.
  PlanOptions o;
  o.nodes = 4;
  o.tp = 4;
  o.ep = 4;
  absl::StatusOr<Plan> plan = MakePlan(*fp8, o);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->layouts[0].per_node[3].kv_bytes_per_token, 61u * 576 * 2);
  EXPECT_EQ(plan->layouts[0].per_node[3].expert_begin, 192);
  EXPECT_EQ(plan->layouts[0].per_node[3].expert_end, 256);
}

}  // namespace
}  // namespace sparkstack::deploy
