#include "runtime/serving/http_server.h"

#include <atomic>
#include <cstdio>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "boost/asio.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/http.hpp"

namespace sparkstack::serving {
namespace {

namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using boost::system::error_code;

// Bytes asked of the socket per read while a request arrives, and while a handler runs (then a
// read only watches for the client leaving or pipelining its next request).
constexpr size_t kReadChunk = 16 << 10;
constexpr size_t kWatchChunk = 512;
// After an error response that closes the connection, what the client still sends is read and
// dropped (up to this much, for this long) so that it sees the response rather than a reset.
constexpr size_t kLingerBytes = 16 << 20;
constexpr auto kLingerTime = std::chrono::seconds(2);

std::string StatusLine(int status) {
  const auto reason = http::obsolete_reason(http::int_to_status(static_cast<unsigned>(status)));
  return absl::StrCat("HTTP/1.1 ", status, " ", absl::string_view(reason.data(), reason.size()),
                      "\r\n");
}

std::string ErrorJson(absl::string_view message, absl::string_view type) {
  // The OpenAI error shape; `message` is our own ASCII text.
  return absl::StrCat("{\"error\":{\"message\":\"", message, "\",\"type\":\"", type,
                      "\",\"param\":null,\"code\":null}}");
}

}  // namespace

class HttpConnection;

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  net::io_context ioc;
  tcp::acceptor acceptor{ioc};
  net::steady_timer accept_retry{ioc};
  // Keeps the I/O threads running until Stop(), even with no connection open.
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::atomic<bool> closed{false};
  ServingLimits limits;
  HttpHandler handler;
  std::vector<std::thread> threads;
  std::atomic<bool> stopped{false};
  int port = 0;

  std::mutex mu;
  std::unordered_map<HttpConnection*, std::weak_ptr<HttpConnection>> connections;

  void Accept();
  void Forget(HttpConnection* connection) {
    std::lock_guard<std::mutex> lock(mu);
    connections.erase(connection);
  }
};

