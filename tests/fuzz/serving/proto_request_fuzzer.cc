// libFuzzer target: any bytes as a sparkstack.v1.GenerateRequest (see serving_fuzz_targets.h).
//   CXX=clang++ cmake -S . -B build-fuzz -DSPARKSTACK_BUILD_FUZZERS=ON ...
//   build-fuzz/tests/fuzz/serving/proto_request_fuzzer
#include "tests/fuzz/serving/serving_fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sparkstack::serving::FuzzProtoRequest(data, size);
  return 0;
}
