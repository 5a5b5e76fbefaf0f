#include "runtime/engine/rank_backend.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "runtime/backend/backend_factory.h"
#include "runtime/backend/cuda/kernel_config.h"
#include "runtime/backend/cuda/memory_plan.h"
#include "runtime/backend/cuda/self_check.h"
#include "runtime/core/arena.h"
#include "runtime/core/status_macros.h"
#include "runtime/model/checkpoint.h"
#include "runtime/model/kv_cache.h"
#include "runtime/model/tiny_model.h"
#include "runtime/quant/nvfp4_checkpoint_writer.h"
#include "runtime/quant/quant_scheme.h"
#include "spdlog/spdlog.h"

namespace sparkstack {
namespace {

namespace fs = std::filesystem;

int64_t KvHeadsOf(const ModelConfig& c, int tp) {
  return c.num_kv_heads >= tp ? c.num_kv_heads / tp : 1;
}

int64_t StageLayers(const ModelConfig& c, const ModelShard& shard) {
  const int64_t end = shard.layer_end < 0 ? c.num_layers : shard.layer_end;
  return end - shard.layer_begin;
}

// An upper bound of the model's Model::WorkspaceBytes for these limits (the decoder stack's
// formula, with a margin): the plan is made before the model exists. The runner allocates the
// model's own figure from the arena; a model needing more than this margin shrinks the KV cache.
int64_t EstimateWorkspace(const ModelConfig& c, const ModelShard& shard, int64_t tokens,
                          int64_t rows) {
  const int tp = shard.tp_size;
  auto r = [](int64_t bytes) { return static_cast<int64_t>(Arena::Reserved(bytes)); };
  const int64_t heads = c.num_heads / tp, kv = KvHeadsOf(c, tp), d = c.head_dim;
  const int64_t inter = (c.intermediate_size + tp - 1) / tp;
  const int64_t attention = 2 * r(tokens * heads * d * 4) + 2 * r(tokens * kv * d * 4);
  const int64_t mlp = 2 * r(tokens * inter * 4);
  const int64_t chunk = (c.vocab_size + tp - 1) / tp;
  const int64_t head = shard.last_stage ? r(rows * c.hidden_size * 4) +
                                              (tp > 1 ? 2 * r(rows * chunk * 4) +
                                                            r(tp * rows * chunk * 4)
                                                      : 0)
                                        : 0;
  const int64_t total = 2 * r(tokens * c.hidden_size * 4) + std::max({attention, mlp, head});
  return static_cast<int64_t>(Arena::BufferBytes(total + total / 4 + (1 << 20)));
}

// The runner's step buffers (ids, metadata, hidden states, logits) and the RoPE tables.
int64_t EstimateBuffers(const ModelConfig& c, const EngineOptions& o, bool last_stage) {
  const int64_t t = o.max_num_batched_tokens, s = o.max_num_seqs;
  const int64_t blocks_per_seq = (o.max_model_len + kKvBlockSize - 1) / kKvBlockSize;
  const int64_t indices = 4 * (3 * t + 3 * s + 1 + s * blocks_per_seq);
  const int64_t tables = 2 * 4 * o.max_model_len * (c.head_dim / 2 + 1);
  return indices + 4 * t * c.hidden_size + (last_stage ? 4 * s * c.vocab_size : 0) + tables +
         16 * 256;
}

CudaBackendOptions CudaOptionsFor(const ModelConfig& c, const EngineOptions& o,
                                  const ModelShard& shard) {
  CudaBackendOptions cuda;
  cuda.max_tokens = o.max_num_batched_tokens;
  cuda.max_decode_seqs = o.max_num_seqs;
  cuda.max_logit_rows = o.max_num_seqs;
  cuda.max_linear_k =
      std::max({c.hidden_size, c.intermediate_size, c.num_heads * c.head_dim, int64_t{16}});
  cuda.max_heads = std::max<int64_t>(1, c.num_heads / shard.tp_size);
  cuda.max_head_dim = c.head_dim;
  // Decode graphs size the attention grid from the block table's capacity.
  cuda.max_context = (o.max_model_len + kKvBlockSize - 1) / kKvBlockSize * kKvBlockSize;
  cuda.sampling_edits = std::max<int64_t>(int64_t{1} << 16, c.vocab_size + 1024);
  return cuda;
}

// One sequence through the probe model: a 21-token prefill, then two decodes; the logits of each
// step's last token, concatenated.
absl::StatusOr<std::vector<float>> ProbeLogits(const std::string& dir, Backend& backend) {
  SPARKSTACK_ASSIGN_OR_RETURN(std::unique_ptr<Model> model,
                              LoadModel(dir, backend, {.max_model_len = 64}));
  const ModelConfig& c = model->config();
  SPARKSTACK_ASSIGN_OR_RETURN(KvCache cache, AllocateKvCache(backend, model->kv_cache_spec(), 4));
  SPARKSTACK_ASSIGN_OR_RETURN(
      Tensor buffer,
      backend.Allocate(DType::kU8, {static_cast<int64_t>(Arena::BufferBytes(model->WorkspaceBytes(
                                       {.max_tokens = 32, .max_seqs = 1, .max_logit_rows = 1})))}));
  Arena workspace(std::move(buffer));
  auto upload = [&](const std::vector<int32_t>& v) -> absl::StatusOr<Tensor> {
    Tensor host = Tensor::Zeros(DType::kI32, {std::ssize(v)});
    std::copy(v.begin(), v.end(), host.data_as<int32_t>());
    return backend.Upload(host);
  };
  std::mt19937 rng(17);
  std::vector<int32_t> tokens(23);
  for (int32_t& t : tokens) t = static_cast<int32_t>(rng() % c.vocab_size);
  const std::vector<int32_t> table = {2, 0, 3};  // blocks out of order
  std::vector<float> all;
  int64_t done = 0;
  for (int64_t count : {21, 1, 1}) {
    std::vector<int32_t> ids, positions, slots;
    for (int64_t p = done; p < done + count; ++p) {
      ids.push_back(tokens[p]);
      positions.push_back(static_cast<int32_t>(p));
      slots.push_back(table[p / kKvBlockSize] * static_cast<int32_t>(kKvBlockSize) +
                      static_cast<int32_t>(p % kKvBlockSize));
    }
    done += count;
    ForwardBatch batch;
    SPARKSTACK_ASSIGN_OR_RETURN(batch.token_ids, upload(ids));
    SPARKSTACK_ASSIGN_OR_RETURN(batch.positions, upload(positions));
    SPARKSTACK_ASSIGN_OR_RETURN(batch.logits_rows, upload({static_cast<int32_t>(count - 1)}));
    AttentionMetadata& m = batch.attention;
    m.num_seqs = 1;
    m.num_decodes = count == 1 ? 1 : 0;
    m.num_tokens = count;
    m.max_query_len = count;
    m.max_seq_len = done;
    m.block_size = kKvBlockSize;
    SPARKSTACK_ASSIGN_OR_RETURN(m.query_start, upload({0, static_cast<int32_t>(count)}));
    SPARKSTACK_ASSIGN_OR_RETURN(m.seq_lens, upload({static_cast<int32_t>(done)}));
    SPARKSTACK_ASSIGN_OR_RETURN(m.slot_mapping, upload(slots));
    SPARKSTACK_ASSIGN_OR_RETURN(Tensor flat, upload(table));
    SPARKSTACK_ASSIGN_OR_RETURN(m.block_table, flat.Reshape({1, 3}));
    SPARKSTACK_ASSIGN_OR_RETURN(Tensor hidden, backend.Allocate(DType::kF32, {count, c.hidden_size}));
    SPARKSTACK_ASSIGN_OR_RETURN(Tensor logits, backend.Allocate(DType::kF32, {1, c.vocab_size}));
    SPARKSTACK_RETURN_IF_ERROR(model->Forward(batch, cache, workspace, hidden, &logits));
    std::vector<float> row(c.vocab_size);
    SPARKSTACK_RETURN_IF_ERROR(backend.CopyToHost(logits, row.data()));
    all.insert(all.end(), row.begin(), row.end());
  }
  return all;
}

// The whole-model probe: a tiny model of the served architecture, dense bf16 and NVFP4, on the
// CUDA probe backend and the CPU backend.
absl::Status CheckProbeModels(const ModelConfig& served, Backend& cuda, Backend& cpu) {
  const fs::path root = fs::temp_directory_path() /
                        absl::StrCat("sparkstack_probe_", getpid());
  fs::remove_all(root);
  struct Cleanup {
    fs::path dir;
    ~Cleanup() {
      std::error_code e;
      fs::remove_all(dir, e);
    }
  } cleanup{root};
  ModelConfig config = TinyModelConfig(served.architecture);
  config.torch_dtype = DType::kBF16;
  config.max_position_embeddings = 64;
  const std::string dense = (root / "dense").string();
  const std::string nvfp4 = (root / "nvfp4").string();
  SPARKSTACK_RETURN_IF_ERROR(WriteTinyModel({.config = config, .seed = 5}, dense));
  SPARKSTACK_RETURN_IF_ERROR(QuantizeCheckpointToNvfp4(dense, nvfp4, {}).status());
  for (const auto& [dir, what, tolerance] :
       {std::tuple{dense, "dense bf16", 1e-2}, std::tuple{nvfp4, "NVFP4", 2e-2}}) {
    SPARKSTACK_ASSIGN_OR_RETURN(std::vector<float> want, ProbeLogits(dir, cpu));
    SPARKSTACK_ASSIGN_OR_RETURN(std::vector<float> got, ProbeLogits(dir, cuda));
    double worst = 0.0, scale = 1e-30;
    for (size_t i = 0; i < want.size(); ++i) {
      scale = std::max(scale, std::fabs(double{want[i]}));
      worst = std::isfinite(got[i]) ? std::max(worst, std::fabs(double{got[i]} - want[i]))
                                    : std::numeric_limits<double>::infinity();
    }
    if (!(worst <= tolerance * scale)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cuda self-check: the whole-model logits of the tiny ",
          std::string(ArchitectureName(config.architecture)),
          " probe (", what, ") differ from the CPU backend's by ", worst, " > ", tolerance,
          " x max |logit| ", scale, "; refusing to serve"));
    }
  }
  return absl::OkStatus();
}