// One client connection. Everything below runs on the connection's strand (the socket's
// executor), so no member needs a lock.
class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
 public:
  HttpConnection(tcp::socket socket, std::shared_ptr<HttpServer::Impl> server)
      : socket_(std::move(socket)), timer_(socket_.get_executor()), server_(std::move(server)) {}

  void Start() { BeginRequest(server_->limits.header_timeout_ms); }
  tcp::socket::executor_type executor() { return socket_.get_executor(); }

  // Thread-safe entry points, used by Exchange.
  void Post(std::function<void()> fn) {
    net::post(socket_.get_executor(), [self = shared_from_this(), fn = std::move(fn)] { fn(); });
  }
  void Close() {
    if (state_ == State::kClosed) return;
    state_ = State::kClosed;
    ClientGone();
    error_code ignored;
    timer_.cancel();
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    server_->Forget(this);
  }

  // Strand-only; `serial` names the exchange the caller belongs to.
  void Respond(uint64_t serial, int status, absl::string_view content_type, std::string body) {
    if (!Current(serial) || responded_) return;
    responded_ = true;
    std::string head = StatusLine(status);
    absl::StrAppend(&head, "Content-Type: ", content_type, "\r\nContent-Length: ", body.size(),
                    "\r\n", keep_alive_ ? "" : "HttpConnection: close\r\n", "\r\n");
    Queue(std::move(head));
    Queue(std::move(body));
    end_after_write_ = true;
    Flush();
  }
  void StartStream(uint64_t serial, int status, absl::string_view content_type) {
    if (!Current(serial) || responded_) return;
    responded_ = true;
    streaming_ = true;
    std::string head = StatusLine(status);
    absl::StrAppend(&head, "Content-Type: ", content_type,
                    "\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n",
                    keep_alive_ ? "" : "HttpConnection: close\r\n", "\r\n");
    Queue(std::move(head));
    Flush();
  }
  void Send(uint64_t serial, std::string data) {
    if (!Current(serial) || !streaming_ || end_after_write_ || data.empty()) return;
    char size[24];
    std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
    Queue(size);
    Queue(std::move(data));
    Queue("\r\n");
    Flush();
  }
  void End(uint64_t serial) {
    if (!Current(serial) || !streaming_ || end_after_write_) return;
    Queue("0\r\n\r\n");
    end_after_write_ = true;
    Flush();
  }
  void OnClientGone(uint64_t serial, std::function<void()> fn) {
    if (!Current(serial)) return;
    if (gone_) {
      fn();
      return;
    }
    on_gone_ = std::move(fn);
  }

 private:
  enum class State { kReading, kHandling, kLingering, kClosed };

  bool Current(uint64_t serial) const { return serial == serial_ && state_ == State::kHandling; }

  void ArmTimer(int64_t ms) {
    timer_.expires_after(std::chrono::milliseconds(ms));
    timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (ec) return;  // cancelled or re-armed
      self->Close();
    });
  }

  void BeginRequest(int64_t timeout_ms) {
    state_ = State::kReading;
    const ServingLimits& limits = server_->limits;
    parser_.emplace();
    parser_->eager(true);
    parser_->header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
    parser_->body_limit(static_cast<std::uint64_t>(limits.max_request_bytes));
    ArmTimer(timeout_ms);
    if (in_.size() > 0) {
      Parse();
    } else {
      Read();
    }
  }

  void Read() {
    if (read_pending_ || state_ == State::kClosed) return;
    read_pending_ = true;
    const size_t chunk = state_ == State::kHandling ? kWatchChunk : kReadChunk;
    socket_.async_read_some(in_.prepare(chunk),
                            [self = shared_from_this()](error_code ec, size_t n) {
                              self->read_pending_ = false;
                              self->OnRead(ec, n);
                            });
  }

  void OnRead(error_code ec, size_t n) {
    if (state_ == State::kClosed) return;
    if (ec) {
      // EOF or a reset: a client that leaves while its request runs has gone.
      Close();
      return;
    }
    in_.commit(n);
    switch (state_) {
      case State::kReading:
        Parse();
        return;
      case State::kHandling:
        // The client pipelined its next request: keep it for later, within bounds.
        if (in_.size() > static_cast<size_t>(server_->limits.max_request_bytes) +
                             static_cast<size_t>(server_->limits.max_header_bytes)) {
          Close();
          return;
        }
        Read();
        return;
      case State::kLingering:
        lingered_ += in_.size();
        in_.consume(in_.size());
        if (lingered_ > kLingerBytes) {
          Close();
        } else {
          Read();
        }
        return;
      case State::kClosed:
        return;
    }
  }

  void Parse() {
    while (in_.size() > 0 && !parser_->is_done()) {
      error_code ec;
      const size_t used = parser_->put(in_.data(), ec);
      in_.consume(used);
      if (ec == http::error::need_more) break;
      if (ec) {
        RefuseMalformed(ec);
        return;
      }
      if (used == 0) break;
    }
    if (parser_->is_done()) {
      Dispatch();
    } else {
      Read();
    }
  }

  // A request we cannot parse or will not read: answer and close the connection.
  void RefuseMalformed(error_code ec) {
    int status = 400;
    std::string message = absl::StrCat("malformed HTTP request: ", ec.message());
    std::string type = "invalid_request_error";
    if (ec == http::error::body_limit) {
      status = 413;
      message = absl::StrCat("the request body exceeds this server's limit of ",
                             server_->limits.max_request_bytes, " bytes");
    } else if (ec == http::error::header_limit) {
      status = 431;
      message =
          absl::StrCat("the request headers exceed ", server_->limits.max_header_bytes, " bytes");
    }
    state_ = State::kHandling;
    ++serial_;
    keep_alive_ = false;
    responded_ = false;
    streaming_ = false;
    timer_.cancel();
    Respond(serial_, status, "application/json", ErrorJson(message, type));
  }

  void Dispatch() {
    auto& message = parser_->get();
    HttpRequest request;
    request.method = std::string(message.method_string());
    absl::string_view target(message.target().data(), message.target().size());
    request.path = std::string(target.substr(0, target.find('?')));
    auto auth = message.find(http::field::authorization);
    if (auth != message.end()) request.authorization = std::string(auth->value());
    keep_alive_ = message.keep_alive();
    request.body = std::move(message.body());
    parser_.reset();
    state_ = State::kHandling;
    ++serial_;
    responded_ = false;
    streaming_ = false;
    gone_ = false;
    timer_.cancel();
    if (in_.size() == 0) in_.shrink_to_fit();
    server_->handler(std::move(request), MakeExchange());
    Read();  // watch for the client leaving while the handler runs
  }

  std::shared_ptr<HttpExchange> MakeExchange();

  void ClientGone() {
    if (gone_) return;
    gone_ = true;
    if (on_gone_) {
      auto fn = std::move(on_gone_);
      on_gone_ = nullptr;
      fn();
    }
  }

  void Queue(std::string bytes) {
    if (pending_.empty()) {
      pending_ = std::move(bytes);
    } else {
      pending_ += bytes;
    }
  }

  void Flush() {
    if (writing_ || state_ == State::kClosed) return;
    if (pending_.empty()) {
      if (end_after_write_) ExchangeDone();
      return;
    }
    writing_ = true;
    std::swap(writing_buffer_, pending_);
    pending_.clear();
    net::async_write(socket_, net::buffer(writing_buffer_),
                     [self = shared_from_this()](error_code ec, size_t) {
                       self->writing_ = false;
                       if (ec) {
                         self->Close();
                         return;
                       }
                       self->writing_buffer_.clear();
                       self->Flush();
                     });
  }

  void ExchangeDone() {
    end_after_write_ = false;
    on_gone_ = nullptr;
    std::string().swap(writing_buffer_);
    std::string().swap(pending_);
    if (!keep_alive_ || server_->stopped.load()) {
      // Half-close, then drop what the client still sends until it closes too.
      error_code ignored;
      socket_.shutdown(tcp::socket::shutdown_send, ignored);
      state_ = State::kLingering;
      lingered_ = 0;
      in_.consume(in_.size());
      timer_.expires_after(kLingerTime);
      timer_.async_wait([self = shared_from_this()](error_code ec) {
        if (!ec) self->Close();
      });
      Read();
      return;
    }
    BeginRequest(in_.size() > 0 ? server_->limits.header_timeout_ms
                                : server_->limits.idle_timeout_ms);
  }

  tcp::socket socket_;
  net::steady_timer timer_;
  std::shared_ptr<HttpServer::Impl> server_;
  boost::beast::flat_buffer in_;
  std::optional<http::request_parser<http::string_body>> parser_;
  State state_ = State::kReading;
  uint64_t serial_ = 0;  // the exchange in progress
  bool read_pending_ = false;
  bool keep_alive_ = true;
  bool responded_ = false;
  bool streaming_ = false;
  bool end_after_write_ = false;
  bool writing_ = false;
  bool gone_ = false;
  size_t lingered_ = 0;
  std::string pending_;         // queued bytes not yet handed to the socket
  std::string writing_buffer_;  // bytes of the write in flight
  std::function<void()> on_gone_;
};

