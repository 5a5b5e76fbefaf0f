#include "runtime/model/llama_model.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/core/status_macros.h"
#include "runtime/model/linear_loader.h"
#include "runtime/model/rope_frequencies.h"
#include "runtime/model/sharding.h"
#include "runtime/parallel/communicator.h"

namespace sparkstack {
namespace {

struct LlamaLayer {
  Tensor attn_norm;  // [hidden]
  Tensor mlp_norm;   // [hidden]
  Tensor q_norm;     // [head_dim], Qwen3 only
  Tensor k_norm;     // [head_dim], Qwen3 only
  Weight q, k, v, o, gate, up, down;
};

// The shard's sizes, derived once from the config and the tensor-parallel rank.
struct LocalDims {
  int64_t heads = 0;
  int64_t kv_heads = 0;
  Range q_heads;       // global q heads of this rank
  Range kv_head_rows;  // global kv heads of this rank
  Range intermediate;
  Range vocab;
};

absl::StatusOr<LocalDims> ComputeLocalDims(const ModelConfig& c, const ModelShard& shard) {
  const int64_t tp = shard.tp_size;
  const int64_t rank = shard.tp_rank;
  if (tp < 1 || rank < 0 || rank >= tp) {
    return absl::InvalidArgumentError(absl::StrCat("tensor-parallel rank ", rank, " of ", tp));
  }
  if (c.num_heads % tp != 0) {
    return absl::InvalidArgumentError(absl::StrCat("num_attention_heads ", c.num_heads,
                                                   " is not divisible by tp ", tp));
  }
  if (c.num_kv_heads >= tp ? c.num_kv_heads % tp != 0 : tp % c.num_kv_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "num_key_value_heads ", c.num_kv_heads, " must divide or be a multiple of tp ", tp));
  }
  if (tp > 1 && shard.tp_comm == nullptr) {
    return absl::InvalidArgumentError("tp > 1 needs a tensor-parallel communicator");
  }
  LocalDims d;
  d.heads = c.num_heads / tp;
  d.q_heads = {rank * d.heads, (rank + 1) * d.heads};
  if (c.num_kv_heads >= tp) {
    d.kv_heads = c.num_kv_heads / tp;
    d.kv_head_rows = {rank * d.kv_heads, (rank + 1) * d.kv_heads};
  } else {
    d.kv_heads = 1;  // replicated: the kv head this rank's q heads all read
    const int64_t kv = d.q_heads.begin / (c.num_heads / c.num_kv_heads);
    d.kv_head_rows = {kv, kv + 1};
  }
  d.intermediate = BalancedSplit(c.intermediate_size, tp, rank);
  d.vocab = ChunkedSplit(c.vocab_size, tp, rank);
  return d;
}

class LlamaModel final : public Model {
 public:
  LlamaModel(const ModelConfig& config, Backend& backend, const ModelShard& shard, LocalDims dims)
      : config_(config),
        backend_(backend),
        shard_(shard),
        dims_(dims),
        inv_freq_(RopeInverseFrequencies(config)) {}

  absl::Status Load(const Checkpoint& ckpt);

  const ModelConfig& config() const override { return config_; }
  const ModelShard& shard() const override { return shard_; }

  absl::StatusOr<KvCache> NewKvCache(int64_t capacity) override {
    if (capacity <= 0 || capacity > config_.max_position_embeddings) {
      return absl::InvalidArgumentError(absl::StrCat("kv cache capacity ", capacity,
                                                     " must be in [1, max_position_embeddings = ",
                                                     config_.max_position_embeddings, "]"));
    }
    KvCache cache;
    cache.capacity = capacity;
    for (size_t l = 0; l < layers_.size(); ++l) {
      cache.k.push_back(backend_.Allocate(DType::kF32, {capacity, dims_.kv_heads, head_dim()}));
      cache.v.push_back(backend_.Allocate(DType::kF32, {capacity, dims_.kv_heads, head_dim()}));
    }
    return cache;
  }

