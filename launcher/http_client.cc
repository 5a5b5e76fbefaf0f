#include "launcher/http_client.h"

#include <chrono>
#include <optional>
#include <utility>  // before Boost 1.74's asio, which uses std::exchange without it

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "boost/asio.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "launcher/sse_events.h"
#include "nlohmann/json.hpp"
#include "runtime/core/status_macros.h"
#include "runtime/serving/api_key.h"

namespace sparkstack::launcher {
namespace {

namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using boost::system::error_code;

absl::Status Connect(const HttpTarget& target, net::io_context& io,
                     boost::beast::tcp_stream& stream) {
  tcp::resolver resolver(io);
  error_code ec;
  auto endpoints = resolver.resolve(target.host, target.port, ec);
  if (!ec) stream.connect(endpoints, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot connect to ", target.host, ":", target.port, ": ", ec.message()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<HttpTarget> ParseHttpTarget(const std::string& url,
                                           const std::string& api_key_file) {
  const std::string scheme = "http://";
  const auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat("--url ", url, ": expected http://HOST:PORT"));
  };
  if (url.rfind(scheme, 0) != 0) return bad();
  std::string rest = url.substr(scheme.size());
  rest = rest.substr(0, rest.find('/'));
  HttpTarget target;
  const size_t colon = rest.rfind(':');
  const size_t bracket = rest.rfind(']');
  if (colon == std::string::npos || (bracket != std::string::npos && colon < bracket)) {
    target.host = rest;
    target.port = "80";
  } else {
    target.host = rest.substr(0, colon);
    target.port = rest.substr(colon + 1);
  }
  if (target.host.size() > 2 && target.host.front() == '[' && target.host.back() == ']') {
    target.host = target.host.substr(1, target.host.size() - 2);
  }
  int port = 0;
  if (target.host.empty() || !absl::SimpleAtoi(target.port, &port) || port <= 0 || port > 65535) {
    return bad();
  }
  if (!api_key_file.empty()) {
    SPARKSTACK_ASSIGN_OR_RETURN(std::string key, serving::ReadApiKeyFile(api_key_file));
    target.authorization = absl::StrCat("Bearer ", key);
  }
  return target;
}

absl::StatusOr<HttpResponse> HttpGet(const HttpTarget& target, const std::string& path) {
  net::io_context io;
  boost::beast::tcp_stream stream(io);
  stream.expires_after(std::chrono::seconds(10));
  SPARKSTACK_RETURN_IF_ERROR(Connect(target, io, stream));
  http::request<http::empty_body> request(http::verb::get, path, 11);
  request.set(http::field::host, target.host);
  if (!target.authorization.empty()) request.set(http::field::authorization, target.authorization);
  error_code ec;
  http::write(stream, request, ec);
  boost::beast::flat_buffer buffer;
  http::response<http::string_body> response;
  if (!ec) http::read(stream, buffer, response, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("GET ", path, ": ", ec.message()));
  return HttpResponse{static_cast<int>(response.result_int()), std::move(response.body())};
}

absl::StatusOr<ServedModel> FetchServedModel(const HttpTarget& target) {
  SPARKSTACK_ASSIGN_OR_RETURN(HttpResponse response, HttpGet(target, "/v1/models"));
  if (response.status != 200) {
    return absl::FailedPreconditionError(
        absl::StrCat("GET /v1/models: HTTP ", response.status, " ", response.body));
  }
  auto json = nlohmann::json::parse(response.body, nullptr, false);
  if (json.is_discarded() || !json.contains("data") || !json["data"].is_array() ||
      json["data"].empty() || !json["data"][0].contains("id") ||
      !json["data"][0]["id"].is_string()) {
    return absl::FailedPreconditionError("GET /v1/models: no model in the answer");
  }
  ServedModel model;
  model.name = json["data"][0]["id"].get<std::string>();
  auto vocab = json["data"][0].find("vocab_size");
  if (vocab != json["data"][0].end() && vocab->is_number_integer()) {
    model.vocab_size = vocab->get<int64_t>();
  }
  return model;
}

absl::Status PostStreaming(const HttpTarget& target, const std::string& path,
                           const std::string& body,
                           const std::function<void(std::string_view data)>& on_event) {
  net::io_context io;
  boost::beast::tcp_stream stream(io);
  SPARKSTACK_RETURN_IF_ERROR(Connect(target, io, stream));
  http::request<http::string_body> request(http::verb::post, path, 11);
  request.set(http::field::host, target.host);
  request.set(http::field::content_type, "application/json");
  if (!target.authorization.empty()) request.set(http::field::authorization, target.authorization);
  request.body() = body;
  request.prepare_payload();
  error_code ec;
  http::write(stream, request, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("POST ", path, ": ", ec.message()));
  boost::beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(boost::none);
  SseEvents events;
  while (!parser.is_done()) {
    http::read_some(stream, buffer, parser, ec);
    if (ec == http::error::end_of_stream) break;
    if (ec) return absl::UnavailableError(absl::StrCat("POST ", path, ": ", ec.message()));
    if (!parser.is_header_done() || parser.get().result_int() != 200) continue;
    for (std::string_view data : events.Next(parser.get().body())) on_event(data);
  }
  if (parser.get().result_int() != 200) {
    auto json = nlohmann::json::parse(parser.get().body(), nullptr, false);
    std::string message = parser.get().body();
    if (!json.is_discarded() && json.contains("error") && json["error"].contains("message")) {
      message = json["error"]["message"].get<std::string>();
    }
    return absl::Status(parser.get().result_int() == 401 ? absl::StatusCode::kUnauthenticated
                                                         : absl::StatusCode::kFailedPrecondition,
                        absl::StrCat("HTTP ", parser.get().result_int(), ": ", message));
  }
  return absl::OkStatus();
}

}  // namespace sparkstack::launcher
