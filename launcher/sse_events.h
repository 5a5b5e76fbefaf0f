// Splits a growing server-sent-events body into the `data:` payloads of complete events, for the
// clients in this folder (`bench --url`, `chat`).
#ifndef SPARKSTACK_LAUNCHER_SSE_EVENTS_H_
#define SPARKSTACK_LAUNCHER_SSE_EVENTS_H_

#include <string>
#include <string_view>
#include <vector>

namespace sparkstack::launcher {

class SseEvents {
 public:
  // `body` is everything received so far (it only grows). Returns the data of the events completed
  // since the last call ("[DONE]" included), in order; events without "data: " are skipped.
  std::vector<std::string_view> Next(const std::string& body) {
    std::vector<std::string_view> out;
    for (size_t end; (end = body.find("\n\n", scanned_)) != std::string::npos; scanned_ = end + 2) {
      const std::string_view event(body.data() + scanned_, end - scanned_);
      if (event.rfind("data: ", 0) == 0) out.push_back(event.substr(6));
    }
    return out;
  }

 private:
  size_t scanned_ = 0;
};

}  // namespace sparkstack::launcher

#endif  // SPARKSTACK_LAUNCHER_SSE_EVENTS_H_
