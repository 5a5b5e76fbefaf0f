#include "launcher/output_collector.h"

namespace sparkstack::launcher {

Engine::OutputCallback OutputCollector::CallbackFor(size_t index) {
  {
    absl::MutexLock lock(&mu_);
    outputs_[index].submitted = std::chrono::steady_clock::now();
  }
  return [this, index](RequestOutput chunk) {
    const auto now = std::chrono::steady_clock::now();
    absl::MutexLock lock(&mu_);
    CollectedOutput& out = outputs_[index];
    out.token_ids.insert(out.token_ids.end(), chunk.token_ids.begin(), chunk.token_ids.end());
    out.token_times.insert(out.token_times.end(), chunk.token_ids.size(), now);
    out.text += chunk.text;
    out.logprobs.insert(out.logprobs.end(), chunk.logprobs.begin(), chunk.logprobs.end());
    if (!chunk.first_logits.empty()) out.first_logits = std::move(chunk.first_logits);
    if (chunk.finished()) {
      out.finish_reason = chunk.finish_reason;
      out.error = chunk.error;
      ++finished_;
    }
  };
}

std::string OutputCollector::WaitForText(size_t index, size_t offset, bool& finished) {
  absl::MutexLock lock(&mu_);
  const CollectedOutput& out = outputs_[index];
  struct Waiting {
    const CollectedOutput* out;
    size_t offset;
  } waiting{&out, offset};
  mu_.Await(absl::Condition(
      +[](Waiting* w) { return w->out->text.size() > w->offset || w->out->finished(); },
      &waiting));
  finished = out.finished();
  return out.text.size() > offset ? out.text.substr(offset) : std::string();
}

void OutputCollector::WaitAll() { WaitFinished(outputs_.size()); }

void OutputCollector::WaitFinished(size_t count) {
  absl::MutexLock lock(&mu_);
  struct Waiting {
    const size_t* finished;
    size_t count;
  } waiting{&finished_, count};
  mu_.Await(absl::Condition(+[](Waiting* w) { return *w->finished >= w->count; }, &waiting));
}

}  // namespace sparkstack::launcher