// What a handler holds: the connection and which of its exchanges this is. Each call hops onto
// the strand (dispatch runs it inline when already there).
class HttpExchangeImpl final : public HttpExchange {
 public:
  HttpExchangeImpl(std::shared_ptr<HttpConnection> connection, uint64_t serial)
      : connection_(std::move(connection)), serial_(serial) {}

  void Respond(int status, absl::string_view content_type, std::string body) override {
    Run([status, type = std::string(content_type), body = std::move(body)](HttpConnection& c,
                                                                           uint64_t s) mutable {
      c.Respond(s, status, type, std::move(body));
    });
  }
  void StartStream(int status, absl::string_view content_type) override {
    Run([status, type = std::string(content_type)](HttpConnection& c, uint64_t s) {
      c.StartStream(s, status, type);
    });
  }
  void Send(std::string data) override {
    Run([data = std::move(data)](HttpConnection& c, uint64_t s) mutable {
      c.Send(s, std::move(data));
    });
  }
  void End() override {
    Run([](HttpConnection& c, uint64_t s) { c.End(s); });
  }
  void Post(std::function<void()> fn) override { connection_->Post(std::move(fn)); }
  void OnClientGone(std::function<void()> fn) override {
    Run([fn = std::move(fn)](HttpConnection& c, uint64_t s) mutable {
      c.OnClientGone(s, std::move(fn));
    });
  }

