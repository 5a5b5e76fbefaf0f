#include "runtime/parallel/rendezvous.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/core/status_macros.h"

namespace sparkstack {
namespace {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;

constexpr size_t kHelloBytes = 16;
// A connection that says nothing gets this long to send its hello, so a stray client (a port
// scanner, a health check) cannot stall the whole group.
constexpr std::chrono::milliseconds kHelloTimeout{5000};
// Extra time a rank waits for rank 0's verdict beyond the shared deadline (see Join).
constexpr std::chrono::milliseconds kRefusalGrace{1000};

std::string Errno(int err) { return std::strerror(err); }

int RemainingMs(Deadline deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(std::min<int64_t>(left.count(), 1 << 30));
}

void PutU32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutU16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v & 0xff));
  out.push_back(static_cast<char>(v >> 8));
}
uint32_t GetU32(const unsigned char* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}
uint16_t GetU16(const unsigned char* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }

// Waits until `fd` is ready for `events` or the deadline passes.
absl::Status PollFd(int fd, short events, Deadline deadline, const std::string& what) {
  while (true) {
    pollfd pfd{fd, events, 0};
    const int n = ::poll(&pfd, 1, RemainingMs(deadline));
    if (n > 0) return absl::OkStatus();
    if (n == 0) return absl::DeadlineExceededError(absl::StrCat("timed out ", what));
    if (errno != EINTR) return absl::UnavailableError(absl::StrCat(what, ": poll: ", Errno(errno)));
  }
}

absl::Status WriteAll(int fd, const void* data, size_t bytes, Deadline deadline,
                      const std::string& what) {
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    SPARKSTACK_RETURN_IF_ERROR(PollFd(fd, POLLOUT, deadline, what));
    const ssize_t n = ::send(fd, p, bytes, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return absl::UnavailableError(absl::StrCat(what, ": send: ", Errno(errno)));
    }
    p += n;
    bytes -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status ReadAll(int fd, void* data, size_t bytes, Deadline deadline, const std::string& what) {
  char* p = static_cast<char*>(data);
  while (bytes > 0) {
    SPARKSTACK_RETURN_IF_ERROR(PollFd(fd, POLLIN, deadline, what));
    const ssize_t n = ::recv(fd, p, bytes, 0);
    if (n == 0) return absl::UnavailableError(absl::StrCat(what, ": connection closed by peer"));
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return absl::UnavailableError(absl::StrCat(what, ": recv: ", Errno(errno)));
    }
    p += n;
    bytes -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status WriteFrame(int fd, std::string_view payload, Deadline deadline,
                        const std::string& what) {
  if (payload.size() > kRendezvousMaxFrameBytes) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": blob of ", payload.size(),
                                                   " bytes exceeds the limit of ",
                                                   kRendezvousMaxFrameBytes));
  }
  std::string header;
  PutU32(header, static_cast<uint32_t>(payload.size()));
  SPARKSTACK_RETURN_IF_ERROR(WriteAll(fd, header.data(), header.size(), deadline, what));
  return WriteAll(fd, payload.data(), payload.size(), deadline, what);
}

absl::StatusOr<std::string> ReadFrame(int fd, Deadline deadline, const std::string& what) {
  unsigned char header[4];
  SPARKSTACK_RETURN_IF_ERROR(ReadAll(fd, header, sizeof(header), deadline, what));
  const uint32_t length = GetU32(header);
  if (length > kRendezvousMaxFrameBytes) {
    return absl::DataLossError(absl::StrCat(what, ": frame length ", length,
                                            " exceeds the limit of ", kRendezvousMaxFrameBytes,
                                            " (corrupt or foreign peer)"));
  }
  std::string payload(length, '\0');
  SPARKSTACK_RETURN_IF_ERROR(ReadAll(fd, payload.data(), length, deadline, what));
  return payload;
}

void SetNoDelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

struct AddrInfoDeleter {
  void operator()(addrinfo* info) const { ::freeaddrinfo(info); }
};

absl::StatusOr<std::unique_ptr<addrinfo, AddrInfoDeleter>> Resolve(const std::string& host,
                                                                   int port, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  addrinfo* result = nullptr;
  const std::string service = std::to_string(port);
  const int rc =
      ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &result);
  if (rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("rendezvous: cannot resolve '", host, "': ", ::gai_strerror(rc)));
  }
  return std::unique_ptr<addrinfo, AddrInfoDeleter>(result);
}

