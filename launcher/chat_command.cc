// `sparkstack chat --url URL`: an interactive chat with a running `sparkstack serve`. Each line
// typed is a user turn; the reply streams from /v1/chat/completions as it is generated and joins
// the conversation. Commands: /reset (forget the conversation), /quit (or end of input).
#include <iostream>
#include <memory>
#include <string>

#include "launcher/chat_stream.h"
#include "launcher/command_registry.h"
#include "launcher/http_client.h"
#include "nlohmann/json.hpp"
#include "runtime/core/status_macros.h"

namespace sparkstack::launcher {
namespace {

struct ChatFlags {
  std::string url = "http://127.0.0.1:8000";
  std::string api_key_file;
  std::string system;
  ChatSampling sampling;  // --temperature, --max-tokens
};

absl::Status Run(const ChatFlags& f) {
  SPARKSTACK_ASSIGN_OR_RETURN(HttpTarget target, ParseHttpTarget(f.url, f.api_key_file));
  SPARKSTACK_ASSIGN_OR_RETURN(ServedModel model, FetchServedModel(target));
  auto fresh = [&] {
    nlohmann::json messages = nlohmann::json::array();
    if (!f.system.empty()) messages.push_back({{"role", "system"}, {"content", f.system}});
    return messages;
  };
  nlohmann::json messages = fresh();
  std::cerr << "chatting with " << model.name << " at " << f.url << " (/reset forgets, /quit ends)"
            << std::endl;
  std::string line;
  while (std::cout << "> " << std::flush, std::getline(std::cin, line)) {
    if (line == "/quit") break;
    if (line == "/reset") {
      messages = fresh();
      continue;
    }
    if (line.empty()) continue;
    messages.push_back({{"role", "user"}, {"content", line}});
    auto reply = StreamChatReply(target, model.name, messages, f.sampling, std::cout);
    if (!reply.ok()) {
      // The turn did not happen: say why and let the user go on.
      std::cerr << "sparkstack chat: " << reply.status().message() << std::endl;
      messages.erase(messages.size() - 1);
      continue;
    }
    messages.push_back({{"role", "assistant"}, {"content", *reply}});
  }
  return absl::OkStatus();
}

void SetupChatCommand(CLI::App& root) {
  auto flags = std::make_shared<ChatFlags>();
  CLI::App* cmd = root.add_subcommand("chat", "Chat with a running `sparkstack serve`");
  cmd->add_option("--url", flags->url, "the server (http://HOST:PORT)")->capture_default_str();
  cmd->add_option("--api-key-file", flags->api_key_file, "the server's API key");
  cmd->add_option("--system", flags->system, "a system message that starts the conversation");
  cmd->add_option("--max-tokens", flags->sampling.max_tokens,
                  "tokens per reply at most (0: no limit)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--temperature", flags->sampling.temperature, "0 = greedy")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->callback([flags] { FinishCommand(Run(*flags)); });
}

}  // namespace

SPARKSTACK_REGISTER_COMMAND(SetupChatCommand);

}  // namespace sparkstack::launcher
