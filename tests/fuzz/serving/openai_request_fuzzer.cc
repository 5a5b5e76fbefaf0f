// libFuzzer target: any bytes as an OpenAI request body (see serving_fuzz_targets.h).
//   CXX=clang++ cmake -S . -B build-fuzz -DSPARKSTACK_BUILD_FUZZERS=ON ...
//   build-fuzz/tests/fuzz/serving/openai_request_fuzzer tests/fuzz/corpus/openai_request
#include "tests/fuzz/serving/serving_fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sparkstack::serving::FuzzOpenAiRequest(data, size);
  return 0;
}
