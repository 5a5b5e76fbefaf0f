// The bodies of the serving fuzzers, shared by the libFuzzer binaries (clang, by hand) and by
// serving_fuzz_replay_test (every build, under ASan in CI), which runs them on seed inputs and
// seeded random mutations of them.
//   FuzzOpenAiRequest: any bytes as a /v1/completions and a /v1/chat/completions body, then, when
//     they parse, through InferenceCore::BuildRequest — must never crash, and what parses must
//     hold the parser's invariants.
//   FuzzProtoRequest: any bytes as a sparkstack.v1.GenerateRequest, through GenerateSpecFromProto
//     and BuildRequest, with the same rule.
#ifndef SPARKSTACK_TESTS_FUZZ_SERVING_SERVING_FUZZ_TARGETS_H_
#define SPARKSTACK_TESTS_FUZZ_SERVING_SERVING_FUZZ_TARGETS_H_

#include <cstddef>
#include <cstdint>

namespace sparkstack::serving {

void FuzzOpenAiRequest(const uint8_t* data, size_t size);
void FuzzProtoRequest(const uint8_t* data, size_t size);

}  // namespace sparkstack::serving

#endif  // SPARKSTACK_TESTS_FUZZ_SERVING_SERVING_FUZZ_TARGETS_H_