  absl::StatusOr<Tensor> Embed(std::span<const int32_t> tokens) override;
  absl::Status RunLayers(Tensor& hidden, int64_t start, KvCache& cache) override;
  absl::StatusOr<Tensor> Logits(const Tensor& hidden) override;

 private:
  int64_t head_dim() const { return config_.head_dim; }
  int64_t hidden_size() const { return config_.hidden_size; }
  float eps() const { return static_cast<float>(config_.rms_norm_eps); }

  // Sums a row-parallel partial result over the tensor-parallel group.
  absl::Status AllReduce(Tensor& x) {
    if (shard_.tp_size == 1) return absl::OkStatus();
    return shard_.tp_comm->AllReduceSum(x.data(), x.numel(), x.dtype());
  }

  absl::Status Attention(const LlamaLayer& layer, size_t index, Tensor& hidden, int64_t start,
                         KvCache& cache);
  absl::Status Mlp(const LlamaLayer& layer, Tensor& hidden);

  ModelConfig config_;
  Backend& backend_;
  ModelShard shard_;
  LocalDims dims_;
  std::vector<float> inv_freq_;
  Tensor embedding_;   // [local vocab, hidden] (first stage)
  Tensor final_norm_;  // [hidden] (last stage)
  Weight lm_head_;     // [local vocab, hidden] (last stage)
  std::vector<LlamaLayer> layers_;
};

