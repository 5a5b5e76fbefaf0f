#include "runtime/engine/step_plan.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "runtime/engine/wire.h"

namespace sparkstack {
namespace {

constexpr uint8_t kFlagNew = 1;
constexpr uint8_t kFlagSamples = 2;
constexpr uint8_t kFlagReturnLogits = 4;
// EOS ids plus a request's stop token ids: a few in practice.
constexpr int64_t kMaxBannedTokens = 4096;

absl::Status Malformed(const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("malformed step plan: ", what));
}

// Reads a count and checks it against `limit` before anything is reserved for it.
bool ReadCount(wire::Reader& in, int64_t limit, uint64_t& count) {
  count = in.Varint();
  return in.ok() && count <= static_cast<uint64_t>(limit);
}

}  // namespace

uint32_t MaxStepPlanPayload(const StepPlanLimits& limits) {
  // Per sequence: fixed fields, its tokens and blocks at their widest (5-byte varints).
  const int64_t blocks_per_seq = limits.max_tokens / 16 + 2;
  const int64_t per_seq = 96 + 5 * (limits.max_tokens + blocks_per_seq);
  const int64_t bytes = 64 + limits.max_sequences * (per_seq + 10);
  return static_cast<uint32_t>(std::min<int64_t>(bytes, std::numeric_limits<int32_t>::max()));
}

std::string EncodeStepPlanHeader(StepKind kind, size_t payload_bytes) {
  std::string out;
  wire::Writer w(out);
  w.Fixed<uint32_t>(kStepPlanMagic);
  w.Fixed<uint16_t>(kStepPlanVersion);
  w.Fixed<uint16_t>(static_cast<uint16_t>(kind));
  w.Fixed<uint32_t>(static_cast<uint32_t>(payload_bytes));
  w.Fixed<uint32_t>(0);
  return out;
}

std::string EncodeStepPlanPayload(const StepPlan& plan) {
  std::string out;
  wire::Writer w(out);
  w.Varint(plan.step_id);
  w.Varint(plan.released.size());
  for (uint64_t id : plan.released) w.Varint(id);
  w.Varint(plan.sequences.size());
  for (const PlannedSequence& s : plan.sequences) {
    w.Varint(s.id);
    w.Fixed<uint8_t>((s.is_new ? kFlagNew : 0) | (s.samples ? kFlagSamples : 0) |
                     (s.return_logits ? kFlagReturnLogits : 0));
    w.Varint(s.num_computed);
    w.Varint(s.num_scheduled);
    w.Varint(s.block_ids.size());
    for (int32_t b : s.block_ids) w.Varint(static_cast<uint32_t>(b));
    w.Varint(s.tokens.size());
    for (int32_t t : s.tokens) w.SignedVarint(t);
    if (!s.is_new) continue;
    const SamplingParams& p = s.sampling;
    w.Varint(s.num_prompt_tokens);
    w.Fixed<float>(p.temperature);
    w.SignedVarint(p.top_k);
    w.Fixed<float>(p.top_p);
    w.Fixed<float>(p.min_p);
    w.Fixed<float>(p.repetition_penalty);
    w.Fixed<float>(p.presence_penalty);
    w.Fixed<float>(p.frequency_penalty);
    w.Fixed<uint64_t>(p.seed);
    w.SignedVarint(p.logprobs);
    w.Varint(s.min_tokens);
    w.Varint(s.banned_until_min_tokens.size());
    for (int32_t id : s.banned_until_min_tokens) w.Varint(static_cast<uint32_t>(id));
  }
  return out;
}

absl::Status DecodeStepPlanHeader(std::string_view header, const StepPlanLimits& limits,
                                  StepKind& kind, uint32_t& payload_bytes) {
  if (header.size() != kStepPlanHeaderBytes) {
    return absl::InvalidArgumentError(absl::StrCat("step plan header is ", header.size(),
                                                   " bytes, expected ", kStepPlanHeaderBytes));
  }
  wire::Reader in(header);
  const auto magic = in.Fixed<uint32_t>();
  const auto version = in.Fixed<uint16_t>();
  const auto raw_kind = in.Fixed<uint16_t>();
  payload_bytes = in.Fixed<uint32_t>();
  if (magic != kStepPlanMagic) {
    return absl::InvalidArgumentError(absl::StrCat("step plan magic ", magic, " is not 'SSSP'"));
  }
  if (version != kStepPlanVersion) {
    return absl::InvalidArgumentError(absl::StrCat("step plan version ", version,
                                                   ", this build speaks ", kStepPlanVersion));
  }
  if (raw_kind < static_cast<uint16_t>(StepKind::kStep) ||
      raw_kind > static_cast<uint16_t>(StepKind::kStop)) {
    return absl::InvalidArgumentError(absl::StrCat("unknown step kind ", raw_kind));
  }
  kind = static_cast<StepKind>(raw_kind);
  if (payload_bytes > limits.max_payload_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("step plan payload of ", payload_bytes,
                                                   " bytes exceeds the limit ",
                                                   limits.max_payload_bytes));
  }
  return absl::OkStatus();
}

