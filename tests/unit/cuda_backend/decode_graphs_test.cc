// The runner's CUDA-graph seam on the CUDA backend (emulated, where a graph records the launches
// with their arguments and replays them, as CUDA graphs do): decode steps padded to a bucket,
// run eagerly once, captured, then replayed with new inputs in the same device buffers, give the
// real rows exactly the logits of eager, unpadded steps.
#include <algorithm>
#include <filesystem>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/backend/cuda/cuda_backend.h"
#include "runtime/engine/decode_graphs.h"
#include "runtime/model/model.h"
#include "runtime/model/tiny_model.h"

#if defined(SPARKSTACK_CUDA_EMULATION)
#include "kernels/emu/runtime.h"
#endif

namespace sparkstack {
namespace {

namespace fs = std::filesystem;

TEST(DecodeGraphsTest, BucketsAndPadding) {
  EXPECT_EQ(DecodeGraphs::DefaultBuckets(5), (std::vector<int64_t>{1, 2, 4, 5}));
  EXPECT_EQ(DecodeGraphs::DefaultBuckets(40), (std::vector<int64_t>{1, 2, 4, 8, 16, 24, 32, 40}));
  struct NoGraphs final : StepGraphs {
    absl::Status BeginCapture() override { return absl::OkStatus(); }
    absl::StatusOr<int> EndCapture() override { return 0; }
    absl::Status Replay(int) override { return absl::OkStatus(); }
  } graphs;
  DecodeGraphs g(&graphs, {1, 2, 4, 8}, 3);
  HostBatch b;
  b.token_ids = {5, 6, 7};
  b.positions = {10, 3, 20};
  b.query_start = {0, 1, 2, 3};
  b.seq_lens = {11, 4, 21};
  b.block_table = {7, 0, 2, 0, 9, 4};  // [3, 2]
  b.max_blocks = 2;
  b.slot_mapping = {113, 35, 68};
  b.logits_rows = {0, 1, 2};
  b.num_decodes = 3;
  EXPECT_EQ(g.BucketFor(b), 4);
  g.Pad(b, 4);
  EXPECT_EQ(b.block_table, (std::vector<int32_t>{7, 0, 0, 2, 0, 0, 9, 4, 0, 0, 0, 0}));
  EXPECT_EQ(b.max_blocks, 3);
  EXPECT_EQ(b.slot_mapping.back(), -1);
  EXPECT_EQ(b.seq_lens.back(), 1);
  EXPECT_EQ(b.query_start, (std::vector<int32_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(b.logits_rows, (std::vector<int32_t>{0, 1, 2, 3}));
  // Prefill chunks and batches beyond the largest bucket run eagerly.
  HostBatch prefill = b;
  prefill.num_decodes = 2;
  EXPECT_EQ(g.BucketFor(prefill), 0);
  EXPECT_EQ(DecodeGraphs(nullptr, {1, 2}, 3).BucketFor(b), 0);
}

// Fixed device buffers and a KV cache, as the runner keeps them.
class Stepper {
 public:
  Stepper(Model& model, Backend& backend, int64_t max_blocks)
      : model_(model), backend_(backend), max_blocks_(max_blocks) {
    cache_ = *AllocateKvCache(backend, model.kv_cache_spec(), 16);
    workspace_ = Arena(*backend.Allocate(
        DType::kU8, {static_cast<int64_t>(Arena::BufferBytes(model.WorkspaceBytes(
                        {.max_tokens = 64, .max_seqs = 8, .max_logit_rows = 8})))}));
    for (Tensor* t : {&ids_, &positions_, &slots_, &starts_, &lens_, &rows_}) {
      *t = *backend.Allocate(DType::kI32, {64});
    }
    table_ = *backend.Allocate(DType::kI32, {8 * max_blocks});
    hidden_ = *backend.Allocate(DType::kF32, {64, model.config().hidden_size});
    logits_ = *backend.Allocate(DType::kF32, {8, model.config().vocab_size});
  }

  // Uploads `b` and runs its forward through `graphs` (bucket 0: eagerly); returns the logits of
  // the first `real` rows.
  std::vector<float> Run(const HostBatch& b, DecodeGraphs* graphs, int64_t bucket, int64_t real) {
    ForwardBatch batch;
    auto put = [&](const std::vector<int32_t>& v, const Tensor& buffer) {
      Tensor t = *buffer.SliceRows(0, std::ssize(v));
      EXPECT_TRUE(backend_.CopyFromHost(v.data(), t).ok());
      return t;
    };
    batch.token_ids = put(b.token_ids, ids_);
    batch.positions = put(b.positions, positions_);
    batch.logits_rows = put(b.logits_rows, rows_);
    AttentionMetadata& m = batch.attention;
    m.slot_mapping = put(b.slot_mapping, slots_);
    m.query_start = put(b.query_start, starts_);
    m.seq_lens = put(b.seq_lens, lens_);
    m.block_table = *put(b.block_table, table_).Reshape({b.num_seqs(), b.max_blocks});
    m.num_seqs = b.num_seqs();
    m.num_decodes = b.num_decodes;
    m.num_tokens = b.num_tokens();
    m.max_query_len = b.max_query_len;
    m.max_seq_len = b.max_seq_len;
    m.block_size = kKvBlockSize;
    Tensor hidden = *hidden_.SliceRows(0, b.num_tokens());
    Tensor logits = *logits_.SliceRows(0, std::ssize(b.logits_rows));
    auto forward = [&] { return model_.Forward(batch, cache_, workspace_, hidden, &logits); };
    const absl::Status status = graphs ? graphs->Run(bucket, forward) : forward();
    EXPECT_TRUE(status.ok()) << status;
    std::vector<float> out(logits.numel());
    EXPECT_TRUE(backend_.CopyToHost(logits, out.data()).ok());
    out.resize(real * model_.config().vocab_size);
    return out;
  }

 private:
  Model& model_;
  Backend& backend_;
  int64_t max_blocks_;
  KvCache cache_;
  Arena workspace_;
  Tensor ids_, positions_, slots_, starts_, lens_, rows_, table_, hidden_, logits_;
};

// A decode step of three sequences whose contexts sit in blocks {0,1}, {2}, {3,4}.
HostBatch DecodeStep(const std::vector<int32_t>& tokens, const std::vector<int32_t>& lens) {
  const std::vector<std::vector<int32_t>> blocks = {{0, 1}, {2}, {3, 4}};
  HostBatch b;
  b.max_blocks = 2;
  b.query_start = {0};
  for (int s = 0; s < 3; ++s) {
    const int32_t p = lens[s] - 1;
    b.token_ids.push_back(tokens[s]);
    b.positions.push_back(p);
    b.slot_mapping.push_back(blocks[s][p / 16] * 16 + p % 16);
    b.seq_lens.push_back(lens[s]);
    b.query_start.push_back(s + 1);
    b.logits_rows.push_back(s);
    for (int j = 0; j < 2; ++j) {
      b.block_table.push_back(j < std::ssize(blocks[s]) ? blocks[s][j] : 0);
    }
  }
  b.num_decodes = 3;
  b.max_query_len = 1;
  b.max_seq_len = *std::max_element(lens.begin(), lens.end());
  return b;
}

TEST(DecodeGraphsTest, ReplayedStepsEqualEagerOnes) {
#if defined(SPARKSTACK_CUDA_EMULATION)
  emu::SetEmulatedDevice(emu::Gb10Device());
#endif
  CudaBackendOptions options;
  options.max_tokens = 64;
  options.max_linear_k = 256;
  options.max_heads = 8;
  options.max_head_dim = 16;
  options.max_context = 64;
  options.max_decode_seqs = 8;
  options.max_logit_rows = 8;
  auto eager_backend = MakeCudaBackend(options);
  auto graph_backend = MakeCudaBackend(options);
#if !defined(SPARKSTACK_CUDA_EMULATION)
  if (!eager_backend.ok() && absl::IsFailedPrecondition(eager_backend.status())) {
    GTEST_SKIP() << eager_backend.status().message();
  }
#endif
  ASSERT_TRUE(eager_backend.ok() && graph_backend.ok());
  const fs::path dir =
      fs::temp_directory_path() / ("sparkstack_decode_graphs_" + std::to_string(::getpid()));
  ModelConfig config = TinyModelConfig(Architecture::kLlama);
  config.hidden_size = 48;
  config.intermediate_size = 80;
  config.num_layers = 2;
  config.num_heads = 4;
  config.num_kv_heads = 2;
  config.head_dim = 12;
  config.vocab_size = 97;
  config.max_position_embeddings = 64;
  ASSERT_TRUE(WriteTinyModel({.config = config, .seed = 9}, dir.string()).ok());
  auto eager_model = LoadModel(dir.string(), **eager_backend);
  auto graph_model = LoadModel(dir.string(), **graph_backend);
  ASSERT_TRUE(eager_model.ok() && graph_model.ok());
  Stepper eager(**eager_model, **eager_backend, 2);
  Stepper graphed(**graph_model, **graph_backend, 3);
  DecodeGraphs graphs(AsCudaBackend(**graph_backend), {2, 4}, 3);

  std::mt19937 rng(2);
  std::vector<int32_t> lens = {17, 5, 25};  // at most 30 after the 5 steps: within 2 blocks
  for (int step = 0; step < 5; ++step) {
    std::vector<int32_t> tokens(3);
    for (auto& t : tokens) t = static_cast<int32_t>(rng() % 97);
    for (auto& l : lens) ++l;
    HostBatch b = DecodeStep(tokens, lens);
    const std::vector<float> want = eager.Run(b, nullptr, 0, 3);
    const int64_t bucket = graphs.BucketFor(b);
    ASSERT_EQ(bucket, 4);
    graphs.Pad(b, bucket);
    const std::vector<float> got = graphed.Run(b, &graphs, bucket, 3);
    ASSERT_EQ(got, want) << "step " << step;
  }
  EXPECT_EQ(graphs.replays(), 4);  // step 0 warmed up, step 1 captured and replayed, then replays
  fs::remove_all(dir);
}

}  // namespace
}  // namespace sparkstack
