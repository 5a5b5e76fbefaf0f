#include "launcher/sampling_flags.h"

namespace sparkstack::launcher {

void AddSamplingFlags(CLI::App& cmd, SamplingFlags& f) {
  SamplingParams& s = f.sampling;
  StoppingParams& stop = f.stopping;
  cmd.add_option("--max-tokens", stop.max_tokens, "tokens to generate per sequence")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd.add_option("--min-tokens", stop.min_tokens, "tokens generated before EOS or a stop counts")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd.add_option("--temperature", s.temperature, "0 = greedy")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd.add_option("--top-k", s.top_k, "0 = no limit")->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd.add_option("--top-p", s.top_p, "nucleus mass in (0, 1]")->capture_default_str();
  cmd.add_option("--min-p", s.min_p, "drop tokens below min-p x the top probability")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd.add_option("--repetition-penalty", s.repetition_penalty,
                 "> 1 discourages tokens of the prompt and the output")
      ->capture_default_str();
  cmd.add_option("--presence-penalty", s.presence_penalty, "in [-2, 2]")->capture_default_str();
  cmd.add_option("--frequency-penalty", s.frequency_penalty, "in [-2, 2]")->capture_default_str();
  cmd.add_option("--seed", s.seed, "sampling seed (sequence i uses seed + i)")
      ->capture_default_str();
  cmd.add_option("--stop-token-ids", stop.stop_token_ids, "end a sequence after these ids")
      ->delimiter(',');
  cmd.add_flag("--ignore-eos", stop.ignore_eos, "keep generating past end-of-sequence tokens");
}

Request MakeRequest(const SamplingFlags& flags, std::vector<int32_t> prompt, size_t index) {
  Request request;
  request.prompt_ids = std::move(prompt);
  request.sampling = flags.sampling;
  request.sampling.seed += index;
  request.stopping = flags.stopping;
  return request;
}

}  // namespace sparkstack::launcher
