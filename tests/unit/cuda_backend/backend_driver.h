// A test driver that runs a Model step by step over the paged KV cache on any backend: the test
// names which tokens of which sequences each step computes; the driver lays the batch out as the
// scheduler would (decodes first, blocks from a shuffled free list), writes its index tensors to
// the backend's device, and returns the logits of the sequences that reach their last known token
// (copied back to the host). The same calls drive the CPU and the CUDA backend, so their logits
// can be compared step by step.
#ifndef SPARKSTACK_TESTS_UNIT_CUDA_BACKEND_BACKEND_DRIVER_H_
#define SPARKSTACK_TESTS_UNIT_CUDA_BACKEND_BACKEND_DRIVER_H_

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

class BackendDriver {
 public:
  BackendDriver(Model& model, Backend& backend, int64_t num_blocks, uint64_t shuffle_seed)
      : model_(model), backend_(backend) {
    free_blocks_.resize(num_blocks);
    std::iota(free_blocks_.begin(), free_blocks_.end(), 0);
    if (shuffle_seed != 0) {
      std::mt19937_64 rng(shuffle_seed);
      std::shuffle(free_blocks_.begin(), free_blocks_.end(), rng);
    }
    cache_ = *AllocateKvCache(backend, model.kv_cache_spec(), num_blocks);
    const int64_t bytes =
        model.WorkspaceBytes({.max_tokens = 256, .max_seqs = 16, .max_logit_rows = 16});
    workspace_ = Arena(*backend.Allocate(
        DType::kU8, {static_cast<int64_t>(Arena::BufferBytes(bytes))}));
  }

  int Add(std::vector<int32_t> tokens) {
    sequences_.push_back({std::move(tokens), {}, 0});
    return static_cast<int>(sequences_.size()) - 1;
  }
  void Append(int sequence, int32_t token) { sequences_[sequence].tokens.push_back(token); }

  absl::StatusOr<std::map<int, std::vector<float>>> Step(std::vector<std::pair<int, int64_t>> work) {
    std::stable_partition(work.begin(), work.end(), [](const auto& w) { return w.second == 1; });
    std::vector<int32_t> ids, positions, query_start = {0}, seq_lens, slots, rows;
    std::vector<int> sampled;
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
        sampled.push_back(s);
      }
      seq.computed = end;
    }
    std::vector<int32_t> table(work.size() * max_blocks, 0);
    for (size_t b = 0; b < work.size(); ++b) {
      const Seq& seq = sequences_[work[b].first];
      std::copy(seq.blocks.begin(), seq.blocks.end(), table.begin() + b * max_blocks);
    }
    ForwardBatch batch;
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
    SPARKSTACK_ASSIGN_OR_RETURN(Tensor hidden,
                                backend_.Allocate(DType::kF32, {m.num_tokens, c.hidden_size}));
    SPARKSTACK_ASSIGN_OR_RETURN(Tensor logits,
                                backend_.Allocate(DType::kF32, {std::ssize(rows), c.vocab_size}));
    SPARKSTACK_RETURN_IF_ERROR(model_.Forward(batch, cache_, workspace_, hidden, &logits));
    std::vector<float> host(logits.numel());
    SPARKSTACK_RETURN_IF_ERROR(backend_.CopyToHost(logits, host.data()));
    std::map<int, std::vector<float>> out;
    for (size_t r = 0; r < sampled.size(); ++r) {
      out[sampled[r]] = std::vector<float>(host.begin() + r * c.vocab_size,
                                           host.begin() + (r + 1) * c.vocab_size);
    }
    return out;
  }

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
};

}  // namespace sparkstack::testing

#endif  // SPARKSTACK_TESTS_UNIT_CUDA_BACKEND_BACKEND_DRIVER_H_
