// A test driver that runs a Model step by step over the paged KV cache without the engine: the
// test says which tokens of which sequences each step computes, the driver lays out the
// ForwardBatch (decodes first, as the scheduler would) with blocks taken from a shuffled free
// list, uploads its index tensors to the backend's device, and returns the logits (copied back to
// the host) of the sequences that reach their last token. The same calls drive the CPU and the
// CUDA backend, so their logits can be compared step by step.
#ifndef SPARKSTACK_TESTS_UNIT_MODEL_PAGED_DRIVER_H_
#define SPARKSTACK_TESTS_UNIT_MODEL_PAGED_DRIVER_H_

#include <algorithm>
#include <map>
#include <numeric>
#include <random>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/core/status_macros.h"
#include "runtime/model/model.h"

namespace sparkstack::testing {

class PagedDriver {
 public:
  // `shuffle_seed` scatters each sequence's blocks over the pool (0: blocks in order).
  // `limits` sizes the workspace arena (the largest step a test may run).
  PagedDriver(Model& model, Backend& backend, int64_t num_blocks, uint64_t shuffle_seed,
              StepLimits limits = {.max_tokens = 512, .max_seqs = 64, .max_logit_rows = 64})
      : model_(model), backend_(backend) {
    free_blocks_.resize(num_blocks);
    std::iota(free_blocks_.begin(), free_blocks_.end(), 0);
    if (shuffle_seed != 0) {
      std::mt19937_64 rng(shuffle_seed);
      std::shuffle(free_blocks_.begin(), free_blocks_.end(), rng);
    }
    cache_ = *AllocateKvCache(backend, model.kv_cache_spec(), num_blocks);
    const int64_t bytes = model.WorkspaceBytes(limits);
    workspace_ =
        Arena(*backend.Allocate(DType::kU8, {static_cast<int64_t>(Arena::BufferBytes(bytes))}));
  }

  // A sequence with all its tokens known up front (the test feeds "generated" ones itself).
  int Add(std::vector<int32_t> tokens) {
    sequences_.push_back({std::move(tokens), {}, 0});
    return static_cast<int>(sequences_.size()) - 1;
  }
  void Append(int sequence, int32_t token) { sequences_[sequence].tokens.push_back(token); }
  int64_t computed(int sequence) const { return sequences_[sequence].computed; }

  // One step, laid out but not run (decodes first, as the scheduler orders a batch).
  struct Prepared {
    ForwardBatch batch;
    std::vector<int> sampled;  // sequences whose logits the step returns, in row order
  };

