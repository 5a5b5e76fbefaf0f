// One streamed chat turn against an OpenAI-compatible server (`sparkstack serve`): what `chat`
// does for every line typed and `demo` does once.
#ifndef SPARKSTACK_LAUNCHER_CHAT_STREAM_H_
#define SPARKSTACK_LAUNCHER_CHAT_STREAM_H_

#include <cstdint>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "launcher/http_client.h"
#include "nlohmann/json.hpp"

namespace sparkstack::launcher {

struct ChatSampling {
  float temperature = 0.7f;  // 0 = greedy
  int64_t max_tokens = 0;    // 0: the server's default (up to the context)
};

// POSTs `messages` (an array of {"role", "content"}) to /v1/chat/completions with "stream": true
// and writes each piece of the reply to `out` as it arrives (flushed), then a newline. Returns the
// whole reply. Errors: PostStreaming's (unreachable server, a non-200 answer with its message);
// Unavailable with the server's message when the stream carries an error.
absl::StatusOr<std::string> StreamChatReply(const HttpTarget& target, const std::string& model,
                                            const nlohmann::json& messages,
                                            const ChatSampling& sampling, std::ostream& out);

}  // namespace sparkstack::launcher

#endif  // SPARKSTACK_LAUNCHER_CHAT_STREAM_H_