// One connect attempt to any resolved address; returns the socket or -1 with errno set.
int TryConnect(const addrinfo* addresses, Deadline deadline, int* last_errno) {
  for (const addrinfo* a = addresses; a != nullptr; a = a->ai_next) {
    const int fd =
        ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) {
      *last_errno = errno;
      continue;
    }
    int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc < 0 && errno == EINPROGRESS) {
      pollfd pfd{fd, POLLOUT, 0};
      const int wait_ms = std::min(RemainingMs(deadline), 1000);
      if (::poll(&pfd, 1, wait_ms) == 1) {
        int err = 0;
        socklen_t len = sizeof(err);
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        rc = err == 0 ? 0 : -1;
        errno = err;
      } else {
        errno = ETIMEDOUT;
      }
    }
    if (rc == 0) {
      SetNoDelay(fd);
      return fd;
    }
    *last_errno = errno;
    ::close(fd);
  }
  return -1;
}

std::string RankList(const std::vector<int>& ranks) { return absl::StrJoin(ranks, ", "); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// RendezvousListener

absl::StatusOr<RendezvousListener> RendezvousListener::Bind(const std::string& host, int port) {
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("rendezvous: port ", port, " is not in [0, 65535]"));
  }
  SPARKSTACK_ASSIGN_OR_RETURN(auto addresses, Resolve(host, port, /*passive=*/true));
  int last_errno = 0;
  for (const addrinfo* a = addresses.get(); a != nullptr; a = a->ai_next) {
    const int fd =
        ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) {
      last_errno = errno;
      continue;
    }
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 128) == 0) {
      sockaddr_storage bound{};
      socklen_t len = sizeof(bound);
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
      int bound_port = port;
      if (bound.ss_family == AF_INET) {
        bound_port = ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
      } else if (bound.ss_family == AF_INET6) {
        bound_port = ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
      }
      return RendezvousListener(fd, bound_port);
    }
    last_errno = errno;
    ::close(fd);
  }
  return absl::UnavailableError(
      absl::StrCat("rendezvous: cannot listen on ", host, ":", port, ": ", Errno(last_errno)));
}

RendezvousListener::RendezvousListener(RendezvousListener&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), port_(other.port_) {}

RendezvousListener& RendezvousListener::operator=(RendezvousListener&& other) noexcept {
  if (this != &other) {
    Close();
    fd_ = std::exchange(other.fd_, -1);
    port_ = other.port_;
  }
  return *this;
}

RendezvousListener::~RendezvousListener() { Close(); }

void RendezvousListener::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

// ---------------------------------------------------------------------------------------------
// Rendezvous

Rendezvous::~Rendezvous() {
  for (int fd : peers_) {
    if (fd >= 0) ::close(fd);
  }
}

std::string Rendezvous::Where() const {
  return absl::StrCat("rendezvous at ", options_.host, ":", options_.port, " (rank ", options_.rank,
                      " of ", options_.world_size, ")");
}

