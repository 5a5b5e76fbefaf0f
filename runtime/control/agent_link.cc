#include "runtime/control/agent_link.h"

#include "absl/strings/str_cat.h"
#include "runtime/control/control_types.h"
#include "runtime/control/proto_mapping.h"

namespace sparkstack::control {

std::shared_ptr<grpc::Channel> MakeAgentChannel(const std::string& target,
                                                const ControlAuth& auth) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxGrpcMessageBytes);
  args.SetMaxSendMessageSize(kMaxGrpcMessageBytes);
  // gRPC's default backoff grows to two minutes; a restarted agent must be found within a second.
  // (The minimum is also each connection attempt's timeout, so it stays at a second.)
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // A separate connection per coordinator object (tests run several in one process).
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auth.AddChannelArguments(args);
  return grpc::CreateCustomChannel(target, auth.ChannelCredentials(), args);
}

absl::StatusOr<pb::HelloReply> CallHello(const std::shared_ptr<grpc::Channel>& channel,
                                         const ControlAuth& auth, const std::string& coordinator,
                                         std::chrono::milliseconds timeout) {
  auto stub = pb::NodeAgent::NewStub(channel);
  grpc::ClientContext context;
  auth.Authorize(context);
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  // Wait for the connection rather than failing fast on the channel's last error: an agent that
  // comes back during the wait is found at once.
  context.set_wait_for_ready(true);
  pb::HelloRequest request;
  request.set_protocol_version(kControlProtocolVersion);
  request.set_coordinator(coordinator);
  pb::HelloReply reply;
  grpc::Status status = stub->Hello(&context, request, &reply);
  if (!status.ok()) return FromGrpcStatus(status);
  return reply;
}

AgentLink::AgentLink(std::shared_ptr<grpc::Channel> channel,
                     std::shared_ptr<const ControlAuth> auth)
    : channel_(std::move(channel)),
      auth_(std::move(auth)),
      stub_(pb::NodeAgent::NewStub(channel_)) {}

AgentLink::~AgentLink() { Close(); }

absl::StatusOr<pb::Claimed> AgentLink::Open(const pb::Claim& claim,
                                            std::chrono::milliseconds timeout, OnMessage on_message,
                                            OnClosed on_closed) {
  on_message_ = std::move(on_message);
  on_closed_ = std::move(on_closed);
  auth_->Authorize(context_);
  stream_ = stub_->Session(&context_);
  pb::CoordinatorMessage first;
  *first.mutable_claim() = claim;
  if (!Send(first)) {
    // The stream failed at once; its status comes from the reader below.
  }
  reader_ = std::thread([this] { ReadLoop(); });
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return claimed_ || ended_; })) {
    lock.unlock();
    Close();
    return absl::DeadlineExceededError(
        absl::StrCat("no answer to the claim within ", timeout.count(), " ms"));
  }
  if (!claimed_) {
    absl::Status why =
        end_status_.ok() ? absl::UnavailableError("the session ended at once") : end_status_;
    lock.unlock();
    Close();
    return why;
  }
  open_ = true;
  return claimed_message_;
}

void AgentLink::ReadLoop() {
  pb::AgentMessage message;
  bool first = true;
  while (stream_->Read(&message)) {
    if (first) {
      first = false;
      if (!message.has_claimed()) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          end_status_ = absl::DataLossError("the agent did not answer the claim with Claimed");
        }
        context_.TryCancel();
        break;
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        claimed_ = true;
        claimed_message_ = message.claimed();
      }
      cv_.notify_all();
      continue;
    }
    if (closing_.load()) continue;  // drain quietly until the cancellation lands
    {
      // Open() returns before the first later message can be handed on, so on_message_ never
      // runs before the caller has its link.
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return open_ || closing_.load(); });
    }
    if (!closing_.load()) on_message_(message);
  }
  {
    // No write may overlap Finish.
    std::lock_guard<std::mutex> lock(write_mu_);
    writes_closed_ = true;
  }
  grpc::Status status = stream_->Finish();
  absl::Status ended =
      status.ok() ? absl::UnavailableError("the agent ended the session") : FromGrpcStatus(status);
  bool was_open = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (end_status_.ok()) end_status_ = ended;
    ended_ = true;
    was_open = open_;
  }
  cv_.notify_all();
  if (was_open && !closing_.load()) on_closed_(ended);
}

bool AgentLink::Send(const pb::CoordinatorMessage& message) {
  std::lock_guard<std::mutex> lock(write_mu_);
  if (stream_ == nullptr || closing_.load() || writes_closed_) return false;
  return stream_->Write(message);
}

void AgentLink::Close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closing_ = true;
  }
  cv_.notify_all();
  if (stream_ != nullptr) context_.TryCancel();
  if (reader_.joinable()) reader_.join();
}

}  // namespace sparkstack::control
