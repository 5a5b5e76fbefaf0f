// AgentLink: the coordinator's end of one node agent's Session stream (internal to
// runtime/control). A reader thread hands every message to a callback and reports, once, when the
// stream ends; writes come from any thread.
#ifndef SPARKSTACK_RUNTIME_CONTROL_AGENT_LINK_H_
#define SPARKSTACK_RUNTIME_CONTROL_AGENT_LINK_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "runtime/control/auth.h"
#include "sparkstack/v1/control.grpc.pb.h"

namespace sparkstack::control {

// A channel to the agent at `target` (HOST:PORT) with the cluster's credentials, message-size
// limits, and a short reconnect backoff (an agent that comes back is found within a second).
std::shared_ptr<grpc::Channel> MakeAgentChannel(const std::string& target, const ControlAuth& auth);

// Hello with a deadline. Errors: the agent's status (UNAUTHENTICATED, FAILED_PRECONDITION for a
// protocol mismatch) or UNAVAILABLE / DEADLINE_EXCEEDED when it cannot be reached.
absl::StatusOr<::sparkstack::v1::HelloReply> CallHello(
    const std::shared_ptr<grpc::Channel>& channel, const ControlAuth& auth,
    const std::string& coordinator, std::chrono::milliseconds timeout);

class AgentLink {
 public:
  using OnMessage = std::function<void(const ::sparkstack::v1::AgentMessage&)>;
  using OnClosed = std::function<void(const absl::Status&)>;

  AgentLink(std::shared_ptr<grpc::Channel> channel, std::shared_ptr<const ControlAuth> auth);
  ~AgentLink();  // Close()

  AgentLink(const AgentLink&) = delete;
  AgentLink& operator=(const AgentLink&) = delete;

  // Opens the session: sends `claim` and waits up to `timeout` for the agent's Claimed. Then every
  // later message goes to `on_message` and the end of the stream to `on_closed` (at most once,
  // never after Close() began), both on the link's reader thread.
  absl::StatusOr<::sparkstack::v1::Claimed> Open(const ::sparkstack::v1::Claim& claim,
                                                 std::chrono::milliseconds timeout,
                                                 OnMessage on_message, OnClosed on_closed);

  // Sends one message; false when the stream is closed or broken. Any thread.
  bool Send(const ::sparkstack::v1::CoordinatorMessage& message);

  // Ends the session (the agent stops its worker rank) and waits for the reader thread. Must not
  // be called from this link's callbacks.
  void Close();

 private:
  void ReadLoop();

  std::shared_ptr<grpc::Channel> channel_;
  std::shared_ptr<const ControlAuth> auth_;
  std::unique_ptr<::sparkstack::v1::NodeAgent::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<::sparkstack::v1::CoordinatorMessage,
                                           ::sparkstack::v1::AgentMessage>>
      stream_;
  std::thread reader_;
  std::atomic<bool> closing_{false};

  OnMessage on_message_;
  OnClosed on_closed_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool claimed_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  bool open_ ABSL_GUARDED_BY(mu_) = false;  // Open succeeded: later messages go to on_message_
  ::sparkstack::v1::Claimed claimed_message_ ABSL_GUARDED_BY(mu_);
  absl::Status end_status_ ABSL_GUARDED_BY(mu_);

  std::mutex write_mu_;
  bool writes_closed_ ABSL_GUARDED_BY(write_mu_) = false;
};

}  // namespace sparkstack::control

#endif  // SPARKSTACK_RUNTIME_CONTROL_AGENT_LINK_H_
