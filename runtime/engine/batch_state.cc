#include "runtime/engine/batch_state.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "runtime/core/status_macros.h"

namespace sparkstack {
namespace {

absl::Status Invalid(uint64_t id, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("step plan, sequence ", id, ": ", what));
}

}  // namespace

absl::Status BatchState::Admit(const PlannedSequence& planned, uint64_t step) {
  if (sequences_.contains(planned.id)) return Invalid(planned.id, "is already running");
  Sequence& s = sequences_[planned.id];
  s.num_prompt_tokens = planned.num_prompt_tokens;
  s.num_computed = planned.num_computed;
  s.sampling = planned.sampling;
  s.min_tokens = planned.min_tokens;
  s.banned_until_min_tokens = planned.banned_until_min_tokens;
  for (int32_t id : s.banned_until_min_tokens) {
    if (id >= limits_.vocab_size) return Invalid(planned.id, "banned token outside the vocabulary");
  }
  return Extend(planned, step, s);
}

absl::Status BatchState::Extend(const PlannedSequence& planned, uint64_t step, Sequence& s) {
  if (s.last_step == step) return Invalid(planned.id, "is scheduled twice in one step");
  s.last_step = step;
  for (int32_t token : planned.tokens) {
    if (token < 0 || token >= limits_.vocab_size) {
      return Invalid(planned.id, absl::StrCat("token id ", token, " is outside the vocabulary [0, ",
                                              limits_.vocab_size, ")"));
    }
  }
  s.tokens.insert(s.tokens.end(), planned.tokens.begin(), planned.tokens.end());
  s.block_table.insert(s.block_table.end(), planned.block_ids.begin(), planned.block_ids.end());
  const int64_t end = planned.num_computed + planned.num_scheduled;
  if (planned.num_computed != s.num_computed) {
    return Invalid(planned.id, absl::StrCat("plan says ", planned.num_computed,
                                            " tokens are computed, this rank counts ",
                                            s.num_computed));
  }
  if (end > std::ssize(s.tokens) || end > limits_.max_model_len) {
    return Invalid(planned.id, absl::StrCat("tokens [", planned.num_computed, ", ", end,
                                            ") are scheduled but ", s.tokens.size(),
                                            " are known (max_model_len ", limits_.max_model_len,
                                            ")"));
  }
  if (std::ssize(s.block_table) * limits_.block_size < end) {
    return Invalid(planned.id, absl::StrCat(s.block_table.size(), " blocks cannot hold ", end,
                                            " tokens"));
  }
  if (planned.samples != (end == std::ssize(s.tokens))) {
    return Invalid(planned.id, "samples only at the end of its known tokens");
  }
  return absl::OkStatus();
}

absl::Status BatchState::Apply(const StepPlan& plan, HostBatch& batch) {
  if (plan.step_id == 0) return absl::InvalidArgumentError("step plan without a step id");
  for (uint64_t id : plan.released) sequences_.erase(id);

  batch.token_ids.clear();
  batch.positions.clear();
  batch.query_start.assign(1, 0);
  batch.seq_lens.clear();
  batch.slot_mapping.clear();
  batch.logits_rows.clear();
  batch.sample_ids.clear();
  batch.sampling.clear();
  batch.return_logits.clear();
  batch.num_decodes = 0;
  batch.max_query_len = 0;
  batch.max_seq_len = 0;
  batch.max_blocks = 0;

  // First pass: apply the delta, so every table is complete before the batch is laid out.
  for (const PlannedSequence& planned : plan.sequences) {
    if (planned.is_new) {
      SPARKSTACK_RETURN_IF_ERROR(Admit(planned, plan.step_id));
    } else {
      auto found = sequences_.find(planned.id);
      if (found == sequences_.end()) return Invalid(planned.id, "is not running on this rank");
      SPARKSTACK_RETURN_IF_ERROR(Extend(planned, plan.step_id, found->second));
    }
  }
  bool decodes_done = false;
  for (const PlannedSequence& planned : plan.sequences) {
    const Sequence& s = sequences_.find(planned.id)->second;
    const int64_t begin = planned.num_computed;
    const int64_t end = begin + planned.num_scheduled;
    if (planned.num_scheduled == 1 && !decodes_done) {
      ++batch.num_decodes;
    } else {
      decodes_done = true;
    }
    for (int64_t p = begin; p < end; ++p) {
      batch.token_ids.push_back(s.tokens[p]);
      batch.positions.push_back(static_cast<int32_t>(p));
      const int64_t block = s.block_table[p / limits_.block_size];
      batch.slot_mapping.push_back(
          static_cast<int32_t>(block * limits_.block_size + p % limits_.block_size));
    }
    batch.query_start.push_back(static_cast<int32_t>(batch.token_ids.size()));
    batch.seq_lens.push_back(static_cast<int32_t>(end));
    batch.max_query_len = std::max(batch.max_query_len, planned.num_scheduled);
    batch.max_seq_len = std::max(batch.max_seq_len, end);
    batch.max_blocks = std::max(batch.max_blocks, (end + limits_.block_size - 1) / limits_.block_size);
    if (planned.samples) {
      batch.logits_rows.push_back(static_cast<int32_t>(batch.token_ids.size() - 1));
      batch.sample_ids.push_back(planned.id);
      const std::span<const int32_t> all(s.tokens);
      const int64_t outputs = std::ssize(s.tokens) - s.num_prompt_tokens;
      batch.sampling.push_back(
          {.params = s.sampling,
           .output_index = static_cast<uint64_t>(outputs),
           .prompt_tokens = all.first(s.num_prompt_tokens),
           .output_tokens = all.subspan(s.num_prompt_tokens),
           .banned_tokens = outputs < s.min_tokens ? std::span<const int32_t>(
                                                         s.banned_until_min_tokens)
                                                   : std::span<const int32_t>()});
      batch.return_logits.push_back(planned.return_logits);
    }
  }
  // The block table, each row padded to the step's widest.
  batch.block_table.assign(batch.num_seqs() * batch.max_blocks, 0);
  for (size_t b = 0; b < plan.sequences.size(); ++b) {
    const Sequence& s = sequences_.find(plan.sequences[b].id)->second;
    const int64_t blocks = (batch.seq_lens[b] + limits_.block_size - 1) / limits_.block_size;
    std::copy_n(s.block_table.begin(), blocks, batch.block_table.begin() + b * batch.max_blocks);
  }
  for (const PlannedSequence& planned : plan.sequences) {
    sequences_.find(planned.id)->second.num_computed += planned.num_scheduled;
  }
  return absl::OkStatus();
}

}  // namespace sparkstack