  // Lays out a step computing the next `count` tokens of each listed sequence and advances their
  // computed counts; the sequences whose step reaches their last known token sample.
  absl::StatusOr<Prepared> Prepare(std::vector<std::pair<int, int64_t>> work) {
    std::stable_partition(work.begin(), work.end(), [](const auto& w) { return w.second == 1; });
    std::vector<int32_t> ids, positions, query_start = {0}, seq_lens, slots, rows;
    Prepared step;
    int64_t max_blocks = 0, max_query = 0, max_len = 0, decodes = 0;
    for (const auto& [s, count] : work) {
      Seq& seq = sequences_[s];
      const int64_t end = seq.computed + count;
      while (std::ssize(seq.blocks) * kKvBlockSize < end) {
        if (free_blocks_.empty()) return absl::ResourceExhaustedError("test pool exhausted");
        seq.blocks.push_back(free_blocks_.back());
        free_blocks_.pop_back();
      }
      for (int64_t p = seq.computed; p < end; ++p) {
        ids.push_back(seq.tokens[p]);
        positions.push_back(static_cast<int32_t>(p));
        slots.push_back(seq.blocks[p / kKvBlockSize] * kKvBlockSize + p % kKvBlockSize);
      }
      query_start.push_back(static_cast<int32_t>(ids.size()));
      seq_lens.push_back(static_cast<int32_t>(end));
      max_blocks = std::max<int64_t>(max_blocks, std::ssize(seq.blocks));
      max_query = std::max(max_query, count);
      max_len = std::max(max_len, end);
      if (count == 1 && decodes == std::ssize(seq_lens) - 1) ++decodes;
      if (end == std::ssize(seq.tokens)) {
        rows.push_back(static_cast<int32_t>(ids.size()) - 1);
        step.sampled.push_back(s);
      }
      seq.computed = end;
    }
    std::vector<int32_t> table(work.size() * max_blocks, 0);
    for (size_t b = 0; b < work.size(); ++b) {
      const Seq& seq = sequences_[work[b].first];
      std::copy(seq.blocks.begin(), seq.blocks.end(), table.begin() + b * max_blocks);
    }
    ForwardBatch& batch = step.batch;
    SPARKSTACK_ASSIGN_OR_RETURN(batch.token_ids, Indices(ids));
    SPARKSTACK_ASSIGN_OR_RETURN(batch.positions, Indices(positions));
    SPARKSTACK_ASSIGN_OR_RETURN(batch.logits_rows, Indices(rows));
    AttentionMetadata& m = batch.attention;
    m.num_seqs = std::ssize(work);
    m.num_decodes = decodes;
    m.num_tokens = std::ssize(ids);
    m.max_query_len = max_query;
    m.max_seq_len = max_len;
    m.block_size = kKvBlockSize;
    SPARKSTACK_ASSIGN_OR_RETURN(m.query_start, Indices(query_start));
    SPARKSTACK_ASSIGN_OR_RETURN(m.seq_lens, Indices(seq_lens));
    SPARKSTACK_ASSIGN_OR_RETURN(m.slot_mapping, Indices(slots));
    SPARKSTACK_ASSIGN_OR_RETURN(Tensor flat_table, Indices(table));
    SPARKSTACK_ASSIGN_OR_RETURN(m.block_table, flat_table.Reshape({m.num_seqs, max_blocks}));
    const ModelConfig& c = model_.config();
    SPARKSTACK_ASSIGN_OR_RETURN(hidden_,
                                backend_.Allocate(DType::kF32, {m.num_tokens, c.hidden_size}));
    if (model_.shard().last_stage) {
      SPARKSTACK_ASSIGN_OR_RETURN(logits_,
                                  backend_.Allocate(DType::kF32, {std::ssize(rows), c.vocab_size}));
    }
    return step;
  }

  // Runs a prepared step. A later pipeline stage passes the previous stage's hidden states.
  absl::StatusOr<std::map<int, std::vector<float>>> Run(const Prepared& step,
                                                        const Tensor* hidden_in = nullptr) {
    if (hidden_in != nullptr) {
      SPARKSTACK_RETURN_IF_ERROR(backend_.CopyFromHost(hidden_in->data_as<float>(), hidden_));
    }
    const bool last = model_.shard().last_stage;
    SPARKSTACK_RETURN_IF_ERROR(
        model_.Forward(step.batch, cache_, workspace_, hidden_, last ? &logits_ : nullptr));
    std::map<int, std::vector<float>> out;
    if (!last) return out;
    const int64_t vocab = model_.config().vocab_size;
    std::vector<float> host(logits_.numel());
    SPARKSTACK_RETURN_IF_ERROR(backend_.CopyToHost(logits_, host.data()));
    for (size_t r = 0; r < step.sampled.size(); ++r) {
      const float* row = host.data() + r * vocab;
      out[step.sampled[r]] = std::vector<float>(row, row + vocab);
    }
    return out;
  }

  absl::StatusOr<std::map<int, std::vector<float>>> Step(std::vector<std::pair<int, int64_t>> work,
                                                         const Tensor* hidden_in = nullptr) {
    SPARKSTACK_ASSIGN_OR_RETURN(Prepared step, Prepare(std::move(work)));
    return Run(step, hidden_in);
  }

  // The hidden states the last step left (a pipeline stage's output).
  const Tensor& hidden() const { return hidden_; }
  KvCache& cache() { return cache_; }
  Arena& workspace() { return workspace_; }

 private:
  struct Seq {
    std::vector<int32_t> tokens;
    std::vector<int32_t> blocks;
    int64_t computed = 0;
  };
  absl::StatusOr<Tensor> Indices(const std::vector<int32_t>& values) {
    Tensor host = Tensor::Zeros(DType::kI32, {std::ssize(values)});
    std::copy(values.begin(), values.end(), host.data_as<int32_t>());
    return backend_.Upload(host);
  }

  Model& model_;
  Backend& backend_;
  KvCache cache_;
  Arena workspace_;
  std::vector<int32_t> free_blocks_;
  std::vector<Seq> sequences_;
  Tensor hidden_;
  Tensor logits_;
};

}  // namespace sparkstack::testing

#endif  // SPARKSTACK_TESTS_UNIT_MODEL_PAGED_DRIVER_H_
