// The HTTP client pieces of the commands that talk to `sparkstack serve` (`bench --url`, `chat`):
// the server's address from a URL, its served model, and one streaming POST (Boost.Beast, sync).
#ifndef SPARKSTACK_LAUNCHER_HTTP_CLIENT_H_
#define SPARKSTACK_LAUNCHER_HTTP_CLIENT_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace sparkstack::launcher {

struct HttpTarget {
  std::string host;
  std::string port;
  std::string authorization;  // "Bearer KEY", or empty
};

// "http://HOST:PORT[/...]" (IPv6 hosts in brackets); the key, when a file is given, from
// serving::ReadApiKeyFile. InvalidArgument names the flag.
absl::StatusOr<HttpTarget> ParseHttpTarget(const std::string& url, const std::string& api_key_file);

struct HttpResponse {
  int status = 0;
  std::string body;
};

// One GET (10 s at most). Unavailable when the server cannot be reached; any HTTP status is a
// response.
absl::StatusOr<HttpResponse> HttpGet(const HttpTarget& target, const std::string& path);

struct ServedModel {
  std::string name;
  int64_t vocab_size = 0;  // 0 when the server's model card does not say
};

// GET /v1/models: the first model. Unavailable when the server cannot be reached.
absl::StatusOr<ServedModel> FetchServedModel(const HttpTarget& target);

// POSTs `body` (JSON) to `path` and calls `on_event` with the data of every server-sent event as
// it arrives. A non-200 answer is an error carrying the server's message.
absl::Status PostStreaming(const HttpTarget& target, const std::string& path,
                           const std::string& body,
                           const std::function<void(std::string_view data)>& on_event);

}  // namespace sparkstack::launcher

#endif  // SPARKSTACK_LAUNCHER_HTTP_CLIENT_H_
