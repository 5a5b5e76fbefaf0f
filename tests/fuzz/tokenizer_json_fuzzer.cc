// libFuzzer target for tokenizer.json: the bytes are the file's text (no tokenizer_config.json).
// An accepted tokenizer must encode and decode a fixed text without crashing, and every id it
// produces must be in its vocabulary.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "runtime/tokenizer/tokenizer.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using sparkstack::fuzz::Fail;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto tokenizer = sparkstack::tokenizer::Tokenizer::FromJson(text, "", "fuzz/tokenizer.json");
  if (!tokenizer.ok()) {
    sparkstack::fuzz::CheckError(tokenizer.status());
    return 0;
  }
  const sparkstack::tokenizer::Tokenizer& tok = **tokenizer;
  for (std::string_view input : {std::string_view("Hello, world! 123 \xc3\xbcn\xc3\xaf  \n\t x"),
                                 std::string_view("<s></s><|endoftext|>a b")}) {
    auto ids = tok.Encode(input, /*add_special_tokens=*/true);
    if (!ids.ok()) {
      sparkstack::fuzz::CheckError(ids.status());
      continue;
    }
    for (int32_t id : *ids) {
      if (id < 0 || id >= tok.vocab_size()) Fail("Encode produced an id outside the vocabulary");
    }
    auto decoded = tok.Decode(*ids, /*skip_special_tokens=*/false);
    if (!decoded.ok()) sparkstack::fuzz::CheckError(decoded.status());
  }
  return 0;
}