absl::Status LlamaModel::Load(const Checkpoint& ckpt) {
  const int64_t hidden = hidden_size();
  const int64_t d = head_dim();
  const bool needs_embedding = shard_.first_stage || (shard_.last_stage && config_.tie_word_embeddings);
  Tensor full_embedding;
  if (needs_embedding) {
    SPARKSTACK_ASSIGN_OR_RETURN(full_embedding, LoadFloatTensor(ckpt, "model.embed_tokens.weight",
                                                                {config_.vocab_size, hidden}));
  }
  if (shard_.first_stage) {
    SPARKSTACK_ASSIGN_OR_RETURN(embedding_,
                                full_embedding.SliceRows(dims_.vocab.begin, dims_.vocab.end));
  }
  if (shard_.last_stage) {
    SPARKSTACK_ASSIGN_OR_RETURN(final_norm_, LoadFloatTensor(ckpt, "model.norm.weight", {hidden}));
    Weight head;
    if (config_.tie_word_embeddings) {
      SPARKSTACK_ASSIGN_OR_RETURN(head, Weight::Dense(full_embedding));
    } else {
      SPARKSTACK_ASSIGN_OR_RETURN(head, LoadLinear(ckpt, "lm_head"));
    }
    if (head.rows() != config_.vocab_size || head.cols() != hidden) {
      return absl::InvalidArgumentError(absl::StrCat("lm_head in ", ckpt.dir(), " is ",
                                                     head.DebugString(), ", expected [",
                                                     config_.vocab_size, ", ", hidden, "]"));
    }
    SPARKSTACK_ASSIGN_OR_RETURN(lm_head_, head.SliceRows(dims_.vocab.begin, dims_.vocab.end));
  }

  // Loads a linear layer, checks its full shape, then keeps this rank's rows or columns.
  auto linear = [&](const std::string& prefix, int64_t rows, int64_t cols, Range row_slice,
                    Range col_slice) -> absl::StatusOr<Weight> {
    SPARKSTACK_ASSIGN_OR_RETURN(Weight w, LoadLinear(ckpt, prefix));
    if (w.rows() != rows || w.cols() != cols) {
      return absl::InvalidArgumentError(absl::StrCat("'", prefix, ".weight' in ", ckpt.dir(),
                                                     " is ", w.DebugString(), ", expected [", rows,
                                                     ", ", cols, "]"));
    }
    SPARKSTACK_ASSIGN_OR_RETURN(w, w.SliceRows(row_slice.begin, row_slice.end));
    if (col_slice.begin != 0 || col_slice.end != cols) {
      SPARKSTACK_ASSIGN_OR_RETURN(w, w.SliceCols(col_slice.begin, col_slice.end));
    }
    return w;
  };
  const Range q_rows = {dims_.q_heads.begin * d, dims_.q_heads.end * d};
  const Range kv_rows = {dims_.kv_head_rows.begin * d, dims_.kv_head_rows.end * d};
  const Range all_hidden = {0, hidden};
  const int64_t q_width = config_.num_heads * d;
  const int64_t kv_width = config_.num_kv_heads * d;
  const int64_t inter = config_.intermediate_size;

  const int64_t end = shard_.layer_end < 0 ? config_.num_layers : shard_.layer_end;
  if (shard_.layer_begin < 0 || shard_.layer_begin > end || end > config_.num_layers) {
    return absl::InvalidArgumentError(absl::StrCat("layer range [", shard_.layer_begin, ", ", end,
                                                   ") of a ", config_.num_layers,
                                                   "-layer model"));
  }
  for (int64_t i = shard_.layer_begin; i < end; ++i) {
    const std::string p = absl::StrCat("model.layers.", i, ".");
    LlamaLayer layer;
    SPARKSTACK_ASSIGN_OR_RETURN(layer.attn_norm,
                                LoadFloatTensor(ckpt, p + "input_layernorm.weight", {hidden}));
    SPARKSTACK_ASSIGN_OR_RETURN(
        layer.mlp_norm, LoadFloatTensor(ckpt, p + "post_attention_layernorm.weight", {hidden}));
    if (config_.qk_norm) {
      SPARKSTACK_ASSIGN_OR_RETURN(layer.q_norm,
                                  LoadFloatTensor(ckpt, p + "self_attn.q_norm.weight", {d}));
      SPARKSTACK_ASSIGN_OR_RETURN(layer.k_norm,
                                  LoadFloatTensor(ckpt, p + "self_attn.k_norm.weight", {d}));
    }
    SPARKSTACK_ASSIGN_OR_RETURN(layer.q,
                                linear(p + "self_attn.q_proj", q_width, hidden, q_rows, all_hidden));
    SPARKSTACK_ASSIGN_OR_RETURN(
        layer.k, linear(p + "self_attn.k_proj", kv_width, hidden, kv_rows, all_hidden));
    SPARKSTACK_ASSIGN_OR_RETURN(
        layer.v, linear(p + "self_attn.v_proj", kv_width, hidden, kv_rows, all_hidden));
    SPARKSTACK_ASSIGN_OR_RETURN(
        layer.o, linear(p + "self_attn.o_proj", hidden, q_width, all_hidden, q_rows));
    SPARKSTACK_ASSIGN_OR_RETURN(
        layer.gate, linear(p + "mlp.gate_proj", inter, hidden, dims_.intermediate, all_hidden));
    SPARKSTACK_ASSIGN_OR_RETURN(
        layer.up, linear(p + "mlp.up_proj", inter, hidden, dims_.intermediate, all_hidden));
    SPARKSTACK_ASSIGN_OR_RETURN(
        layer.down, linear(p + "mlp.down_proj", hidden, inter, all_hidden, dims_.intermediate));
    layers_.push_back(std::move(layer));
  }
  return absl::OkStatus();
}

absl::StatusOr<Tensor> LlamaModel::Embed(std::span<const int32_t> tokens) {
  if (!shard_.first_stage) return absl::FailedPreconditionError("Embed on a non-first stage");
  for (int32_t id : tokens) {
    if (id < 0 || id >= config_.vocab_size) {
      return absl::OutOfRangeError(absl::StrCat("token id ", id, " is outside the vocabulary [0, ",
                                                config_.vocab_size, ")"));
    }
  }
  Tensor hidden = backend_.Allocate(DType::kF32, {std::ssize(tokens), hidden_size()});
  SPARKSTACK_RETURN_IF_ERROR(backend_.Embedding(embedding_, tokens, dims_.vocab.begin, hidden));
  SPARKSTACK_RETURN_IF_ERROR(AllReduce(hidden));
  return hidden;
}

