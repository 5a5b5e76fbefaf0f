// API key authentication shared by the HTTP and gRPC servers: `Authorization: Bearer KEY` (HTTP
// header or gRPC metadata), compared in constant time.
#ifndef SPARKSTACK_RUNTIME_SERVING_API_KEY_H_
#define SPARKSTACK_RUNTIME_SERVING_API_KEY_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sparkstack::serving {

// Reads the key from `path`: the file's content without surrounding white space. NotFound when
// the file cannot be read; InvalidArgument when the key is empty, longer than 4096 bytes, or
// holds characters outside visible ASCII (it must fit an HTTP header).
absl::StatusOr<std::string> ReadApiKeyFile(const std::string& path);

// OK when `key` is empty (no authentication) or `authorization` is "Bearer <key>" (scheme
// case-insensitive). Unauthenticated otherwise, saying whether the header was missing or wrong.
absl::Status CheckAuthorization(absl::string_view authorization, absl::string_view key);

}  // namespace sparkstack::serving

#endif  // SPARKSTACK_RUNTIME_SERVING_API_KEY_H_
