#include "runtime/engine/step_result.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "runtime/engine/wire.h"

namespace sparkstack {
namespace {

absl::Status Malformed(const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("malformed step result: ", what));
}

bool ValidToken(int64_t token) {
  return token >= 0 && token <= std::numeric_limits<int32_t>::max();
}

}  // namespace

std::string EncodeStepResult(const StepResult& result) {
  std::string out;
  wire::Writer w(out);
  w.Varint(result.step_id);
  w.Varint(result.samples.size());
  for (const SequenceSample& s : result.samples) {
    w.Varint(s.id);
    w.SignedVarint(s.sample.token);
    w.Fixed<float>(s.sample.logprob);
    w.Varint(s.sample.num_top);
    for (int i = 0; i < s.sample.num_top; ++i) {
      w.SignedVarint(s.sample.top[i].token);
      w.Fixed<float>(s.sample.top[i].logprob);
    }
  }
  w.Varint(result.logits.size());
  for (const SequenceLogits& l : result.logits) {
    w.Varint(l.id);
    w.Varint(l.logits.size());
    w.Bytes(l.logits.data(), l.logits.size() * sizeof(float));
  }
  return out;
}

absl::StatusOr<StepResult> DecodeStepResult(std::string_view payload, int64_t max_rows,
                                            int64_t vocab_size) {
  StepResult result;
  wire::Reader in(payload);
  result.step_id = in.Varint();
  uint64_t count = in.Varint();
  if (!in.ok() || count > static_cast<uint64_t>(max_rows)) return Malformed("sample count");
  result.samples.resize(count);
  for (SequenceSample& s : result.samples) {
    s.id = in.Varint();
    const int64_t token = in.SignedVarint();
    if (!ValidToken(token)) return Malformed("token id");
    s.sample.token = static_cast<int32_t>(token);
    s.sample.logprob = in.Fixed<float>();
    const uint64_t top = in.Varint();
    if (!in.ok() || top > static_cast<uint64_t>(kMaxTopLogprobs)) return Malformed("top count");
    s.sample.num_top = static_cast<int32_t>(top);
    for (uint64_t i = 0; i < top; ++i) {
      const int64_t t = in.SignedVarint();
      if (!ValidToken(t)) return Malformed("top token id");
      s.sample.top[i] = {static_cast<int32_t>(t), in.Fixed<float>()};
    }
  }
  count = in.Varint();
  if (!in.ok() || count > static_cast<uint64_t>(max_rows)) return Malformed("logits count");
  result.logits.resize(count);
  for (SequenceLogits& l : result.logits) {
    l.id = in.Varint();
    const uint64_t vocab = in.Varint();
    if (!in.ok() || vocab != static_cast<uint64_t>(vocab_size)) return Malformed("logits width");
    const std::string_view bytes = in.Bytes(vocab * sizeof(float));
    if (!in.ok()) return Malformed("truncated logits");
    l.logits.resize(vocab);
    std::memcpy(l.logits.data(), bytes.data(), bytes.size());
  }
  if (!in.ok()) return Malformed("truncated");
  if (!in.at_end()) return Malformed(absl::StrCat(in.remaining(), " trailing bytes"));
  return result;
}

}  // namespace sparkstack
