// The Llama-family decoder over the paged KV cache on the CPU backend: batching, chunking, block
// placement and the parallel layouts must not change any sequence's logits; bad checkpoints are
// named.
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <new>
#include <random>
#include <thread>

#include "gtest/gtest.h"
#include "runtime/backend/cpu/cpu_backend.h"
#include "runtime/model/model.h"
#include "runtime/model/safetensors.h"
#include "runtime/model/tiny_model.h"
#include "tests/unit/engine/thread_communicator.h"
#include "tests/unit/model/paged_driver.h"

// Counts heap allocations while g_count_allocations is set (the no-allocation test).
namespace {
std::atomic<bool> g_count_allocations{false};
std::atomic<int64_t> g_allocations{0};
}  // namespace

void* operator new(size_t size) {
  if (g_count_allocations.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new(size_t size, const std::nothrow_t&) noexcept {
  if (g_count_allocations.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
  return std::malloc(size == 0 ? 1 : size);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace sparkstack {
namespace {

using testing::PagedDriver;
using Logits = std::vector<float>;

std::string TempDir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() /
             ("sparkstack_decoder_test_" + std::to_string(::getpid()) + "_" + name);
  std::filesystem::remove_all(dir);
  return dir.string();
}

ModelConfig OddConfig(Architecture arch) {
  ModelConfig c = TinyModelConfig(arch);
  c.hidden_size = 48;
  c.intermediate_size = 90;  // not divisible by 4: uneven MLP split
  c.num_layers = 3;
  c.num_heads = 8;
  c.num_kv_heads = 2;  // kv_heads < tp at tp = 4: replicated kv heads
  c.head_dim = 12;
  c.vocab_size = 251;  // prime: uneven vocabulary split
  c.max_position_embeddings = 256;
  c.torch_dtype = DType::kF32;
  return c;
}

std::string WriteModel(const ModelConfig& config, const std::string& name, uint64_t seed = 7) {
  const std::string dir = TempDir(name);
  auto status = WriteTinyModel({.config = config, .seed = seed}, dir);
  EXPECT_TRUE(status.ok()) << status;
  return dir;
}

void ExpectLogitsClose(const Logits& got, const Logits& want, double relative) {
  ASSERT_EQ(got.size(), want.size());
  double scale = 0, worst = 0;
  for (float w : want) scale = std::max(scale, std::fabs(static_cast<double>(w)));
  for (size_t i = 0; i < got.size(); ++i) {
    worst = std::max(worst, std::fabs(static_cast<double>(got[i]) - want[i]));
  }
  EXPECT_LE(worst, relative * scale) << "max |diff| " << worst << " vs max |logit| " << scale;
}

std::vector<int32_t> RandomTokens(std::mt19937_64& rng, int64_t count, int64_t vocab) {
  std::vector<int32_t> tokens(count);
  for (int32_t& t : tokens) t = static_cast<int32_t>(rng() % vocab);
  return tokens;
}

// The logits after each of `tokens`' positions from `first_logit` on, computed one sequence at a
// time: one prefill of [0, first_logit], then one decode per token.
std::vector<Logits> RunAlone(Model& model, Backend& backend, const std::vector<int32_t>& tokens,
                             int64_t first_logit) {
  PagedDriver driver(model, backend, 64, /*shuffle_seed=*/0);
  const int s = driver.Add({tokens.begin(), tokens.begin() + first_logit + 1});
  std::vector<Logits> out;
  auto step = driver.Step({{s, first_logit + 1}});
  EXPECT_TRUE(step.ok()) << step.status();
  out.push_back((*step)[s]);
  for (int64_t p = first_logit + 1; p < std::ssize(tokens); ++p) {
    driver.Append(s, tokens[p]);
    step = driver.Step({{s, 1}});
    EXPECT_TRUE(step.ok()) << step.status();
    out.push_back((*step)[s]);
  }
  return out;
}

class DecoderModelTest : public ::testing::TestWithParam<Architecture> {
 protected:
  void Load(const std::string& name, const ModelLoadOptions& options = {}) {
    dir_ = WriteModel(OddConfig(GetParam()), name);
    backend_ = MakeCpuBackend({.threads = 2});
    auto model = LoadModel(dir_, *backend_, options);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = *std::move(model);
  }
  std::string dir_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Model> model_;
};

// Random mixes of sequences joining at different steps, prefilling in random chunks next to
// decodes, with blocks scattered over the pool: every logit equals the sequence run alone.
TEST_P(DecoderModelTest, BatchedEqualsAlone) {
  Load("batched");
  for (uint64_t seed : {1, 2, 3}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    const int n = 2 + static_cast<int>(rng() % 7);
    std::vector<std::vector<int32_t>> tokens(n);
    std::vector<int64_t> prompt_len(n);
    std::vector<std::vector<Logits>> alone(n);
    for (int s = 0; s < n; ++s) {
      prompt_len[s] = 1 + static_cast<int64_t>(rng() % 40);
      tokens[s] = RandomTokens(rng, prompt_len[s] + 1 + rng() % 6, 251);
      alone[s] = RunAlone(*model_, *backend_, tokens[s], prompt_len[s] - 1);
    }
    PagedDriver driver(*model_, *backend_, 256, seed);
    std::vector<int> id(n, -1);
    std::vector<std::vector<Logits>> batched(n);
    std::vector<int64_t> known(n, 0);
    for (int step = 0; step < 200; ++step) {
      std::vector<std::pair<int, int64_t>> work;
      for (int s = 0; s < n; ++s) {
        if (id[s] < 0) {
          if (rng() % 3 != 0) continue;  // joins at a random step
          id[s] = driver.Add({tokens[s].begin(), tokens[s].begin() + prompt_len[s]});
          known[s] = prompt_len[s];
        }
        const int64_t left = known[s] - driver.computed(id[s]);
        if (left == 0 || rng() % 4 == 0) continue;  // idle this step
        work.push_back({id[s], left == 1 ? 1 : 1 + static_cast<int64_t>(rng() % left)});
      }
      if (work.empty()) continue;
      auto out = driver.Step(work);
      ASSERT_TRUE(out.ok()) << out.status();
      for (auto& [sid, logits] : *out) {
        const int s = static_cast<int>(std::find(id.begin(), id.end(), sid) - id.begin());
        batched[s].push_back(std::move(logits));
        if (known[s] < std::ssize(tokens[s])) driver.Append(sid, tokens[s][known[s]++]);
      }
    }
    for (int s = 0; s < n; ++s) {
      ASSERT_EQ(batched[s].size(), alone[s].size()) << "sequence " << s << " did not finish";
      for (size_t i = 0; i < alone[s].size(); ++i) ExpectLogitsClose(batched[s][i], alone[s][i], 1e-5);
    }
  }
}

TEST_P(DecoderModelTest, ChunkedPrefillEqualsOneShot) {
  Load("chunked");
  std::mt19937_64 rng(5);
  const std::vector<int32_t> prompt = RandomTokens(rng, 37, 251);
  PagedDriver one_shot(*model_, *backend_, 16, 0);
  const int a = one_shot.Add(prompt);
  auto want = one_shot.Step({{a, 37}});
  PagedDriver chunked(*model_, *backend_, 16, 99);
  const int b = chunked.Add(prompt);
  ASSERT_TRUE(chunked.Step({{b, 5}}).ok());
  ASSERT_TRUE(chunked.Step({{b, 16}}).ok());  // crosses a block boundary at 16
  auto got = chunked.Step({{b, 16}});
  ASSERT_TRUE(want.ok() && got.ok());
  ExpectLogitsClose((*got)[b], (*want)[a], 1e-5);
}

// Runs prompt + 3 decodes on `tp` thread-ranks; returns rank 0's logits per step.
std::vector<Logits> RunTensorParallel(const std::string& dir, int tp) {
  auto group = std::make_shared<testing::ThreadGroup>(tp);
  std::vector<std::vector<Logits>> per_rank(tp);
  std::vector<std::thread> threads;
  const std::vector<int32_t> prompt = {1, 17, 250, 3, 99, 42, 7};
  for (int rank = 0; rank < tp; ++rank) {
    threads.emplace_back([&, rank] {
      testing::ThreadCommunicator comm(group, rank);
      auto backend = MakeCpuBackend();
      auto model = LoadModel(dir, *backend,
                             {.shard = {.tp_rank = rank, .tp_size = tp, .tp_comm = &comm}});
      ASSERT_TRUE(model.ok()) << model.status();
      PagedDriver driver(**model, *backend, 8, 3);
      const int s = driver.Add(prompt);
      auto out = driver.Step({{s, std::ssize(prompt)}});
      ASSERT_TRUE(out.ok()) << out.status();
      per_rank[rank].push_back((*out)[s]);
      for (int32_t step = 0; step < 3; ++step) {
        driver.Append(s, 5 + 11 * step);
        out = driver.Step({{s, 1}});
        ASSERT_TRUE(out.ok()) << out.status();
        per_rank[rank].push_back((*out)[s]);
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int rank = 1; rank < tp; ++rank) EXPECT_EQ(per_rank[rank], per_rank[0]);
  return per_rank[0];
}

TEST_P(DecoderModelTest, TensorParallelShardsMatchTheWholeModel) {
  const std::string dir = WriteModel(OddConfig(GetParam()), "tp");
  const auto whole = RunTensorParallel(dir, 1);
  for (int tp : {2, 4}) {
    SCOPED_TRACE("tp = " + std::to_string(tp));
    const auto sharded = RunTensorParallel(dir, tp);
    ASSERT_EQ(sharded.size(), whole.size());
    for (size_t step = 0; step < whole.size(); ++step) {
      ExpectLogitsClose(sharded[step], whole[step], 1e-5);
    }
  }
}

TEST_P(DecoderModelTest, PipelineStagesMatchTheWholeModel) {
  Load("pp");
  auto first = LoadModel(dir_, *backend_, {.shard = {.layer_begin = 0, .layer_end = 1,
                                                     .last_stage = false}});
  auto last = LoadModel(dir_, *backend_, {.shard = {.layer_begin = 1, .layer_end = -1,
                                                    .first_stage = false}});
  ASSERT_TRUE(first.ok() && last.ok());
  const std::vector<int32_t> prompt = {1, 17, 250, 3, 99, 42, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17};
  PagedDriver whole(*model_, *backend_, 8, 0);
  PagedDriver stage0(**first, *backend_, 8, 0);
  PagedDriver stage1(**last, *backend_, 8, 0);
  const int s = whole.Add(prompt);
  stage0.Add(prompt);
  stage1.Add(prompt);
  auto want = whole.Step({{s, std::ssize(prompt)}});
  ASSERT_TRUE(stage0.Step({{s, std::ssize(prompt)}}).ok());
  auto got = stage1.Step({{s, std::ssize(prompt)}}, &stage0.hidden());
  ASSERT_TRUE(want.ok() && got.ok()) << got.status();
  ExpectLogitsClose((*got)[s], (*want)[s], 1e-6);
}

// After warm-up, a forward pass allocates nothing: every intermediate comes from the workspace.
// Disabled until the CPU kernels keep their scratch across calls (cpu-kernels work in progress).
TEST_P(DecoderModelTest, DISABLED_ForwardAllocatesNothingAfterWarmUp) {
  Load("alloc");
  PagedDriver driver(*model_, *backend_, 32, 4);
  std::vector<std::pair<int, int64_t>> prefill, decode;
  for (int s = 0; s < 5; ++s) {
    const int id = driver.Add({3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, static_cast<int32_t>(s)});
    prefill.push_back({id, 12});
  }
  ASSERT_TRUE(driver.Step(prefill).ok());
  for (int s = 0; s < 5; ++s) {
    driver.Append(s, 20 + s);
    decode.push_back({s, 1});
  }
  auto step = driver.Prepare(decode);
  ASSERT_TRUE(step.ok());
  ASSERT_TRUE(driver.Run(*step).ok());  // warm-up: thread pools and scratch grow here
  g_allocations = 0;
  g_count_allocations = true;
  auto out = driver.Run(*step);
  g_count_allocations = false;
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(g_allocations.load(), 0) << "heap allocations inside Model::Forward";
}

INSTANTIATE_TEST_SUITE_P(Architectures, DecoderModelTest,
                         ::testing::Values(Architecture::kLlama, Architecture::kQwen3),
                         [](const auto& info) { return std::string(ArchitectureName(info.param)); });

// Rewrites the checkpoint without one tensor, or with one tensor of the wrong shape.
void RewriteCheckpoint(const std::string& dir, const std::string& drop, const std::string& shrink) {
  auto file = SafetensorsFile::Open(dir + "/model.safetensors");
  ASSERT_TRUE(file.ok());
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& entry : (*file)->entries()) {
    if (entry.name == drop) continue;
    Tensor t = (*file)->Get(entry.name)->Clone();
    if (entry.name == shrink) t = *t.SliceRows(0, t.dim(0) - 1);
    tensors.emplace_back(entry.name, t.Clone());
  }
  file->reset();
  ASSERT_TRUE(WriteSafetensors(dir + "/model.safetensors", tensors).ok());
}

TEST(DecoderModelErrorsTest, MissingTensorIsNamed) {
  const std::string dir = WriteModel(OddConfig(Architecture::kQwen3), "missing");
  RewriteCheckpoint(dir, "model.layers.1.self_attn.k_norm.weight", "");
  auto backend = MakeCpuBackend();
  auto model = LoadModel(dir, *backend);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(model.status().message().find("model.layers.1.self_attn.k_norm.weight"),
            absl::string_view::npos)
      << model.status();
}

TEST(DecoderModelErrorsTest, WrongShapeIsNamedWithExpectedShape) {
  const std::string dir = WriteModel(OddConfig(Architecture::kLlama), "shape");
  RewriteCheckpoint(dir, "", "model.layers.2.mlp.down_proj.weight");
  auto backend = MakeCpuBackend();
  auto model = LoadModel(dir, *backend);
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("model.layers.2.mlp.down_proj.weight"),
            absl::string_view::npos);
  EXPECT_NE(model.status().message().find("expected [48, 90]"), absl::string_view::npos)
      << model.status();
}

TEST(DecoderModelErrorsTest, ShardsThatCannotSplitAreRejected) {
  const std::string dir = WriteModel(OddConfig(Architecture::kLlama), "split");
  auto backend = MakeCpuBackend();
  auto group = std::make_shared<testing::ThreadGroup>(3);
  testing::ThreadCommunicator comm(group, 0);
  auto model = LoadModel(dir, *backend, {.shard = {.tp_rank = 0, .tp_size = 3, .tp_comm = &comm}});
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("not divisible by tp 3"), absl::string_view::npos);
}

}  // namespace
}  // namespace sparkstack
