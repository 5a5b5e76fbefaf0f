// The Llama-family model on the CPU backend: incremental decoding against full recomputation,
// tensor- and pipeline-parallel shards against the whole model, and bad checkpoints.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "gtest/gtest.h"
#include "runtime/backend/cpu/cpu_backend.h"
#include "runtime/model/model.h"
#include "runtime/model/safetensors.h"
#include "runtime/model/tiny_model.h"
#include "tests/unit/engine/thread_communicator.h"

namespace sparkstack {
namespace {

std::string TempDir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() /
             ("sparkstack_model_test_" + std::to_string(::getpid()) + "_" + name);
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
  c.torch_dtype = DType::kF32;
  return c;
}

std::string WriteModel(const ModelConfig& config, const std::string& name, uint64_t seed = 7) {
  const std::string dir = TempDir(name);
  auto status = WriteTinyModel({.config = config, .seed = seed}, dir);
  EXPECT_TRUE(status.ok()) << status;
  return dir;
}

std::vector<float> ToVector(const Tensor& t) {
  return {t.data_as<float>(), t.data_as<float>() + t.numel()};
}

void ExpectLogitsClose(const std::vector<float>& got, const std::vector<float>& want,
                       double relative) {
  ASSERT_EQ(got.size(), want.size());
  double scale = 0, worst = 0;
  for (float w : want) scale = std::max(scale, std::fabs(static_cast<double>(w)));
  for (size_t i = 0; i < got.size(); ++i) {
    worst = std::max(worst, std::fabs(static_cast<double>(got[i]) - want[i]));
  }
  EXPECT_LE(worst, relative * scale) << "max |diff| " << worst << " vs max |logit| " << scale;
}

const std::vector<int32_t> kPrompt = {1, 17, 250, 3, 99, 42, 7};

class LlamaFamilyTest : public ::testing::TestWithParam<Architecture> {};

TEST_P(LlamaFamilyTest, DecodeWithCacheEqualsFullRecomputation) {
  const std::string dir = WriteModel(OddConfig(GetParam()), "decode");
  auto backend = MakeCpuBackend();
  auto model = LoadModel(dir, *backend);
  ASSERT_TRUE(model.ok()) << model.status();
  auto cache = (*model)->NewKvCache(32);
  ASSERT_TRUE(cache.ok());
  std::vector<int32_t> sequence = kPrompt;
  auto logits = (*model)->Forward(sequence, 0, *cache);
  ASSERT_TRUE(logits.ok()) << logits.status();
  std::mt19937 rng(3);
  for (int step = 0; step < 6; ++step) {
    // Recompute the whole sequence with a fresh cache: its last logits must equal the cached path.
    auto fresh = (*model)->NewKvCache(32);
    auto full = (*model)->Forward(sequence, 0, *fresh);
    ASSERT_TRUE(full.ok());
    ExpectLogitsClose(ToVector(*logits), ToVector(*full), 1e-5);
    const int32_t next = static_cast<int32_t>(rng() % 251);
    sequence.push_back(next);
    logits = (*model)->Forward({&next, 1}, static_cast<int64_t>(sequence.size()) - 1, *cache);
    ASSERT_TRUE(logits.ok());
  }
}

// Runs prompt + 3 decode steps on `tp` thread-ranks and returns rank 0's logits per step.
std::vector<std::vector<float>> RunTensorParallel(const std::string& dir, int tp) {
  auto group = std::make_shared<testing::ThreadGroup>(tp);
  std::vector<std::vector<std::vector<float>>> per_rank(tp);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < tp; ++rank) {
    threads.emplace_back([&, rank] {
      testing::ThreadCommunicator comm(group, rank);
      auto backend = MakeCpuBackend();
      auto model = LoadModel(dir, *backend, {.tp_rank = rank, .tp_size = tp, .tp_comm = &comm});
      ASSERT_TRUE(model.ok()) << model.status();
      auto cache = (*model)->NewKvCache(16);
      ASSERT_TRUE(cache.ok());
      auto logits = (*model)->Forward(kPrompt, 0, *cache);
      ASSERT_TRUE(logits.ok()) << logits.status();
      per_rank[rank].push_back(ToVector(*logits));
      for (int32_t step = 0; step < 3; ++step) {
        const int32_t token = 5 + 11 * step;
        logits = (*model)->Forward({&token, 1}, std::ssize(kPrompt) + step, *cache);
        ASSERT_TRUE(logits.ok()) << logits.status();
        per_rank[rank].push_back(ToVector(*logits));
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int rank = 1; rank < tp; ++rank) EXPECT_EQ(per_rank[rank], per_rank[0]);
  return per_rank[0];
}

TEST_P(LlamaFamilyTest, TensorParallelShardsMatchTheWholeModel) {
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

TEST_P(LlamaFamilyTest, PipelineStagesMatchTheWholeModel) {
  const std::string dir = WriteModel(OddConfig(GetParam()), "pp");
  auto backend = MakeCpuBackend();
  auto whole = LoadModel(dir, *backend);
  auto first = LoadModel(dir, *backend, {.layer_begin = 0, .layer_end = 1, .last_stage = false});
  auto last = LoadModel(dir, *backend, {.layer_begin = 1, .layer_end = -1, .first_stage = false});
  ASSERT_TRUE(whole.ok() && first.ok() && last.ok());
  auto whole_cache = (*whole)->NewKvCache(16);
  auto first_cache = (*first)->NewKvCache(16);
  auto last_cache = (*last)->NewKvCache(16);
  auto want = (*whole)->Forward(kPrompt, 0, *whole_cache);
  auto hidden = (*first)->Embed(kPrompt);
  ASSERT_TRUE(hidden.ok());
  ASSERT_TRUE((*first)->RunLayers(*hidden, 0, *first_cache).ok());
  ASSERT_TRUE((*last)->RunLayers(*hidden, 0, *last_cache).ok());
  auto last_row = hidden->SliceRows(hidden->dim(0) - 1, hidden->dim(0));
  auto got = (*last)->Logits(*last_row);
  ASSERT_TRUE(got.ok() && want.ok());
  ExpectLogitsClose(ToVector(*got), ToVector(*want), 1e-6);
  EXPECT_FALSE((*last)->Embed(kPrompt).ok());
  EXPECT_FALSE((*first)->Logits(*last_row).ok());
}

INSTANTIATE_TEST_SUITE_P(Architectures, LlamaFamilyTest,
                         ::testing::Values(Architecture::kLlama, Architecture::kQwen3),
                         [](const auto& info) { return std::string(ArchitectureName(info.param)); });

TEST(LlamaModelErrorsTest, TokenOutsideVocabularyIsAnError) {
  const std::string dir = WriteModel(OddConfig(Architecture::kLlama), "vocab");
  auto backend = MakeCpuBackend();
  auto model = LoadModel(dir, *backend);
  ASSERT_TRUE(model.ok());
  auto cache = (*model)->NewKvCache(8);
  const std::vector<int32_t> bad = {1, 251};
  auto logits = (*model)->Forward(bad, 0, *cache);
  EXPECT_EQ(logits.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_NE(logits.status().message().find("token id 251"), absl::string_view::npos);
  EXPECT_EQ((*model)->Forward(kPrompt, 4, *cache).status().code(), absl::StatusCode::kOutOfRange);
}

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

TEST(LlamaModelErrorsTest, MissingTensorIsNamed) {
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

TEST(LlamaModelErrorsTest, WrongShapeIsNamedWithExpectedShape) {
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

TEST(LlamaModelErrorsTest, ShardsThatCannotSplitAreRejected) {
  const std::string dir = WriteModel(OddConfig(Architecture::kLlama), "split");
  auto backend = MakeCpuBackend();
  auto group = std::make_shared<testing::ThreadGroup>(3);
  testing::ThreadCommunicator comm(group, 0);
  auto model = LoadModel(dir, *backend, {.tp_rank = 0, .tp_size = 3, .tp_comm = &comm});
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("not divisible by tp 3"), absl::string_view::npos);
}

}  // namespace
}  // namespace sparkstack