absl::Status LlamaModel::Attention(const LlamaLayer& layer, size_t index, Tensor& hidden,
                                   int64_t start, KvCache& cache) {
  const int64_t tokens = hidden.dim(0);
  const int64_t d = head_dim();
  Tensor normed = backend_.Allocate(DType::kF32, hidden.shape());
  SPARKSTACK_RETURN_IF_ERROR(backend_.RmsNorm(hidden, layer.attn_norm, eps(), normed));
  Tensor q = backend_.Allocate(DType::kF32, {tokens, dims_.heads * d});
  Tensor k = backend_.Allocate(DType::kF32, {tokens, dims_.kv_heads * d});
  Tensor v = backend_.Allocate(DType::kF32, {tokens, dims_.kv_heads * d});
  SPARKSTACK_RETURN_IF_ERROR(backend_.Linear(normed, layer.q, q));
  SPARKSTACK_RETURN_IF_ERROR(backend_.Linear(normed, layer.k, k));
  SPARKSTACK_RETURN_IF_ERROR(backend_.Linear(normed, layer.v, v));
  SPARKSTACK_ASSIGN_OR_RETURN(q, q.Reshape({tokens, dims_.heads, d}));
  SPARKSTACK_ASSIGN_OR_RETURN(k, k.Reshape({tokens, dims_.kv_heads, d}));
  SPARKSTACK_ASSIGN_OR_RETURN(v, v.Reshape({tokens, dims_.kv_heads, d}));
  if (config_.qk_norm) {  // Qwen3: RMSNorm over each head's vector before RoPE
    SPARKSTACK_ASSIGN_OR_RETURN(Tensor q_rows, q.Reshape({tokens * dims_.heads, d}));
    SPARKSTACK_ASSIGN_OR_RETURN(Tensor k_rows, k.Reshape({tokens * dims_.kv_heads, d}));
    SPARKSTACK_RETURN_IF_ERROR(backend_.RmsNorm(q_rows, layer.q_norm, eps(), q_rows));
    SPARKSTACK_RETURN_IF_ERROR(backend_.RmsNorm(k_rows, layer.k_norm, eps(), k_rows));
  }
  std::vector<int32_t> positions(tokens);
  for (int64_t t = 0; t < tokens; ++t) positions[t] = static_cast<int32_t>(start + t);
  SPARKSTACK_RETURN_IF_ERROR(backend_.Rope(q, positions, inv_freq_));
  SPARKSTACK_RETURN_IF_ERROR(backend_.Rope(k, positions, inv_freq_));
  SPARKSTACK_RETURN_IF_ERROR(backend_.StoreKv(k, v, start, cache.k[index], cache.v[index]));
  Tensor attended = backend_.Allocate(DType::kF32, q.shape());
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
  SPARKSTACK_RETURN_IF_ERROR(
      backend_.Attention(q, cache.k[index], cache.v[index], start, scale, attended));
  SPARKSTACK_ASSIGN_OR_RETURN(attended, attended.Reshape({tokens, dims_.heads * d}));
  Tensor out = backend_.Allocate(DType::kF32, hidden.shape());
  SPARKSTACK_RETURN_IF_ERROR(backend_.Linear(attended, layer.o, out));
  SPARKSTACK_RETURN_IF_ERROR(AllReduce(out));
  return backend_.AddInPlace(hidden, out);
}

absl::Status LlamaModel::Mlp(const LlamaLayer& layer, Tensor& hidden) {
  const int64_t tokens = hidden.dim(0);
  Tensor normed = backend_.Allocate(DType::kF32, hidden.shape());
  SPARKSTACK_RETURN_IF_ERROR(backend_.RmsNorm(hidden, layer.mlp_norm, eps(), normed));
  Tensor gate = backend_.Allocate(DType::kF32, {tokens, dims_.intermediate.size()});
  Tensor up = backend_.Allocate(DType::kF32, {tokens, dims_.intermediate.size()});
  SPARKSTACK_RETURN_IF_ERROR(backend_.Linear(normed, layer.gate, gate));
  SPARKSTACK_RETURN_IF_ERROR(backend_.Linear(normed, layer.up, up));
  SPARKSTACK_RETURN_IF_ERROR(backend_.SwiGlu(gate, up, gate));
  Tensor out = backend_.Allocate(DType::kF32, hidden.shape());
  SPARKSTACK_RETURN_IF_ERROR(backend_.Linear(gate, layer.down, out));
  SPARKSTACK_RETURN_IF_ERROR(AllReduce(out));
  return backend_.AddInPlace(hidden, out);
}

