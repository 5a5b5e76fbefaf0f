#include "launcher/bench_serve.h"

#include <chrono>
#include <cmath>
#include <deque>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <utility>  // before Boost 1.74's asio, which uses std::exchange without it
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "boost/asio.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "launcher/bench_load.h"
#include "launcher/http_client.h"
#include "launcher/sse_events.h"
#include "nlohmann/json.hpp"
#include "runtime/core/status_macros.h"

namespace sparkstack::launcher {
namespace {

namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// What one streamed request measured.
struct Measured {
  bool ok = false;
  std::string error;
  Clock::time_point submitted;
  std::vector<Clock::time_point> chunk_times;  // SSE chunks that carried text
  Clock::time_point finished;
  int64_t completion_tokens = 0;
};

// One streaming /v1/completions request on its own connection, on the bench's io_context.
class StreamedRequest : public std::enable_shared_from_this<StreamedRequest> {
 public:
  StreamedRequest(net::io_context& io, const tcp::resolver::results_type& endpoints,
                  std::string host, std::string body, std::string authorization, Measured* out,
                  std::function<void()> done)
      : stream_(io), endpoints_(endpoints), out_(out), done_(std::move(done)) {
    request_ = http::request<http::string_body>(http::verb::post, "/v1/completions", 11);
    request_.set(http::field::host, host);
    request_.set(http::field::content_type, "application/json");
    if (!authorization.empty()) request_.set(http::field::authorization, authorization);
    request_.body() = std::move(body);
    request_.prepare_payload();
  }

  void Start() {
    out_->submitted = Clock::now();
    stream_.async_connect(endpoints_, [self = shared_from_this()](error_code ec, auto) {
      if (ec) return self->Fail("connect", ec);
      http::async_write(self->stream_, self->request_, [self](error_code ec2, size_t) {
        if (ec2) return self->Fail("write", ec2);
        self->parser_.emplace();
        self->parser_->body_limit(boost::none);
        self->Read();
      });
    });
  }

 private:
  void Read() {
    http::async_read_some(stream_, buffer_, *parser_,
                          [self = shared_from_this()](error_code ec, size_t) {
                            if (ec && ec != http::error::end_of_stream) {
                              return self->Fail("read", ec);
                            }
                            self->Scan();
                            if (self->parser_->is_done() || ec) return self->Finish();
                            self->Read();
                          });
  }

  // Handles every complete "data: ...\n\n" event received so far.
  void Scan() {
    if (!parser_->is_header_done()) return;
    if (parser_->get().result_int() != 200) return;
    const Clock::time_point now = Clock::now();
    for (std::string_view data : events_.Next(parser_->get().body())) {
      if (data == "[DONE]") {
        done_seen_ = true;
        continue;
      }
      auto chunk = nlohmann::json::parse(data, nullptr, false);
      if (chunk.is_discarded()) continue;
      if (chunk.contains("error")) error_ = chunk["error"].dump();
      if (chunk.contains("usage") && chunk["usage"].is_object()) {
        out_->completion_tokens = chunk["usage"].value("completion_tokens", int64_t{0});
      }
      if (chunk.contains("choices") && chunk["choices"].is_array() && !chunk["choices"].empty()) {
        const auto& text = chunk["choices"][0]["text"];
        if (text.is_string() && !text.get_ref<const std::string&>().empty()) {
          out_->chunk_times.push_back(now);
        }
      }
    }
  }

  void Finish() {
    out_->finished = Clock::now();
    const int status = parser_->is_header_done() ? parser_->get().result_int() : 0;
    out_->ok = status == 200 && done_seen_ && error_.empty();
    if (!out_->ok) {
      out_->error = status != 200    ? absl::StrCat("HTTP ", status, " ", parser_->get().body())
                    : error_.empty() ? "the stream ended without [DONE]"
                                     : error_;
    }
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    done_();
  }

  void Fail(const char* what, error_code ec) {
    out_->finished = Clock::now();
    out_->ok = false;
    out_->error = absl::StrCat(what, ": ", ec.message());
    done_();
  }

