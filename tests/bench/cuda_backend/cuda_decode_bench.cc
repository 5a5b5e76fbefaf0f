// cuda_decode_bench: decode tokens/s of a model on the CUDA backend at several batch sizes, next
// to the roofline of the same run: tokens/s <= batch x read bandwidth / bytes read per step, with
// the bandwidth measured here (a device-to-device copy of 1 GiB) and the bytes counted from the
// model (every weight once, the embedding rows of the batch, the KV cache of every sequence).
//
//   cuda_decode_bench --model DIR [--batches 1,8,32] [--context 512] [--steps 64] [--no-graphs]
//
// Each batch: `batch` sequences prefilled to `context` tokens, then `steps` decode steps timed
// (graphs per batch-size bucket unless --no-graphs; the first two steps warm up and capture and
// are not timed). Prints one line per batch: tokens/s, roofline tokens/s, their ratio.
#include <cuda_runtime.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "runtime/backend/cuda/cuda_backend.h"
#include "runtime/core/arena.h"
#include "runtime/engine/decode_graphs.h"
#include "runtime/model/checkpoint.h"
#include "runtime/model/safetensors.h"
#include "runtime/model/model.h"

namespace sparkstack {
namespace {

struct Flags {
  std::string model;
  std::vector<int64_t> batches = {1, 8, 32};
  int64_t context = 512;
  int64_t steps = 64;
  bool graphs = true;
};

double CopyBandwidth() {
  const size_t bytes = size_t{1} << 30;
  void *a = nullptr, *b = nullptr;
  if (cudaMalloc(&a, bytes) != cudaSuccess || cudaMalloc(&b, bytes) != cudaSuccess) return 0;
  cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);
  cudaDeviceSynchronize();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i) cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);
  cudaDeviceSynchronize();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  cudaFree(a);
  cudaFree(b);
  return 2.0 * 5 * bytes / s;  // read + write bytes per second
}

