// libFuzzer target for the safetensors header parser, the part of the loader that reads untrusted
// bytes. Input: 8 bytes giving the data-section size (little-endian, capped) followed by the
// header text. Beyond "no crash, no sanitizer report", it checks the parser's promises about
// accepted headers: offsets in range, byte counts matching shapes, entries sorted and disjoint.
//
// Build and run: see tests/fuzz/CMakeLists.txt (ctest -L fuzz runs it with its corpus).
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8) return 0;
  uint64_t data_size = 0;
  for (int i = 7; i >= 0; --i) data_size = (data_size << 8) | data[i];
  data_size %= (uint64_t{1} << 40);
  const std::string_view header(reinterpret_cast<const char*>(data + 8), size - 8);
  std::vector<sparkstack::SafetensorsEntry> entries;
  std::map<std::string, std::string> metadata;
  const absl::Status status =
      sparkstack::ParseSafetensorsHeader(header, data_size, "fuzz", &entries, &metadata);
  if (!status.ok()) {
    if (status.message().empty()) __builtin_trap();
    return 0;
  }
  uint64_t previous_end = 0;
  for (const sparkstack::SafetensorsEntry& e : entries) {
    if (e.begin > e.end || e.end > data_size) __builtin_trap();
    if (e.nbytes() != sparkstack::DTypeByteSize(e.dtype, sparkstack::NumElements(e.shape))) {
      __builtin_trap();
    }
    if (e.nbytes() > 0) {
      if (e.begin < previous_end) __builtin_trap();
      previous_end = e.end;
    }
  }
  return 0;
}
