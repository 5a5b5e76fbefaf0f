#include "runtime/serving/openai_routes.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "runtime/core/status_macros.h"
#include "runtime/serving/api_key.h"
#include "runtime/serving/chat_input.h"
#include "runtime/serving/openai_generation.h"
#include "runtime/serving/openai_request.h"
#include "runtime/serving/openai_response.h"
#include "runtime/serving/status_mapping.h"

namespace sparkstack::serving {
namespace {

constexpr absl::string_view kJson = "application/json";

class Router {
 public:
  explicit Router(InferenceCore& core) : core_(core) {}

  void Handle(HttpRequest request, std::shared_ptr<HttpExchange> exchange) {
    const Clock::time_point arrival = Clock::now();
    const std::string& path = request.path;
    const bool get = request.method == "GET";
    const bool post = request.method == "POST";
    if (path == "/health") {
      if (!get) return MethodNotAllowed(*exchange, "GET");
      return Health(*exchange);
    }
    if (path == "/metrics") {
      if (!get) return MethodNotAllowed(*exchange, "GET");
      return exchange->Respond(
          200, "text/plain; version=0.0.4; charset=utf-8",
          core_.metrics().Render(core_.engine().stats(), core_.active_requests()));
    }
    const bool known = path == "/v1/models" || path == "/v1/completions" ||
                       path == "/v1/chat/completions" || path == "/tokenize" ||
                       path == "/detokenize" || path.starts_with("/v1/models/");
    if (!known) {
      return Error(*exchange, absl::NotFoundError(absl::StrCat("no route ", path)));
    }
    if (absl::Status auth = CheckAuthorization(request.authorization, core_.options().api_key);
        !auth.ok()) {
      return Error(*exchange, auth);
    }
    if (path == "/v1/models" || path.starts_with("/v1/models/")) {
      if (!get) return MethodNotAllowed(*exchange, "GET");
      return Models(*exchange, path);
    }
    if (!post) return MethodNotAllowed(*exchange, "POST");
    if (path == "/tokenize") return Tokenize(request.body, *exchange);
    if (path == "/detokenize") return Detokenize(request.body, *exchange);
    const OpenAiEndpoint endpoint =
        path == "/v1/completions" ? OpenAiEndpoint::kCompletions : OpenAiEndpoint::kChatCompletions;
    auto parsed = ParseOpenAiRequest(endpoint, request.body, core_.limits());
    if (!parsed.ok()) return Error(*exchange, parsed.status());
    if (absl::Status model = CheckModel(parsed->model); !model.ok()) {
      return Error(*exchange, model);
    }
    StartOpenAiGeneration(core_, *std::move(parsed), std::move(exchange), arrival);
  }

 private:
  void Error(HttpExchange& exchange, const absl::Status& status) {
    core_.metrics().CountOutcome(RefusalOutcome(status.code()));
    exchange.Respond(HttpStatusFor(status.code()), kJson, DumpJson(ErrorJson(status)));
  }

  void MethodNotAllowed(HttpExchange& exchange, absl::string_view allowed) {
    core_.metrics().CountOutcome(Outcome::kInvalid);
    exchange.Respond(405, kJson,
                     DumpJson(ErrorJson(absl::InvalidArgumentError(
                         absl::StrCat("method not allowed: use ", allowed)))));
  }

  absl::Status CheckModel(const std::string& model) const {
    if (model.empty() || model == core_.options().served_model_name) return absl::OkStatus();
    return absl::NotFoundError(absl::StrCat("The model `", model, "` does not exist. This server ",
                                            "serves `", core_.options().served_model_name, "`."));
  }

  void Health(HttpExchange& exchange) {
    absl::Status health = core_.Health();
    if (health.ok()) return exchange.Respond(200, kJson, "{\"status\":\"ok\"}");
    Json body = {{"status", "unavailable"}, {"reason", std::string(health.message())}};
    exchange.Respond(503, kJson, DumpJson(body));
  }

  Json ModelCard() const {
    const std::string& name = core_.options().served_model_name;
    return {{"id", name},
            {"object", "model"},
            {"created", start_unix_},
            {"owned_by", "sparkstack"},
            {"root", name},
            {"parent", nullptr},
            {"max_model_len", core_.max_model_len()},
            {"vocab_size", core_.engine().model_config().vocab_size}};
  }

  void Models(HttpExchange& exchange, const std::string& path) {
    if (path == "/v1/models") {
      Json body = {{"object", "list"}, {"data", Json::array({ModelCard()})}};
      return exchange.Respond(200, kJson, DumpJson(body));
    }
    absl::Status found = CheckModel(path.substr(absl::string_view("/v1/models/").size()));
    if (!found.ok()) return Error(exchange, found);
    exchange.Respond(200, kJson, DumpJson(ModelCard()));
  }