int Run(const Flags& f) {
  int64_t max_batch = 1;
  for (int64_t b : f.batches) max_batch = std::max(max_batch, b);
  auto config = LoadModelConfig(f.model);
  if (!config.ok()) return std::fprintf(stderr, "%s\n", config.status().ToString().c_str()), 1;
  CudaBackendOptions options;
  options.max_tokens = std::max<int64_t>(f.context, max_batch);
  options.max_decode_seqs = max_batch;
  options.max_logit_rows = max_batch;
  options.max_linear_k =
      std::max({config->hidden_size, config->intermediate_size, config->num_heads * config->head_dim});
  options.max_heads = config->num_heads;
  options.max_head_dim = config->head_dim;
  const int64_t blocks_per_seq = (f.context + f.steps + 16) / 16 + 1;
  options.max_context = blocks_per_seq * 16;
  auto backend = MakeCudaBackend(options);
  if (!backend.ok()) return std::fprintf(stderr, "%s\n", backend.status().ToString().c_str()), 1;
  Backend& b = **backend;
  auto model = LoadModel(f.model, b, {.max_model_len = options.max_context});
  if (!model.ok()) return std::fprintf(stderr, "%s\n", model.status().ToString().c_str()), 1;
  const ModelConfig& c = (*model)->config();
  auto checkpoint = Checkpoint::Open(f.model);
  // Every weight is read once per step, except the embedding table (a row per token) when the
  // head does not share it.
  double weight_bytes = static_cast<double>(checkpoint->TotalTensorBytes());
  if (const SafetensorsEntry* e = checkpoint->Find("model.embed_tokens.weight");
      e != nullptr && !c.tie_word_embeddings) {
    weight_bytes -= static_cast<double>(e->end - e->begin);
  }
  const double bandwidth = CopyBandwidth();
  std::printf("model %s: %.2f GB of weights; device copy bandwidth %.1f GB/s\n", f.model.c_str(),
              weight_bytes / 1e9, bandwidth / 1e9);

  for (int64_t batch : f.batches) {
    auto cache = AllocateKvCache(b, (*model)->kv_cache_spec(), batch * blocks_per_seq);
    if (!cache.ok()) return std::fprintf(stderr, "%s\n", cache.status().ToString().c_str()), 1;
    Arena workspace(*b.Allocate(DType::kU8, {static_cast<int64_t>(Arena::BufferBytes(
                                                (*model)->WorkspaceBytes({.max_tokens = options.max_tokens,
                                                                          .max_seqs = batch,
                                                                          .max_logit_rows = batch})))}));
    auto upload = [&](const std::vector<int32_t>& v, Tensor& buffer) {
      Tensor t = *buffer.SliceRows(0, std::ssize(v));
      (void)b.CopyFromHost(v.data(), t);
      return t;
    };
    Tensor ids = *b.Allocate(DType::kI32, {options.max_tokens}), pos = ids, slots = ids;
    pos = *b.Allocate(DType::kI32, {options.max_tokens});
    slots = *b.Allocate(DType::kI32, {options.max_tokens});
    Tensor starts = *b.Allocate(DType::kI32, {batch + 1}), lens = *b.Allocate(DType::kI32, {batch});
    Tensor rows = *b.Allocate(DType::kI32, {batch});
    Tensor table = *b.Allocate(DType::kI32, {batch * blocks_per_seq});
    Tensor hidden_buf = *b.Allocate(DType::kF32, {options.max_tokens, c.hidden_size});
    Tensor logits_buf = *b.Allocate(DType::kF32, {batch, c.vocab_size});
    DecodeGraphs graphs(f.graphs ? AsCudaBackend(b) : nullptr, {batch}, blocks_per_seq);
    auto step = [&](const HostBatch& h, int64_t bucket) -> absl::Status {
      ForwardBatch fb;
      fb.token_ids = upload(h.token_ids, ids);
      fb.positions = upload(h.positions, pos);
      fb.logits_rows = upload(h.logits_rows, rows);
      AttentionMetadata& m = fb.attention;
      m.slot_mapping = upload(h.slot_mapping, slots);
      m.query_start = upload(h.query_start, starts);
      m.seq_lens = upload(h.seq_lens, lens);
      m.block_table = *upload(h.block_table, table).Reshape({h.num_seqs(), h.max_blocks});
      m.num_seqs = h.num_seqs();
      m.num_decodes = h.num_decodes;
      m.num_tokens = h.num_tokens();
      m.max_query_len = h.max_query_len;
      m.max_seq_len = h.max_seq_len;
      m.block_size = 16;
      Tensor hidden = *hidden_buf.SliceRows(0, h.num_tokens());
      Tensor logits = *logits_buf.SliceRows(0, std::ssize(h.logits_rows));
      return graphs.Run(bucket, [&] {
        return (*model)->Forward(fb, *cache, workspace, hidden, &logits);
      });
    };
    auto table_of = [&](int64_t s) {
      std::vector<int32_t> t(blocks_per_seq);
      for (int64_t j = 0; j < blocks_per_seq; ++j) t[j] = static_cast<int32_t>(s * blocks_per_seq + j);
      return t;
    };
    // Prefill each sequence to `context` tokens, one at a time.
    for (int64_t s = 0; s < batch; ++s) {
      HostBatch h;
      for (int64_t p = 0; p < f.context; ++p) {
        h.token_ids.push_back(static_cast<int32_t>((s * 7919 + p * 104729) % c.vocab_size));
        h.positions.push_back(static_cast<int32_t>(p));
        h.slot_mapping.push_back(static_cast<int32_t>(s * blocks_per_seq * 16 + p));
      }
      h.query_start = {0, static_cast<int32_t>(f.context)};
      h.seq_lens = {static_cast<int32_t>(f.context)};
      h.block_table = table_of(s);
      h.max_blocks = blocks_per_seq;
      h.logits_rows = {static_cast<int32_t>(f.context - 1)};
      h.max_query_len = f.context;
      h.max_seq_len = f.context;
      if (auto st = step(h, 0); !st.ok()) return std::fprintf(stderr, "%s\n", st.ToString().c_str()), 1;
    }
    double seconds = 0;
    for (int64_t i = 0; i < f.steps + 2; ++i) {
      HostBatch h;
      h.query_start = {0};
      for (int64_t s = 0; s < batch; ++s) {
        const int64_t p = f.context + i;
        h.token_ids.push_back(static_cast<int32_t>((s + i * 31) % c.vocab_size));
        h.positions.push_back(static_cast<int32_t>(p));
        h.slot_mapping.push_back(static_cast<int32_t>(s * blocks_per_seq * 16 + p));
        h.seq_lens.push_back(static_cast<int32_t>(p + 1));
        h.query_start.push_back(static_cast<int32_t>(s + 1));
        h.logits_rows.push_back(static_cast<int32_t>(s));
        const auto t = table_of(s);
        h.block_table.insert(h.block_table.end(), t.begin(), t.end());
      }
      h.max_blocks = blocks_per_seq;
      h.num_decodes = batch;
      h.max_query_len = 1;
      h.max_seq_len = f.context + i + 1;
      (void)b.Synchronize();
      const auto start = std::chrono::steady_clock::now();
      if (auto st = step(h, graphs.BucketFor(h)); !st.ok()) {
        return std::fprintf(stderr, "%s\n", st.ToString().c_str()), 1;
      }
      (void)b.Synchronize();
      if (i >= 2) {
        seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      }
    }
    const double kv_bytes = static_cast<double>((*model)->kv_cache_spec().BytesPerToken()) *
                            batch * (f.context + f.steps / 2);
    const double step_bytes = weight_bytes + kv_bytes;
    const double measured = batch * f.steps / seconds;
    const double roofline = batch * bandwidth / step_bytes;
    std::printf("batch %3lld: %9.1f tokens/s, roofline %9.1f tokens/s (%.2f GB per step), ratio %.2f%s\n",
                static_cast<long long>(batch), measured, roofline, step_bytes / 1e9,
                measured / roofline, f.graphs ? "" : " (no graphs)");
  }
  return 0;
}

}  // namespace
}  // namespace sparkstack

int main(int argc, char** argv) {
  sparkstack::Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--model") {
      f.model = next();
    } else if (a == "--batches") {
      f.batches.clear();
      for (auto part : absl::StrSplit(next(), ',')) {
        int64_t v = 0;
        if (absl::SimpleAtoi(part, &v) && v > 0) f.batches.push_back(v);
      }
    } else if (a == "--context") {
      f.context = std::atoll(next().c_str());
    } else if (a == "--steps") {
      f.steps = std::atoll(next().c_str());
    } else if (a == "--no-graphs") {
      f.graphs = false;
    } else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  if (f.model.empty() || f.batches.empty() || f.context < 1 || f.steps < 1) {
    std::fprintf(stderr, "usage: %s --model DIR [--batches 1,8,32] [--context 512] [--steps 64] "
                         "[--no-graphs]\n", argv[0]);
    return 2;
  }
  return sparkstack::Run(f);
}
