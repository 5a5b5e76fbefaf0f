// How long SafetensorsFile::Open takes on headers of many entries, against the peer every reader
// must at least pay: nlohmann's plain DOM parse of the same header text (no validation, no
// index). Prints one JSON line per size: {"entries": N, "header_bytes": B, "open_seconds": s,
// "json_parse_seconds": p, "ratio": s / p}. A linear parser keeps the ratio flat as N grows.
// Usage: safetensors_header_bench [ENTRIES ...]   (default 1000 30000 1000000)
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "runtime/model/safetensors.h"

namespace {

std::string Header(int n) {
  std::string header = "{";
  for (int i = 0; i < n; ++i) {
    if (i > 0) header += ",";
    header += "\"model.layers." + std::to_string(i) +
              ".weight\":{\"dtype\":\"F32\",\"shape\":[1],"
              "\"data_offsets\":[" +
              std::to_string(4 * i) + "," + std::to_string(4 * i + 4) + "]}";
  }
  return header + "}";
}

template <typename F>
double Seconds(F f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> sizes;
  for (int i = 1; i < argc; ++i) sizes.push_back(std::atoi(argv[i]));
  if (sizes.empty()) sizes = {1000, 30000, 1000000};
  const std::string path = "/tmp/safetensors_header_bench." + std::to_string(getpid());
  for (int n : sizes) {
    const std::string header = Header(n);
    {
      std::ofstream out(path, std::ios::binary);
      for (int i = 0; i < 8; ++i)
        out.put(static_cast<char>(static_cast<uint64_t>(header.size()) >> (8 * i)));
      out << header << std::string(4 * static_cast<size_t>(n), '\0');
    }
    bool ok = false;
    const double open = Seconds([&] { ok = sparkstack::SafetensorsFile::Open(path).ok(); });
    const double parse = Seconds([&] { (void)nlohmann::json::parse(header); });
    std::printf(
        "{\"entries\": %d, \"header_bytes\": %zu, \"ok\": %s, \"open_seconds\": %.3f, "
        "\"json_parse_seconds\": %.3f, \"ratio\": %.2f}\n",
        n, header.size(), ok ? "true" : "false", open, parse, open / parse);
  }
  std::remove(path.c_str());
  return 0;
}