  // A /tokenize or /detokenize body: a JSON object whose optional "model" is the served one.
  absl::StatusOr<Json> ParseObject(const std::string& body) const {
    Json json = Json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded() || !json.is_object()) {
      return absl::InvalidArgumentError("the request body must be a JSON object");
    }
    if (auto model = json.find("model"); model != json.end() && !model->is_null()) {
      if (!model->is_string()) return absl::InvalidArgumentError("model: expected a string");
      SPARKSTACK_RETURN_IF_ERROR(CheckModel(model->get<std::string>()));
    }
    return json;
  }

  // {"prompt": "..."} or {"messages": [...]}, with add_special_tokens / add_generation_prompt.
  absl::StatusOr<Json> TokenizeBody(const std::string& body) const {
    SPARKSTACK_ASSIGN_OR_RETURN(Json json, ParseObject(body));
    PromptSpec prompt;
    auto flag = [&](const char* key, bool* out) -> absl::Status {
      auto it = json.find(key);
      if (it == json.end() || it->is_null()) return absl::OkStatus();
      if (!it->is_boolean())
        return absl::InvalidArgumentError(absl::StrCat(key, ": expected a boolean"));
      *out = it->get<bool>();
      return absl::OkStatus();
    };
    if (auto text = json.find("prompt"); text != json.end()) {
      if (!text->is_string()) return absl::InvalidArgumentError("prompt: expected a string");
      prompt.kind = PromptSpec::Kind::kText;
      prompt.text = text->get<std::string>();
      SPARKSTACK_RETURN_IF_ERROR(flag("add_special_tokens", &prompt.add_special_tokens));
    } else if (auto messages = json.find("messages"); messages != json.end()) {
      prompt.kind = PromptSpec::Kind::kChat;
      SPARKSTACK_ASSIGN_OR_RETURN(prompt.messages, ValidateChatMessages(*messages));
      SPARKSTACK_RETURN_IF_ERROR(flag("add_generation_prompt", &prompt.add_generation_prompt));
    } else {
      return absl::InvalidArgumentError("give \"prompt\" (a string) or \"messages\"");
    }
    SPARKSTACK_ASSIGN_OR_RETURN(std::vector<int32_t> ids, core_.EncodePrompt(prompt));
    return Json{{"count", ids.size()}, {"max_model_len", core_.max_model_len()}, {"tokens", ids}};
  }

  void Tokenize(const std::string& body, HttpExchange& exchange) {
    auto result = TokenizeBody(body);
    if (!result.ok()) return Error(exchange, result.status());
    exchange.Respond(200, kJson, DumpJson(*result));
  }

  absl::StatusOr<Json> DetokenizeBody(const std::string& body) const {
    SPARKSTACK_ASSIGN_OR_RETURN(Json json, ParseObject(body));
    auto tokens = json.find("tokens");
    if (tokens == json.end() || !tokens->is_array()) {
      return absl::InvalidArgumentError("tokens: expected an array of token ids");
    }
    std::vector<int32_t> ids;
    for (size_t i = 0; i < tokens->size(); ++i) {
      const Json& id = (*tokens)[i];
      if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
          id.get<int64_t>() > std::numeric_limits<int32_t>::max()) {
        return absl::InvalidArgumentError(absl::StrCat("tokens[", i, "]: expected a token id"));
      }
      ids.push_back(id.get<int32_t>());
    }
    bool skip = false;
    if (auto it = json.find("skip_special_tokens"); it != json.end() && !it->is_null()) {
      if (!it->is_boolean()) {
        return absl::InvalidArgumentError("skip_special_tokens: expected a boolean");
      }
      skip = it->get<bool>();
    }
    SPARKSTACK_ASSIGN_OR_RETURN(std::string text, core_.Decode(ids, skip));
    return Json{{"prompt", text}};
  }

  void Detokenize(const std::string& body, HttpExchange& exchange) {
    auto result = DetokenizeBody(body);
    if (!result.ok()) return Error(exchange, result.status());
    exchange.Respond(200, kJson, DumpJson(*result));
  }

  InferenceCore& core_;
  const int64_t start_unix_ = UnixSeconds();
};

}  // namespace

HttpHandler MakeOpenAiHandler(InferenceCore& core) {
  auto router = std::make_shared<Router>(core);
  return [router](HttpRequest request, std::shared_ptr<HttpExchange> exchange) {
    router->Handle(std::move(request), std::move(exchange));
  };
}

}  // namespace sparkstack::serving
