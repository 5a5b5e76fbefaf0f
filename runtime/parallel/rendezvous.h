// Rendezvous: the TCP bootstrap that lets N ranks find each other before the data plane exists.
//
// Rank 0 listens on HOST:PORT; every other rank connects (retrying until the deadline) and sends a
// versioned hello (magic, protocol version, world size, rank). Once all ranks have arrived, the
// group can exchange small blobs through rank 0: AllGather (every rank's UCX worker address) and
// Broadcast (rank 0's NCCL unique id). It carries only bootstrap data, a few KiB per rank; nothing
// per token goes through it. It implements Bootstrap (bootstrap.h); in production the control
// plane carries the same blobs over gRPC instead.
//
// Wire format (all integers little-endian):
//   hello   (rank > 0 -> rank 0): u32 magic "SSRV", u16 version, u16 reserved (0), u32 world, u32
//   rank reply   (rank 0 -> rank > 0): frame holding u32 code (0 = welcome) + UTF-8 message frame:
//   u32 length (<= kMaxFrameBytes), then `length` bytes gather: rank > 0 sends one frame; rank 0
//   answers with u32 count (== world) then `count` frames bcast:  rank 0 sends one frame
// The peer is untrusted: every length is bounds-checked before memory is touched and every read
// and write has a deadline.
//
// Errors: a timeout names the ranks that never arrived; a wrong world size, duplicate or
// out-of-range rank, or protocol version mismatch fails rank 0 and the offending rank with a
// message naming both sides' values (rank 0 also tells every connected rank why it gave up).
#ifndef SPARKSTACK_RUNTIME_PARALLEL_RENDEZVOUS_H_
#define SPARKSTACK_RUNTIME_PARALLEL_RENDEZVOUS_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/parallel/bootstrap.h"

namespace sparkstack {

inline constexpr uint32_t kRendezvousMagic = 0x56525353;  // "SSRV" in little-endian bytes
inline constexpr uint16_t kRendezvousVersion = 1;
inline constexpr uint32_t kRendezvousMaxFrameBytes = 1u << 20;

struct RendezvousOptions {
  std::string host = "127.0.0.1";  // rank 0's address (rank 0 binds it; "0.0.0.0" binds all)
  int port = 29500;
  int rank = 0;
  int world_size = 1;
  // Bound on Join (all ranks arriving) and, separately, on each later AllGather/Broadcast.
  std::chrono::milliseconds timeout{30000};
  // Protocol version announced in the hello; only tests change it (to check the mismatch error).
  uint16_t protocol_version = kRendezvousVersion;
};

// A bound, listening TCP socket for rank 0. Create it before spawning ranks to use port 0 (an
// ephemeral port) without a race: read port(), hand it to the other ranks, pass the listener
// to Rendezvous::Join on rank 0. Move-only; closes the socket when destroyed.
class RendezvousListener {
 public:
  // Binds host:port (port 0 picks a free port) with SO_REUSEADDR and listens.
  static absl::StatusOr<RendezvousListener> Bind(const std::string& host, int port);

  RendezvousListener(RendezvousListener&& other) noexcept;
  RendezvousListener& operator=(RendezvousListener&& other) noexcept;
  RendezvousListener(const RendezvousListener&) = delete;
  RendezvousListener& operator=(const RendezvousListener&) = delete;
  ~RendezvousListener();

  int port() const { return port_; }
  // Gives up the socket (e.g. in forked children that are not rank 0).
  void Close();

 private:
  friend class Rendezvous;
  RendezvousListener(int fd, int port) : fd_(fd), port_(port) {}
  int fd_ = -1;
  int port_ = 0;
};

// A joined group. Not thread-safe; all ranks must call the same operations in the same order.
class Rendezvous final : public Bootstrap {
 public:
  // Joins the group described by `options`. Rank 0 uses `listener` when given (its port must be
  // the one the other ranks were told), otherwise binds options.host:options.port itself. Blocks
  // until every rank has arrived or options.timeout passes. world_size 1 needs no network.
  static absl::StatusOr<std::unique_ptr<Rendezvous>> Join(const RendezvousOptions& options,
                                                          RendezvousListener* listener = nullptr);

  Rendezvous(const Rendezvous&) = delete;
  Rendezvous& operator=(const Rendezvous&) = delete;
  ~Rendezvous() override;

  int rank() const override { return options_.rank; }
  int world_size() const override { return options_.world_size; }

  // Every rank contributes `blob` (<= kRendezvousMaxFrameBytes); every rank gets all blobs in
  // rank order.
  absl::StatusOr<std::vector<std::string>> AllGather(std::string_view blob) override;
  // Every rank gets rank 0's `blob`; other ranks' arguments are ignored.
  absl::StatusOr<std::string> Broadcast(std::string_view blob) override;
  // Returns once every rank has called Barrier.
  absl::Status Barrier() override;

 private:
  explicit Rendezvous(const RendezvousOptions& options) : options_(options) {}
  std::string Where() const;

  RendezvousOptions options_;
  // Rank 0: one socket per rank (index 0 unused, -1). Other ranks: peers_[0] is rank 0.
  std::vector<int> peers_;
};

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_PARALLEL_RENDEZVOUS_H_
