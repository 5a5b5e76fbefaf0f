// The HTTP API end to end over real sockets, in front of FakeEngine, with Boost.Beast as the
// client: exact SSE bytes, keep-alive and pipelining, a client that disconnects mid-stream
// (its request is aborted), the concurrency limit, health, n > 1. Runs under ASan in CI, which is
// where the server's connection and request lifetimes get checked.
#include <chrono>
#include <string>
#include <thread>
#include <utility>  // before Boost 1.74's asio, which uses std::exchange without it

#include "boost/asio.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runtime/serving/server.h"
#include "tests/unit/serving/fake_engine.h"

namespace sparkstack::serving {
namespace {

namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using ::testing::HasSubstr;

class HttpApiTest : public ::testing::Test {
 protected:
  void Start(ServingLimits limits = {},
             std::chrono::milliseconds step = std::chrono::milliseconds(1)) {
    engine_ = std::make_unique<FakeEngine>(step);
    ServingOptions options;
    options.http_port = 0;
    options.grpc_port = -1;
    options.served_model_name = "fake";
    options.limits = limits;
    auto server = StartApiServer(*engine_, options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
    server_.reset();
    engine_.reset();
  }

  tcp::socket Connect() {
    tcp::socket socket(io_);
    socket.connect(
        {net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(server_->http_port())});
    return socket;
  }

  http::response<http::string_body> Exchange(tcp::socket& socket, http::verb verb,
                                             const std::string& target, const std::string& body) {
    http::request<http::string_body> request(verb, target, 11);
    request.set(http::field::host, "localhost");
    request.set(http::field::content_type, "application/json");
    request.body() = body;
    request.prepare_payload();
    http::write(socket, request);
    http::response<http::string_body> response;
    http::read(socket, buffer_, response);
    return response;
  }

  http::response<http::string_body> Post(const std::string& target, const std::string& body) {
    tcp::socket socket = Connect();
    return Exchange(socket, http::verb::post, target, body);
  }

  net::io_context io_;
  boost::beast::flat_buffer buffer_;
  std::unique_ptr<FakeEngine> engine_;
  std::unique_ptr<ApiServer> server_;
};

// The exact event stream OpenAI clients parse, built independently of the server's formatter.
TEST_F(HttpApiTest, StreamedCompletionIsExactSse) {
  Start();
  auto response = Post("/v1/completions",
                       R"({"prompt": [7, 8], "max_tokens": 3, "stream": true, "logprobs": 0,
                           "stream_options": {"include_usage": true}})");
  EXPECT_EQ(response.result_int(), 200);
  EXPECT_THAT(std::string(response[http::field::content_type]), HasSubstr("text/event-stream"));
  EXPECT_TRUE(response.chunked());
  const std::string& body = response.body();
  std::vector<nlohmann::json> events;
  size_t pos = 0;
  while (pos < body.size()) {
    ASSERT_EQ(body.compare(pos, 6, "data: "), 0) << body.substr(pos);
    const size_t end = body.find("\n\n", pos);
    ASSERT_NE(end, std::string::npos);
    const std::string data = body.substr(pos + 6, end - pos - 6);
    ASSERT_EQ(data.find('\n'), std::string::npos);
    if (data == "[DONE]") {
      EXPECT_EQ(end + 2, body.size()) << "[DONE] must be the last event";
      break;
    }
    events.push_back(nlohmann::json::parse(data));
    pos = end + 2;
  }
  ASSERT_EQ(events.size(), 4u);  // three tokens, then the usage chunk
  for (int i = 0; i < 3; ++i) {
    const auto& choice = events[i]["choices"][0];
    EXPECT_EQ(events[i]["object"], "text_completion");
    EXPECT_EQ(events[i]["model"], "fake");
    EXPECT_EQ(choice["logprobs"]["tokens"][0], "token_id:" + std::to_string(7 + i));
    EXPECT_EQ(choice["logprobs"]["token_logprobs"][0], -0.25);
    EXPECT_EQ(choice["finish_reason"], i == 2 ? nlohmann::json("length") : nlohmann::json());
    EXPECT_TRUE(events[i]["usage"].is_null());
  }
  EXPECT_TRUE(events[3]["choices"].empty());
  EXPECT_EQ(events[3]["usage"]["prompt_tokens"], 2);
  EXPECT_EQ(events[3]["usage"]["completion_tokens"], 3);
  EXPECT_EQ(events[3]["usage"]["total_tokens"], 5);
}

TEST_F(HttpApiTest, KeepAliveAndPipelining) {
  Start();
  tcp::socket socket = Connect();
  for (int i = 0; i < 3; ++i) {
    auto response = Exchange(socket, http::verb::get, "/health", "");
    EXPECT_EQ(response.result_int(), 200);
    EXPECT_TRUE(response.keep_alive());
  }
  // Two requests written at once are answered in order on the same connection.
  const std::string body = R"({"prompt": [1], "max_tokens": 2})";
  const std::string pipelined =
      "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\n\r\n" + body + "GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n";
  net::write(socket, net::buffer(pipelined));
  http::response<http::string_body> first, second;
  http::read(socket, buffer_, first);
  http::read(socket, buffer_, second);
  EXPECT_EQ(first.result_int(), 200);
  EXPECT_EQ(nlohmann::json::parse(first.body())["usage"]["completion_tokens"], 2);
  EXPECT_EQ(second.result_int(), 200);
  EXPECT_EQ(nlohmann::json::parse(second.body())["data"][0]["id"], "fake");
}

TEST_F(HttpApiTest, ClientThatLeavesMidStreamAbortsItsRequest) {
  Start({}, std::chrono::milliseconds(5));
  {
    tcp::socket socket = Connect();
    const std::string body = R"({"prompt": [5], "max_tokens": 200, "stream": true})";
    const std::string request = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                                std::to_string(body.size()) + "\r\n\r\n" + body;
    net::write(socket, net::buffer(request));
    char head[64];
    socket.read_some(net::buffer(head));  // the response has started
  }                                       // closed mid-stream
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (engine_->running() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(engine_->running(), 0u);
  EXPECT_EQ(engine_->aborted().size(), 1u);
}

TEST_F(HttpApiTest, ConcurrencyLimitAndHealth) {
  ServingLimits limits;
  limits.max_concurrent_requests = 2;
  Start(limits, std::chrono::milliseconds(5));
  auto three = Post("/v1/completions", R"({"prompt": [1], "max_tokens": 2, "n": 3})");
  EXPECT_EQ(three.result_int(), 429);
  EXPECT_THAT(three.body(), HasSubstr("too many concurrent requests"));
  auto two = Post("/v1/completions", R"({"prompt": [1], "max_tokens": 2, "n": 2})");
  ASSERT_EQ(two.result_int(), 200);
  auto json = nlohmann::json::parse(two.body());
  EXPECT_EQ(json["choices"].size(), 2u);
  EXPECT_EQ(json["usage"]["prompt_tokens"], 1);  // counted once for both choices
  EXPECT_EQ(json["usage"]["completion_tokens"], 4);

  engine_->set_health(absl::UnavailableError("node 2 lost"));
  auto health = Post("/health", "");
  EXPECT_EQ(health.result_int(), 405);
  tcp::socket socket = Connect();
  auto down = Exchange(socket, http::verb::get, "/health", "");
  EXPECT_EQ(down.result_int(), 503);
  EXPECT_THAT(down.body(), HasSubstr("node 2 lost"));
  auto refused = Post("/v1/completions", R"({"prompt": [1], "max_tokens": 2})");
  EXPECT_EQ(refused.result_int(), 503);
  EXPECT_THAT(refused.body(), HasSubstr("node 2 lost"));
}

TEST_F(HttpApiTest, MetricsAfterTraffic) {
  Start();
  ASSERT_EQ(Post("/v1/completions", R"({"prompt": [3, 4, 5], "max_tokens": 4})").result_int(), 200);
  ASSERT_EQ(Post("/v1/completions", R"({"prompt": "x", "temperature": "hot"})").result_int(), 400);
  tcp::socket socket = Connect();
  auto metrics = Exchange(socket, http::verb::get, "/metrics", "");
  ASSERT_EQ(metrics.result_int(), 200);
  const std::string& text = metrics.body();
  EXPECT_THAT(text, HasSubstr("sparkstack_requests_total{outcome=\"finished\"} 1"));
  EXPECT_THAT(text, HasSubstr("sparkstack_requests_total{outcome=\"invalid\"} 1"));
  EXPECT_THAT(text, HasSubstr("sparkstack_prompt_tokens_total 3"));
  EXPECT_THAT(text, HasSubstr("sparkstack_generation_tokens_total 4"));
  EXPECT_THAT(text, HasSubstr("sparkstack_time_to_first_token_seconds_count 1"));
  EXPECT_THAT(text, HasSubstr("sparkstack_inter_token_latency_seconds_count 3"));
}

TEST_F(HttpApiTest, ShutdownEndsOpenStreams) {
  Start({}, std::chrono::milliseconds(5));
  tcp::socket socket = Connect();
  const std::string body = R"({"prompt": [5], "max_tokens": 10000, "stream": true})";
  const std::string request =
      "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\n\r\n" + body;
  net::write(socket, net::buffer(request));
  char head[64];
  socket.read_some(net::buffer(head));
  server_->Shutdown();  // must return: the stream is aborted, the connection closed
  EXPECT_EQ(engine_->running(), 0u);
}

}  // namespace
}  // namespace sparkstack::serving
