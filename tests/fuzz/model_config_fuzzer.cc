// libFuzzer target for config.json: the bytes are the file's text. Beyond "no crash", an accepted
// config must satisfy what ParseModelConfig promises (positive sizes, even head_dim, heads a
// multiple of kv heads, sizes within int32) and survive a round trip through ModelConfigToJson.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "nlohmann/json.hpp"
#include "runtime/model/model_config.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using sparkstack::fuzz::Fail;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return 0;
  auto config = sparkstack::ParseModelConfig(json, "fuzz/config.json");
  if (!config.ok()) {
    sparkstack::fuzz::CheckError(config.status());
    return 0;
  }
  const sparkstack::ModelConfig& c = *config;
  if (c.hidden_size <= 0 || c.num_layers <= 0 || c.num_heads <= 0 || c.num_kv_heads <= 0 ||
      c.vocab_size <= 0 || c.head_dim <= 0 || c.max_position_embeddings <= 0) {
    Fail("accepted a non-positive size");
  }
  if (c.head_dim % 2 != 0) Fail("accepted an odd head_dim");
  if (c.num_heads % c.num_kv_heads != 0) Fail("accepted heads not a multiple of kv heads");
  if (c.vocab_size > INT32_MAX || c.max_position_embeddings > INT32_MAX) {
    Fail("accepted a size past int32");
  }
  auto again = sparkstack::ParseModelConfig(sparkstack::ModelConfigToJson(c), "round trip");
  if (!again.ok() || !(*again == c)) Fail("ModelConfigToJson does not round-trip");
  return 0;
}