// Microseconds of one Linear of weight `w` on m rows with the kernel choice `forced`.
absl::StatusOr<double> TimeLinear(Backend& b, CudaBackendControl& control, const Weight& w,
                                  int64_t m, const KernelConfig& forced) {
  control.set_kernels(forced);
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor x, b.Allocate(DType::kF32, {m, w.cols()}));
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor y, b.Allocate(DType::kF32, {m, w.rows()}));
  for (int i = 0; i < 2; ++i) SPARKSTACK_RETURN_IF_ERROR(b.Linear(x, w, y));
  SPARKSTACK_RETURN_IF_ERROR(b.Synchronize());
  constexpr int kRuns = 10;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kRuns; ++i) SPARKSTACK_RETURN_IF_ERROR(b.Linear(x, w, y));
  SPARKSTACK_RETURN_IF_ERROR(b.Synchronize());
  const auto elapsed = std::chrono::steady_clock::now() - start;
  return std::chrono::duration<double, std::micro>(elapsed).count() / kRuns;
}

// The sweep of kernel_config.h on a layer as wide as the model (at most 4096 x 4096).
absl::StatusOr<KernelConfig> Sweep(Backend& b, const ModelConfig& c) {
  CudaBackendControl* control = AsCudaBackend(b);
  if (control == nullptr) return absl::InternalError("kernel sweep needs the CUDA backend");
  const int64_t n = std::min<int64_t>(c.hidden_size, 4096) / 16 * 16;
  const int64_t k = std::max<int64_t>(n, 16);
  std::mt19937 rng(3);
  Tensor dense = Tensor::Zeros(DType::kBF16, {n, k});
  for (int64_t i = 0; i < dense.numel(); ++i) {
    dense.data_as<uint16_t>()[i] = static_cast<uint16_t>(0x3c00 + rng() % 0x200);
  }
  Tensor codes = Tensor::Zeros(DType::kU8, {n, k / 2});
  for (int64_t i = 0; i < codes.numel(); ++i) codes.data_as<uint8_t>()[i] = rng() & 0xff;
  Tensor scales = Tensor::Zeros(DType::kF8E4M3, {n, k / 16});
  for (int64_t i = 0; i < scales.numel(); ++i) scales.data_as<uint8_t>()[i] = 0x30 + rng() % 16;
  SPARKSTACK_ASSIGN_OR_RETURN(Weight dense_host, Weight::Dense(dense));
  SPARKSTACK_ASSIGN_OR_RETURN(Weight dense_w, b.PrepareWeight(dense_host));
  SPARKSTACK_ASSIGN_OR_RETURN(
      Weight fp4_host, Weight::Nvfp4({.codes = codes, .block_scales = scales, .global_scale = 1.0f}));
  SPARKSTACK_ASSIGN_OR_RETURN(Weight fp4_w, b.PrepareWeight(fp4_host));
  const int64_t kAlways = std::numeric_limits<int32_t>::max();
  const KernelConfig saved = control->kernels();
  auto result = TuneKernelConfig([&](const std::string& kernel, int64_t m) -> absl::StatusOr<double> {
    KernelConfig forced = saved;
    if (kernel == "dense_gemv") forced.dense_gemv_max_m = kAlways;
    if (kernel == "dense_gemm") forced.dense_gemv_max_m = 0;
    if (kernel == "nvfp4_decode") forced.nvfp4_decode_max_m = kAlways;
    if (kernel == "nvfp4_prefill") forced.nvfp4_decode_max_m = 0;
    const bool fp4 = absl::StartsWith(kernel, "nvfp4");
    return TimeLinear(b, *control, fp4 ? fp4_w : dense_w, m, forced);
  });
  control->set_kernels(saved);
  return result;
}