 private:
  template <typename Fn>
  void Run(Fn fn) {
    net::dispatch(connection_->executor(),
                  [c = connection_, s = serial_, fn = std::move(fn)]() mutable { fn(*c, s); });
  }

  std::shared_ptr<HttpConnection> connection_;
  uint64_t serial_;
};

std::shared_ptr<HttpExchange> HttpConnection::MakeExchange() {
  return std::make_shared<HttpExchangeImpl>(shared_from_this(), serial_);
}

void HttpServer::Impl::Accept() {
  acceptor.async_accept(
      net::make_strand(ioc), [self = shared_from_this()](error_code ec, tcp::socket socket) {
        if (self->stopped.load()) return;
        if (ec) {
          // Out of descriptors (EMFILE) and the like: try again shortly instead of spinning.
          self->accept_retry.expires_after(std::chrono::milliseconds(50));
          self->accept_retry.async_wait([self](error_code wait_ec) {
            if (!wait_ec && !self->stopped.load()) self->Accept();
          });
          return;
        }
        error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        auto connection = std::make_shared<HttpConnection>(std::move(socket), self);
        {
          std::lock_guard<std::mutex> lock(self->mu);
          self->connections[connection.get()] = connection;
        }
        // Stop() may have looked at the connections just before this one joined them.
        const bool stopping = self->stopped.load();
        net::dispatch(connection->executor(), [connection, stopping] {
          if (stopping) {
            connection->Close();
          } else {
            connection->Start();
          }
        });
        if (stopping) return;
        self->Accept();
      });
}

HttpServer::HttpServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { Stop(); }

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& host, int port,
                                                              int threads,
                                                              const ServingLimits& limits,
                                                              HttpHandler handler) {
  auto impl = std::make_shared<Impl>();
  impl->limits = limits;
  impl->handler = std::move(handler);
  error_code ec;
  const net::ip::address address = net::ip::make_address(host, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("--host ", host, ": not an IP address (", ec.message(), ")"));
  }
  const tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("HTTP server: cannot listen on ", host, ":", port, ": ", ec.message()));
  }
  impl->port = impl->acceptor.local_endpoint().port();
  impl->Accept();
  impl->work.emplace(impl->ioc.get_executor());
  for (int i = 0; i < std::max(1, threads); ++i) {
    impl->threads.emplace_back([impl = impl.get()] { impl->ioc.run(); });
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

int HttpServer::port() const { return impl_->port; }

size_t HttpServer::connections() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->connections.size();
}

void HttpServer::CloseAll() {
  if (impl_->closed.exchange(true)) return;
  impl_->stopped.store(true);
  net::post(impl_->ioc, [impl = impl_] {
    error_code ignored;
    impl->acceptor.close(ignored);
    impl->accept_retry.cancel();
  });
  std::vector<std::shared_ptr<HttpConnection>> open;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    for (auto& [ptr, weak] : impl_->connections) {
      if (auto strong = weak.lock()) open.push_back(std::move(strong));
    }
  }
  for (auto& connection : open) {
    net::post(connection->executor(), [connection] { connection->Close(); });
  }
}

void HttpServer::Stop() {
  CloseAll();
  if (impl_->threads.empty()) return;
  impl_->work.reset();
  for (std::thread& thread : impl_->threads) thread.join();
  impl_->threads.clear();
  // Run what was posted after the threads left, so that no connection stays referenced by a
  // queued handler.
  impl_->ioc.restart();
  impl_->ioc.poll();
}

}  // namespace sparkstack::serving