absl::Status LlamaModel::RunLayers(Tensor& hidden, int64_t start, KvCache& cache) {
  if (hidden.rank() != 2 || hidden.dim(1) != hidden_size()) {
    return absl::InvalidArgumentError(absl::StrCat("hidden states are ", hidden.DebugString(),
                                                   ", expected [tokens, ", hidden_size(), "]"));
  }
  if (cache.k.size() != layers_.size()) {
    return absl::InvalidArgumentError("kv cache was made for another shard");
  }
  if (start < 0 || start + hidden.dim(0) > cache.capacity) {
    return absl::OutOfRangeError(absl::StrCat("positions [", start, ", ", start + hidden.dim(0),
                                              ") exceed the kv cache capacity ", cache.capacity));
  }
  for (size_t i = 0; i < layers_.size(); ++i) {
    SPARKSTACK_RETURN_IF_ERROR(Attention(layers_[i], i, hidden, start, cache));
    SPARKSTACK_RETURN_IF_ERROR(Mlp(layers_[i], hidden));
  }
  return absl::OkStatus();
}

absl::StatusOr<Tensor> LlamaModel::Logits(const Tensor& hidden) {
  if (!shard_.last_stage) return absl::FailedPreconditionError("Logits on a non-last stage");
  const int64_t rows = hidden.dim(0);
  Tensor normed = backend_.Allocate(DType::kF32, hidden.shape());
  SPARKSTACK_RETURN_IF_ERROR(backend_.RmsNorm(hidden, final_norm_, eps(), normed));
  Tensor local = backend_.Allocate(DType::kF32, {rows, dims_.vocab.size()});
  if (dims_.vocab.size() > 0) SPARKSTACK_RETURN_IF_ERROR(backend_.Linear(normed, lm_head_, local));
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor host, backend_.ToHost(local));
  if (shard_.tp_size == 1) return host;

  // Every rank owns one equal-width chunk of the vocabulary (the last ones may be short): gather
  // the padded chunks, then lay them side by side.
  const int64_t chunk = (config_.vocab_size + shard_.tp_size - 1) / shard_.tp_size;
  Tensor padded = Tensor::Zeros(DType::kF32, {rows, chunk});
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(padded.data_as<float>() + r * chunk, host.data_as<float>() + r * dims_.vocab.size(),
                dims_.vocab.size() * sizeof(float));
  }
  Tensor gathered = Tensor::Zeros(DType::kF32, {shard_.tp_size, rows, chunk});
  SPARKSTACK_RETURN_IF_ERROR(shard_.tp_comm->AllGather(padded.data(), gathered.data(),
                                                       padded.numel(), DType::kF32));
  Tensor logits = Tensor::Zeros(DType::kF32, {rows, config_.vocab_size});
  for (int64_t rank = 0; rank < shard_.tp_size; ++rank) {
    const Range part = ChunkedSplit(config_.vocab_size, shard_.tp_size, rank);
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(logits.data_as<float>() + r * config_.vocab_size + part.begin,
                  gathered.data_as<float>() + (rank * rows + r) * chunk,
                  part.size() * sizeof(float));
    }
  }
  return logits;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Model>> LoadLlamaModel(const ModelConfig& config,
                                                      const Checkpoint& checkpoint,
                                                      Backend& backend, const ModelShard& shard) {
  if (config.attention_bias) {
    return absl::UnimplementedError("attention_bias = true is not supported for the llama family");
  }
  SPARKSTACK_ASSIGN_OR_RETURN(LocalDims dims, ComputeLocalDims(config, shard));
  auto model = std::make_unique<LlamaModel>(config, backend, shard, dims);
  SPARKSTACK_RETURN_IF_ERROR(model->Load(checkpoint));
  return model;
}

}  // namespace sparkstack