absl::StatusOr<StepPlan> DecodeStepPlanPayload(StepKind kind, std::string_view payload,
                                               const StepPlanLimits& limits) {
  StepPlan plan;
  plan.kind = kind;
  wire::Reader in(payload);
  plan.step_id = in.Varint();
  uint64_t count = 0;
  // A step releases at most what could be alive: bounded by the pool's blocks... and sequences.
  if (!ReadCount(in, limits.num_blocks + limits.max_sequences, count)) {
    return Malformed("released count");
  }
  plan.released.reserve(count);
  for (uint64_t i = 0; i < count; ++i) plan.released.push_back(in.Varint());
  if (!ReadCount(in, limits.max_sequences, count)) return Malformed("sequence count");
  plan.sequences.resize(count);
  for (PlannedSequence& s : plan.sequences) {
    s.id = in.Varint();
    const auto flags = in.Fixed<uint8_t>();
    if (flags & ~(kFlagNew | kFlagSamples | kFlagReturnLogits)) return Malformed("flags");
    s.is_new = flags & kFlagNew;
    s.samples = flags & kFlagSamples;
    s.return_logits = flags & kFlagReturnLogits;
    const uint64_t computed = in.Varint();
    const uint64_t scheduled = in.Varint();
    if (!in.ok() || computed > static_cast<uint64_t>(limits.max_tokens) || scheduled == 0 ||
        scheduled > static_cast<uint64_t>(limits.max_tokens) ||
        computed + scheduled > static_cast<uint64_t>(limits.max_tokens)) {
      return Malformed(absl::StrCat("token counts of sequence ", s.id));
    }
    s.num_computed = static_cast<int64_t>(computed);
    s.num_scheduled = static_cast<int64_t>(scheduled);
    if (!ReadCount(in, limits.num_blocks, count)) return Malformed("block count");
    s.block_ids.resize(count);
    for (int32_t& b : s.block_ids) {
      const uint64_t block = in.Varint();
      if (block >= static_cast<uint64_t>(limits.num_blocks)) return Malformed("block id");
      b = static_cast<int32_t>(block);
    }
    if (!ReadCount(in, limits.max_tokens, count)) return Malformed("token count");
    s.tokens.resize(count);
    for (int32_t& t : s.tokens) {
      const int64_t token = in.SignedVarint();
      if (token < 0 || token > std::numeric_limits<int32_t>::max()) return Malformed("token id");
      t = static_cast<int32_t>(token);
    }
    if (!s.is_new) continue;
    const uint64_t prompt = in.Varint();
    if (prompt == 0 || prompt > count) return Malformed("prompt length");
    s.num_prompt_tokens = static_cast<int64_t>(prompt);
    SamplingParams& p = s.sampling;
    p.temperature = in.Fixed<float>();
    p.top_k = static_cast<int32_t>(in.SignedVarint());
    p.top_p = in.Fixed<float>();
    p.min_p = in.Fixed<float>();
    p.repetition_penalty = in.Fixed<float>();
    p.presence_penalty = in.Fixed<float>();
    p.frequency_penalty = in.Fixed<float>();
    p.seed = in.Fixed<uint64_t>();
    p.logprobs = static_cast<int32_t>(in.SignedVarint());
    if (!in.ok()) return Malformed("sampling parameters");
    if (auto status = ValidateSamplingParams(p); !status.ok()) {
      return Malformed(std::string(status.message()));
    }
    const uint64_t min_tokens = in.Varint();
    if (!in.ok() || min_tokens > static_cast<uint64_t>(limits.max_tokens)) {
      return Malformed("min_tokens");
    }
    s.min_tokens = static_cast<int64_t>(min_tokens);
    if (!ReadCount(in, kMaxBannedTokens, count)) return Malformed("banned token count");
    s.banned_until_min_tokens.resize(count);
    for (int32_t& id : s.banned_until_min_tokens) {
      const uint64_t token = in.Varint();
      if (token > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) {
        return Malformed("banned token id");
      }
      id = static_cast<int32_t>(token);
    }
  }
  if (!in.ok()) return Malformed("truncated");
  if (!in.at_end()) return Malformed(absl::StrCat(in.remaining(), " trailing bytes"));
  return plan;
}

}  // namespace sparkstack