absl::StatusOr<std::unique_ptr<Rendezvous>> Rendezvous::Join(const RendezvousOptions& options,
                                                             RendezvousListener* listener) {
  if (options.world_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("rendezvous: world size must be >= 1, got ", options.world_size));
  }
  if (options.rank < 0 || options.rank >= options.world_size) {
    return absl::InvalidArgumentError(absl::StrCat("rendezvous: rank ", options.rank,
                                                   " is outside [0, ", options.world_size, ")"));
  }
  std::unique_ptr<Rendezvous> group(new Rendezvous(options));
  if (listener != nullptr) group->options_.port = listener->port();
  const std::string where = group->Where();
  const Deadline deadline = Clock::now() + options.timeout;
  if (options.world_size == 1) return group;

  if (options.rank != 0) {
    // Connect with retries: rank 0 may not be listening yet.
    SPARKSTACK_ASSIGN_OR_RETURN(auto addresses, Resolve(options.host, options.port, false));
    int fd = -1;
    int last_errno = 0;
    while (true) {
      fd = TryConnect(addresses.get(), deadline, &last_errno);
      if (fd >= 0) break;
      if (Clock::now() >= deadline) {
        return absl::DeadlineExceededError(
            absl::StrCat(where, ": could not reach rank 0 within ", options.timeout.count(),
                         " ms (last error: ", Errno(last_errno), ")"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    group->peers_.push_back(fd);
    std::string hello;
    PutU32(hello, kRendezvousMagic);
    PutU16(hello, options.protocol_version);
    PutU16(hello, 0);
    PutU32(hello, static_cast<uint32_t>(options.world_size));
    PutU32(hello, static_cast<uint32_t>(options.rank));
    SPARKSTACK_RETURN_IF_ERROR(
        WriteAll(fd, hello.data(), hello.size(), deadline, absl::StrCat(where, ": sending hello")));
    // Rank 0 gives up at the same deadline and then says which ranks never arrived; waiting a
    // little longer lets that explanation, rather than a bare timeout, reach this rank.
    const std::string reading =
        absl::StrCat(where, ": waiting for rank 0 to report that every rank arrived");
    SPARKSTACK_ASSIGN_OR_RETURN(std::string reply,
                                ReadFrame(fd, deadline + kRefusalGrace, reading));
    if (reply.size() < 4) {
      return absl::DataLossError(
          absl::StrCat(where, ": reply of ", reply.size(), " bytes is too short"));
    }
    const uint32_t code = GetU32(reinterpret_cast<const unsigned char*>(reply.data()));
    if (code != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat(where, ": rank 0 refused the group: ", reply.substr(4)));
    }
    return group;
  }

  // Rank 0: accept world_size - 1 ranks.
  std::optional<RendezvousListener> own_listener;
  if (listener == nullptr) {
    SPARKSTACK_ASSIGN_OR_RETURN(RendezvousListener bound,
                                RendezvousListener::Bind(options.host, options.port));
    own_listener.emplace(std::move(bound));
    listener = &*own_listener;
  }
  group->peers_.assign(options.world_size, -1);
  // Fails the group: tells every connected rank why, then returns `status`.
  auto refuse = [&](absl::Status status) {
    std::string reply;
    PutU32(reply, static_cast<uint32_t>(status.code()));
    reply += std::string(status.message());
    const Deadline soon = Clock::now() + std::chrono::milliseconds(1000);
    for (int fd : group->peers_) {
      if (fd >= 0) (void)WriteFrame(fd, reply, soon, "refusing");
    }
    return status;
  };
  int arrived = 1;
  while (arrived < options.world_size) {
    pollfd pfd{listener->fd_, POLLIN, 0};
    const int n = ::poll(&pfd, 1, RemainingMs(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::vector<int> missing;
      for (int r = 1; r < options.world_size; ++r) {
        if (group->peers_[r] < 0) missing.push_back(r);
      }
      return refuse(absl::DeadlineExceededError(
          absl::StrCat(where, ": timed out after ", options.timeout.count(), " ms; rank",
                       missing.size() > 1 ? "s " : " ", RankList(missing), " never arrived")));
    }
    const int fd = ::accept4(listener->fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) continue;
    SetNoDelay(fd);
    unsigned char hello[kHelloBytes];
    const Deadline hello_deadline = std::min(deadline, Clock::now() + kHelloTimeout);
    if (!ReadAll(fd, hello, sizeof(hello), hello_deadline, "hello").ok() ||
        GetU32(hello) != kRendezvousMagic) {
      ::close(fd);  // not one of ours: ignore it and keep waiting
      continue;
    }
    const uint16_t version = GetU16(hello + 4);
    const uint32_t world = GetU32(hello + 8);
    const uint32_t rank = GetU32(hello + 12);
    absl::Status problem;
    if (version != options.protocol_version) {
      problem = absl::FailedPreconditionError(
          absl::StrCat("protocol version mismatch: rank ", rank, " speaks version ", version,
                       ", rank 0 speaks version ", options.protocol_version));
    } else if (world != static_cast<uint32_t>(options.world_size)) {
      problem = absl::FailedPreconditionError(absl::StrCat("world size mismatch: rank ", rank,
                                                           " was started with world size ", world,
                                                           ", rank 0 with ", options.world_size));
    } else if (rank == 0 || rank >= static_cast<uint32_t>(options.world_size)) {
      problem = absl::FailedPreconditionError(absl::StrCat("a rank announced itself as rank ", rank,
                                                           ", expected one of 1..",
                                                           options.world_size - 1));
    } else if (group->peers_[rank] >= 0) {
      problem = absl::FailedPreconditionError(
          absl::StrCat("duplicate rank: rank ", rank, " joined twice"));
    }
    if (!problem.ok()) {
      std::string reply;
      PutU32(reply, static_cast<uint32_t>(problem.code()));
      reply += std::string(problem.message());
      (void)WriteFrame(fd, reply, Clock::now() + std::chrono::milliseconds(1000), "refusing");
      ::close(fd);
      return refuse(absl::FailedPreconditionError(absl::StrCat(where, ": ", problem.message())));
    }
    group->peers_[rank] = fd;
    ++arrived;
  }
  std::string welcome;
  PutU32(welcome, 0);
  for (int r = 1; r < options.world_size; ++r) {
    SPARKSTACK_RETURN_IF_ERROR(WriteFrame(group->peers_[r], welcome, deadline,
                                          absl::StrCat(where, ": welcoming rank ", r)));
  }
  return group;
}

absl::StatusOr<std::vector<std::string>> Rendezvous::AllGather(std::string_view blob) {
  const Deadline deadline = Clock::now() + options_.timeout;
  const std::string where = Where();
  if (blob.size() > kRendezvousMaxFrameBytes) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": blob of ", blob.size(),
                                                   " bytes exceeds the limit of ",
                                                   kRendezvousMaxFrameBytes));
  }
  std::vector<std::string> blobs(options_.world_size);
  if (options_.world_size == 1) {
    blobs[0] = std::string(blob);
    return blobs;
  }
  if (options_.rank != 0) {
    const int fd = peers_[0];
    SPARKSTACK_RETURN_IF_ERROR(
        WriteFrame(fd, blob, deadline, absl::StrCat(where, ": all-gather send")));
    const std::string what = absl::StrCat(where, ": all-gather from rank 0");
    unsigned char count_bytes[4];
    SPARKSTACK_RETURN_IF_ERROR(ReadAll(fd, count_bytes, 4, deadline, what));
    const uint32_t count = GetU32(count_bytes);
    if (count != static_cast<uint32_t>(options_.world_size)) {
      return absl::DataLossError(
          absl::StrCat(what, ": got ", count, " blobs, expected ", options_.world_size));
    }
    for (uint32_t r = 0; r < count; ++r) {
      SPARKSTACK_ASSIGN_OR_RETURN(blobs[r], ReadFrame(fd, deadline, what));
    }
    return blobs;
  }
  blobs[0] = std::string(blob);
  for (int r = 1; r < options_.world_size; ++r) {
    SPARKSTACK_ASSIGN_OR_RETURN(
        blobs[r],
        ReadFrame(peers_[r], deadline, absl::StrCat(where, ": all-gather from rank ", r)));
  }
  std::string count;
  PutU32(count, static_cast<uint32_t>(options_.world_size));
  for (int r = 1; r < options_.world_size; ++r) {
    const std::string what = absl::StrCat(where, ": all-gather to rank ", r);
    SPARKSTACK_RETURN_IF_ERROR(WriteAll(peers_[r], count.data(), count.size(), deadline, what));
    for (const std::string& b : blobs)
      SPARKSTACK_RETURN_IF_ERROR(WriteFrame(peers_[r], b, deadline, what));
  }
  return blobs;
}

absl::StatusOr<std::string> Rendezvous::Broadcast(std::string_view blob) {
  const Deadline deadline = Clock::now() + options_.timeout;
  const std::string where = Where();
  if (options_.world_size == 1) return std::string(blob);
  if (options_.rank != 0) {
    return ReadFrame(peers_[0], deadline, absl::StrCat(where, ": broadcast from rank 0"));
  }
  for (int r = 1; r < options_.world_size; ++r) {
    SPARKSTACK_RETURN_IF_ERROR(
        WriteFrame(peers_[r], blob, deadline, absl::StrCat(where, ": broadcast to rank ", r)));
  }
  return std::string(blob);
}

absl::Status Rendezvous::Barrier() { return AllGather("").status(); }

}  // namespace sparkstack
