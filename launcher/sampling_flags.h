// Per-request generation flags shared by `generate` and `bench`: sampling and stopping.
#ifndef SPARKSTACK_LAUNCHER_SAMPLING_FLAGS_H_
#define SPARKSTACK_LAUNCHER_SAMPLING_FLAGS_H_

#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "runtime/engine/request.h"

namespace sparkstack::launcher {

struct SamplingFlags {
  SamplingParams sampling;
  StoppingParams stopping;
};

void AddSamplingFlags(CLI::App& command, SamplingFlags& flags);

// A request for `prompt` as the flags ask; sequence i samples with seed + i.
Request MakeRequest(const SamplingFlags& flags, std::vector<int32_t> prompt, size_t index);

}  // namespace sparkstack::launcher

#endif  // SPARKSTACK_LAUNCHER_SAMPLING_FLAGS_H_
