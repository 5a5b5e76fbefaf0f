// The API servers' flags of `sparkstack serve` (--host, --port, --grpc-port,
// --served-model-name, --api-key-file and the request limits), turned into
// serving::ServingOptions. Shared by every serve variant so the flag names stay one set.
#ifndef SPARKSTACK_LAUNCHER_SERVING_FLAGS_H_
#define SPARKSTACK_LAUNCHER_SERVING_FLAGS_H_

#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "runtime/serving/serving_options.h"

namespace sparkstack::launcher {

struct ServingFlags {
  std::string host = "127.0.0.1";
  int port = 8000;
  int grpc_port = 50051;
  std::string served_model_name;
  std::string api_key_file;
  int http_threads = 2;
  serving::ServingLimits limits;
};

void AddServingFlags(CLI::App& command, ServingFlags& flags);

// The options for serving `model_dir`: the served name defaults to the directory's last
// component; the API key is read from --api-key-file (errors name the file).
absl::StatusOr<serving::ServingOptions> MakeServingOptions(const ServingFlags& flags,
                                                           const std::string& model_dir);

}  // namespace sparkstack::launcher

#endif  // SPARKSTACK_LAUNCHER_SERVING_FLAGS_H_