absl::StatusOr<RankBackend> CreateCudaRankBackend(const EngineOptions& options,
                                                  const ModelConfig& config,
                                                  const ModelShard& shard) {
  SPARKSTACK_ASSIGN_OR_RETURN(cuda_backend::DeviceProperties device, cuda_backend::QueryDevice(0));
  CudaBackendOptions cuda = CudaOptionsFor(config, options, shard);
  {
    // The checks run on a probe backend of small scratch, released before the plan is made.
    CudaBackendOptions probe_options;
    probe_options.max_tokens = 128;
    probe_options.max_linear_k = 512;
    probe_options.max_heads = 8;
    probe_options.max_head_dim = 64;
    probe_options.max_context = 1024;
    probe_options.max_decode_seqs = 4;
    probe_options.max_logit_rows = 8;
    SPARKSTACK_ASSIGN_OR_RETURN(std::unique_ptr<Backend> probe, MakeCudaBackend(probe_options));
    std::unique_ptr<Backend> cpu = MakeCpuBackend({.threads = std::max(1, options.threads)});
    SPARKSTACK_RETURN_IF_ERROR(SelfCheckCudaOps(*probe, *cpu));
    SPARKSTACK_RETURN_IF_ERROR(CheckProbeModels(config, *probe, *cpu));

    const std::string cache = KernelConfigCachePath();
    const std::string key = KernelConfigKey(device.name, device.cc_major, device.cc_minor,
                                            device.smem_per_block_optin,
                                            {.n = config.hidden_size, .k = config.hidden_size});
    absl::StatusOr<KernelConfig> tuned = ReadCachedKernelConfig(cache, key);
    if (!tuned.ok()) {
      spdlog::info("cuda: no kernel configuration cached for {} ({}); running the sweep", key,
                   std::string(tuned.status().message()));
      SPARKSTACK_ASSIGN_OR_RETURN(tuned, Sweep(*probe, config));
      if (absl::Status s = WriteCachedKernelConfig(cache, key, *tuned); !s.ok()) {
        spdlog::warn("cuda: kernel configuration not cached: {}", std::string(s.message()));
      }
    }
    cuda.kernels = *tuned;
  }

  SPARKSTACK_ASSIGN_OR_RETURN(cuda_backend::MemoryFacts facts, cuda_backend::QueryMemory(0));
  SPARKSTACK_ASSIGN_OR_RETURN(int64_t weights,
                              EstimateShardWeightBytes(options.model_dir, config, shard));
  const int tp = shard.tp_size;
  const int64_t blocks_per_seq = (options.max_model_len + kKvBlockSize - 1) / kKvBlockSize;
  const KvCacheSpec kv{.num_layers = StageLayers(config, shard),
                       .kv_heads = KvHeadsOf(config, tp),
                       .head_dim = config.head_dim,
                       .v_head_dim = config.head_dim,
                       .dtype = DType::kF32};
  const MemoryNeeds needs{
      .weights = weights,
      .workspace = EstimateWorkspace(config, shard, options.max_num_batched_tokens,
                                     options.max_num_seqs),
      .scratch = CudaScratchBytes(cuda),
      .buffers = EstimateBuffers(config, options, shard.last_stage),
      .kv_block_bytes = kv.BytesPerToken() * kKvBlockSize,
      .kv_min_blocks = 1,
      .kv_max_blocks = options.max_num_seqs * blocks_per_seq,
      .kv_bytes = options.kv_cache_bytes,
      .kv_fraction = options.kv_cache_memory_fraction};
  SPARKSTACK_ASSIGN_OR_RETURN(MemoryPlan plan, PlanMemory(facts, needs));
  cuda.arena_bytes = plan.arena;
  RankBackend out;
  SPARKSTACK_ASSIGN_OR_RETURN(out.backend, MakeCudaBackend(cuda));
  out.planned_kv_blocks = plan.kv_blocks;
  out.summary = absl::StrCat("cuda on ", device.name, " (", device.cc_major, ".", device.cc_minor,
                             "): self-check passed; kernels: dense GEMV up to m=",
                             cuda.kernels.dense_gemv_max_m, ", NVFP4 decode up to m=",
                             cuda.kernels.nvfp4_decode_max_m, "; ", plan.summary);
  return out;
}

}  // namespace