  boost::beast::tcp_stream stream_;
  tcp::resolver::results_type endpoints_;
  http::request<http::string_body> request_;
  boost::beast::flat_buffer buffer_;
  std::optional<http::response_parser<http::string_body>> parser_;
  SseEvents events_;
  bool done_seen_ = false;
  std::string error_;
  Measured* out_;
  std::function<void()> done_;
};

}  // namespace

void AddServeBenchFlags(CLI::App& cmd, ServeBenchFlags& f) {
  cmd.add_option("--url", f.url,
                 "benchmark a running server (http://HOST:PORT) instead of an engine in this "
                 "process: streaming /v1/completions with the same load");
  cmd.add_option("--request-rate", f.request_rate,
                 "with --url: requests per second, Poisson arrivals (default: all at once, "
                 "bounded by --concurrency)")
      ->check(CLI::PositiveNumber);
  cmd.add_option("--api-key-file", f.api_key_file, "with --url: the server's API key");
}

absl::StatusOr<nlohmann::json> MeasureServeBench(const BenchLoad& load,
                                                 const ServeBenchFlags& flags) {
  SPARKSTACK_ASSIGN_OR_RETURN(HttpTarget target, ParseHttpTarget(flags.url, flags.api_key_file));
  SPARKSTACK_ASSIGN_OR_RETURN(ServedModel model, FetchServedModel(target));
  if (model.vocab_size <= 0) {
    return absl::FailedPreconditionError(
        "GET /v1/models: the model card has no vocab_size (is this a sparkstack server?)");
  }
  std::vector<BenchRequest> requests =
      MakeBenchRequests(load.num_prompts, load.input_len, load.output_len, load.range_ratio,
                        load.seed, model.vocab_size);
  std::vector<std::string> bodies;
  int64_t prompt_tokens = 0;
  for (const BenchRequest& r : requests) {
    nlohmann::json body = {{"model", model.name},
                           {"prompt", r.prompt_ids},
                           {"max_tokens", r.max_tokens},
                           {"ignore_eos", true},
                           {"temperature", load.temperature},
                           {"seed", r.seed},
                           {"stream", true},
                           {"stream_options", {{"include_usage", true}}}};
    bodies.push_back(body.dump());
    prompt_tokens += std::ssize(r.prompt_ids);
  }

  net::io_context io;
  tcp::resolver resolver(io);
  error_code ec;
  const auto endpoints = resolver.resolve(target.host, target.port, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("resolve ", target.host, ": ", ec.message()));
  std::vector<Measured> measured(requests.size());
  const size_t cap = load.concurrency > 0 ? static_cast<size_t>(load.concurrency) : requests.size();
  std::deque<size_t> ready;  // arrived, waiting for a slot
  size_t arrived = 0, in_flight = 0, finished = 0;
  std::function<void()> launch_ready = [&] {
    while (!ready.empty() && in_flight < cap) {
      const size_t i = ready.front();
      ready.pop_front();
      ++in_flight;
      std::make_shared<StreamedRequest>(io, endpoints, target.host, std::move(bodies[i]),
                                        target.authorization, &measured[i],
                                        [&] {
                                          --in_flight;
                                          ++finished;
                                          launch_ready();
                                        })
          ->Start();
    }
  };
  // Arrivals: all at once, or a Poisson process at --request-rate.
  std::mt19937_64 arrival_rng(load.seed);
  std::exponential_distribution<double> gap(std::isfinite(flags.request_rate) ? flags.request_rate
                                                                              : 1.0);
  net::steady_timer arrivals(io);
  Clock::time_point next_arrival = Clock::now();
  std::function<void()> arrive = [&] {
    ready.push_back(arrived++);
    launch_ready();
    if (arrived == requests.size()) return;
    next_arrival += std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(gap(arrival_rng)));
    arrivals.expires_at(next_arrival);
    arrivals.async_wait([&](error_code wait_ec) {
      if (!wait_ec) arrive();
    });
  };
  const Clock::time_point start = Clock::now();
  if (std::isfinite(flags.request_rate)) {
    arrive();
  } else {
    for (size_t i = 0; i < requests.size(); ++i) ready.push_back(i);
    arrived = requests.size();
    launch_ready();
  }
  io.run();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();

  std::vector<double> ttft, itl, e2e;
  int64_t output_tokens = 0, failed = 0;
  std::string first_error;
  for (const Measured& m : measured) {
    if (!m.ok) {
      if (failed++ == 0) first_error = m.error;
      continue;
    }
    output_tokens += m.completion_tokens;
    e2e.push_back(Ms(m.finished - m.submitted));
    if (m.chunk_times.empty()) continue;
    ttft.push_back(Ms(m.chunk_times.front() - m.submitted));
    for (size_t t = 1; t < m.chunk_times.size(); ++t) {
      itl.push_back(Ms(m.chunk_times[t] - m.chunk_times[t - 1]));
    }
  }
  if (failed > 0) {
    return absl::UnavailableError(absl::StrCat(failed, " of ", requests.size(),
                                               " requests failed; the first: ", first_error));
  }
  nlohmann::json report = {
      {"url", flags.url},
      {"requests", load.num_prompts},
      {"seconds", seconds},
      {"prompt_tokens", prompt_tokens},
      {"output_tokens", output_tokens},
      {"prompt_tokens_per_s", prompt_tokens / seconds},
      {"output_tokens_per_s", output_tokens / seconds},
      {"requests_per_s", load.num_prompts / seconds},
      {"ttft_ms", {{"p50", Percentile(ttft, 50)}, {"p99", Percentile(ttft, 99)}}},
      {"itl_ms", {{"p50", Percentile(itl, 50)}, {"p99", Percentile(itl, 99)}}},
      {"e2e_ms", {{"p50", Percentile(e2e, 50)}, {"p99", Percentile(e2e, 99)}}}};
  return report;
}

absl::Status RunServeBench(const BenchLoad& load, const ServeBenchFlags& flags) {
  SPARKSTACK_ASSIGN_OR_RETURN(const nlohmann::json report, MeasureServeBench(load, flags));
  if (load.json) {
    std::cout << report.dump() << std::endl;
    return absl::OkStatus();
  }
  const double seconds = report["seconds"].get<double>();
  std::cout << absl::StrFormat(
      "%s: requests %d in %.2f s (%.2f req/s)\n"
      "prompt tokens %d (%.1f tok/s), output tokens %d (%.1f tok/s)\n"
      "TTFT ms p50 %.1f p99 %.1f | ITL ms p50 %.2f p99 %.2f | E2E ms p50 %.1f p99 %.1f\n",
      flags.url, load.num_prompts, seconds, report["requests_per_s"].get<double>(),
      report["prompt_tokens"].get<int64_t>(), report["prompt_tokens_per_s"].get<double>(),
      report["output_tokens"].get<int64_t>(), report["output_tokens_per_s"].get<double>(),
      report["ttft_ms"]["p50"].get<double>(), report["ttft_ms"]["p99"].get<double>(),
      report["itl_ms"]["p50"].get<double>(), report["itl_ms"]["p99"].get<double>(),
      report["e2e_ms"]["p50"].get<double>(), report["e2e_ms"]["p99"].get<double>());
  return absl::OkStatus();
}

}  // namespace sparkstack::launcher
