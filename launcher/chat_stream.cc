#include "launcher/chat_stream.h"

#include "absl/strings/str_cat.h"
#include "runtime/core/status_macros.h"

namespace sparkstack::launcher {

absl::StatusOr<std::string> StreamChatReply(const HttpTarget& target, const std::string& model,
                                            const nlohmann::json& messages,
                                            const ChatSampling& sampling, std::ostream& out) {
  nlohmann::json body = {{"model", model},
                         {"messages", messages},
                         {"temperature", sampling.temperature},
                         {"stream", true}};
  if (sampling.max_tokens > 0) body["max_tokens"] = sampling.max_tokens;
  std::string reply, error;
  SPARKSTACK_RETURN_IF_ERROR(
      PostStreaming(target, "/v1/chat/completions", body.dump(), [&](std::string_view data) {
        if (data == "[DONE]") return;
        auto chunk = nlohmann::json::parse(data, nullptr, false);
        if (chunk.is_discarded()) return;
        if (chunk.contains("error")) error = chunk["error"].value("message", chunk.dump());
        if (!chunk.contains("choices") || chunk["choices"].empty()) return;
        const auto& delta = chunk["choices"][0]["delta"];
        if (delta.contains("content") && delta["content"].is_string()) {
          const std::string& piece = delta["content"].get_ref<const std::string&>();
          reply += piece;
          out << piece << std::flush;
        }
      }));
  out << std::endl;
  if (!error.empty()) return absl::UnavailableError(absl::StrCat("the server failed: ", error));
  return reply;
}

}  // namespace sparkstack::launcher