absl::StatusOr<int64_t> EstimateShardWeightBytes(const std::string& model_dir,
                                                 const ModelConfig& config,
                                                 const ModelShard& shard) {
  SPARKSTACK_ASSIGN_OR_RETURN(Checkpoint checkpoint, Checkpoint::Open(model_dir));
  const int64_t end = shard.layer_end < 0 ? config.num_layers : shard.layer_end;
  const int64_t tp = shard.tp_size;
  int64_t total = 0;
  for (const std::string& name : checkpoint.TensorNames()) {
    const SafetensorsEntry* e = checkpoint.Find(name);
    if (e == nullptr) continue;
    const int64_t bytes = static_cast<int64_t>(e->end - e->begin);
    const int64_t split = (bytes + tp - 1) / tp + 256;
    if (absl::StartsWith(name, "model.layers.")) {
      const std::string_view rest = std::string_view(name).substr(13);
      int64_t layer = -1;
      if (!absl::SimpleAtoi(std::string(rest.substr(0, rest.find('.'))), &layer)) continue;
      if (layer < shard.layer_begin || layer >= end) continue;
      // Norm vectors are replicated; matrices are split over the tensor-parallel group.
      total += e->shape.size() >= 2 ? split : bytes + 256;
    } else if (name == "model.embed_tokens.weight") {
      if (shard.first_stage) total += split;
      if (shard.last_stage && config.tie_word_embeddings) total += split;
    } else if (absl::StartsWith(name, "lm_head.")) {
      if (shard.last_stage) total += split;
    } else if (name == "model.norm.weight") {
      if (shard.last_stage) total += bytes + 256;
    }
  }
  return total;
}

absl::StatusOr<RankBackend> CreateRankBackend(const EngineOptions& options,
                                              const ModelConfig& config,
                                              const ModelShard& shard) {
  SPARKSTACK_ASSIGN_OR_RETURN(BackendKind kind, ParseBackendKind(options.backend.empty()
                                                                     ? "cpu"
                                                                     : options.backend));
  switch (kind) {
    case BackendKind::kCpu: {
      RankBackend out;
      out.backend = MakeCpuBackend({.threads = std::max(1, options.threads)});
      out.summary = absl::StrCat("cpu with ", std::max(1, options.threads), " threads");
      return out;
    }
    case BackendKind::kCuda:
      return CreateCudaRankBackend(options, config, shard);
  }
  return absl::InvalidArgumentError("unknown backend");
}

}  // namespace sparkstack
