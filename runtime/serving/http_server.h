// HttpServer: an asynchronous HTTP/1.1 server (Boost.Asio sockets, Boost.Beast's request parser)
// on one io_context run by a small fixed pool of threads. A connection is a socket, a buffer and a
// timer on a strand — never a thread — so thousands of idle or streaming connections cost memory
// only. Handles keep-alive, chunked streaming responses (server-sent events), request size limits
// (413 before the body is read when Content-Length says so, 431 for headers), read timeouts, and
// notices a client that disconnects while its request is being handled.
//
// The server knows nothing of the API: each complete request goes to the HttpHandler with an
// HttpExchange through which the response is sent, from any thread.
#ifndef SPARKSTACK_RUNTIME_SERVING_HTTP_SERVER_H_
#define SPARKSTACK_RUNTIME_SERVING_HTTP_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runtime/serving/serving_options.h"

namespace sparkstack::serving {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // the target without its query string
  std::string body;
  std::string authorization;  // the Authorization header ("" when absent)
};

// One request's response. Every method is thread-safe: it runs on the connection's strand. Calls
// after the response has ended (or after the client left) are ignored.
class HttpExchange {
 public:
  virtual ~HttpExchange() = default;
  // A complete response with Content-Length. Only the first Respond or StartStream counts.
  virtual void Respond(int status, absl::string_view content_type, std::string body) = 0;
  // Starts a chunked response (text/event-stream for SSE); Send adds to it, End finishes it.
  // Pieces sent while a write is in flight are coalesced into the next write.
  virtual void StartStream(int status, absl::string_view content_type) = 0;
  virtual void Send(std::string data) = 0;
  virtual void End() = 0;
  // Runs `fn` on the connection's strand, after what was posted before it.
  virtual void Post(std::function<void()> fn) = 0;
  // `fn` runs once, on the strand, if the client disconnects before the response has ended.
  virtual void OnClientGone(std::function<void()> fn) = 0;
};

// Called on an I/O thread (the connection's strand) for every complete request; must not block.
using HttpHandler =
    std::function<void(HttpRequest request, std::shared_ptr<HttpExchange> exchange)>;

class HttpServer {
 public:
  // Binds host:port (port 0: any free port) and starts `threads` I/O threads. Errors name the
  // address (Unavailable when it is in use, InvalidArgument when it does not parse).
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const std::string& host, int port,
                                                           int threads, const ServingLimits& limits,
                                                           HttpHandler handler);
  ~HttpServer();  // Stop()

  int port() const;
  // Connections open now.
  size_t connections() const;
  // Stops accepting and closes every connection (handlers see their clients gone); the I/O
  // threads keep running what handlers still post. Idempotent; any thread.
  void CloseAll();
  // CloseAll(), then joins the I/O threads once they are idle. Call after the handlers' work has
  // ended (their requests finished). Idempotent; not from an I/O thread.
  void Stop();

  struct Impl;

 private:
  explicit HttpServer(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace sparkstack::serving

#endif  // SPARKSTACK_RUNTIME_SERVING_HTTP_SERVER_H_
