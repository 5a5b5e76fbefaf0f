#include "runtime/parallel/host_communicator.h"

#include <sched.h>
#include <ucp/api/ucp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/core/status_macros.h"
#include "runtime/parallel/peer_liveness.h"
#include "runtime/parallel/ucx_log.h"
#include "runtime/parallel/reduce.h"

namespace sparkstack {
namespace {

using Clock = std::chrono::steady_clock;

// Up to here the one-round direct exchange beats the ring's 2(N-1) rounds on 2-4 ranks.
// Small all-reduces use a latency algorithm while the bytes one rank sends stay within this
// budget: recursive doubling (log2 N rounds of one exchange) when N is a power of two, else the
// direct exchange ((N - 1) sends in one round). 2 ranks: up to 256 KiB; 4 ranks: up to 128 KiB;
// 3 ranks: up to 128 KiB.
constexpr size_t kLatencySendBudgetBytes = 256 << 10;

bool IsPowerOfTwo(int n) { return n > 0 && (n & (n - 1)) == 0; }

int Log2(int n) {
  int log = 0;
  while ((1 << log) < n) ++log;
  return log;
}
// Ring steps are split into chunks so that summing one chunk overlaps receiving the next.
constexpr size_t kRingChunkBytes = 512 << 10;
// Tag = sender's world rank (16 bits) | channel (8 bits: 0 = world, then one per Split) |
// per-pair sequence number (40 bits, wraps after 10^12 messages between one pair).
constexpr int kTagRankShift = 48;
constexpr int kTagChannelShift = 40;
constexpr uint64_t kTagSeqMask = (uint64_t{1} << kTagChannelShift) - 1;
constexpr int kMaxChannels = 256;
constexpr int kMaxWorldSize = 1 << 16;
constexpr ucp_tag_t kFullTagMask = ~ucp_tag_t{0};
// Bound on tearing down (closing endpoints, cancelling requests) so a dead peer cannot hang it.
constexpr std::chrono::milliseconds kTeardownTimeout{2000};
constexpr std::chrono::milliseconds kFailDrainTimeout{200};
// A waiting rank checks that same-machine peers still exist this often (see peer_liveness.h).
constexpr std::chrono::milliseconds kLivenessInterval{5};
// Worker-address blob: magic "SSUX", version, process identity, then the UCX address.
constexpr uint32_t kAddressMagic = 0x58555353;
constexpr uint16_t kAddressVersion = 1;
// A waiting rank yields its core on every idle poll by default. On an idle core sched_yield
// returns at once (a syscall per poll, well under a microsecond); when ranks share cores with
// each other or with other work it hands the core to the peer we are waiting for. Measured on a
// loaded 2-core machine, 2 ranks, 4 KiB all-reduce: ~7 us yielding at once against 0.5-1 ms
// when spinning first (the peer then only runs at the next scheduler tick).
// SPARKSTACK_HOST_SPINS=N busy-polls N idle polls first (for dedicated, isolated cores).
unsigned SpinsBeforeYield() {
  if (const char* env = std::getenv("SPARKSTACK_HOST_SPINS")) {
    return static_cast<unsigned>(std::strtoul(env, nullptr, 10));
  }
  return 0;
}

std::string UcsError(ucs_status_t status) { return ucs_status_string(status); }

struct Op {
  void* request = nullptr;  // UCX request while in flight
  int peer = -1;
  bool is_recv = false;
  bool done = false;
  size_t expected = 0;
  ucs_status_t post_error = UCS_OK;  // the post itself failed
  ucp_tag_recv_info_t info{};
};

}  // namespace

// The UCX state one process shares among its communicators (the world and its Split groups).
// Indexed by world rank.
struct HostTransport {
  struct PeerRef {
    HostTransport* transport;
    int peer;
  };

  int world_rank = 0;
  int world_size = 1;
  ucp_context_h context = nullptr;
  ucp_worker_h worker = nullptr;
  std::vector<ucp_ep_h> eps;
  std::vector<PeerRef> peer_refs;        // sized once: UCX keeps pointers to the elements
  std::vector<ucs_status_t> peer_error;  // UCS_OK while the endpoint is healthy
  // Same-machine peers connected without UCX error handling (so UCX may use shared memory):
  // their death is detected by watching the process (peer_liveness.h).
  std::vector<bool> watch_process;
  std::vector<ProcessIdentity> identities;
  absl::Status broken;   // first fatal error of any communicator on it
  int next_channel = 1;  // channel 0 is the world communicator
  unsigned spins_before_yield = 0;

  ~HostTransport();

  static void OnPeerError(void* arg, ucp_ep_h ep, ucs_status_t status) {
    auto* ref = static_cast<PeerRef*>(arg);
    if (ref->transport->peer_error[ref->peer] == UCS_OK) {
      ref->transport->peer_error[ref->peer] = status;
    }
  }

  void DrainAndFree(std::vector<void*>& requests,
                    std::chrono::milliseconds limit = kTeardownTimeout) {
    const auto until = Clock::now() + limit;
    while (Clock::now() < until) {
      bool all_done = true;
      for (void* request : requests) {
        if (ucp_request_check_status(request) == UCS_INPROGRESS) all_done = false;
      }
      if (all_done) break;
      ucp_worker_progress(worker);
    }
    for (void* request : requests) ucp_request_free(request);
    requests.clear();
  }

  void CloseEndpoints(uint32_t flags, std::chrono::milliseconds limit = kTeardownTimeout) {
    std::vector<void*> closing;
    for (ucp_ep_h& ep : eps) {
      if (ep == nullptr) continue;
      ucp_request_param_t param{};
      param.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
      param.flags = flags;
      ucs_status_ptr_t request = ucp_ep_close_nbx(ep, &param);
      if (request != nullptr && UCS_PTR_IS_PTR(request)) closing.push_back(request);
      ep = nullptr;
    }
    DrainAndFree(closing, limit);
  }
};

HostTransport::~HostTransport() {
  if (worker != nullptr) {
    // The world communicator's goodbye barrier (see ~HostCommunicator) already proved that every
    // message reached its peer; a flushing close would instead race with peers that have
    // already gone (and make UCX log errors).
    CloseEndpoints(UCP_EP_CLOSE_FLAG_FORCE);
    ucp_worker_destroy(worker);
  }
  if (context != nullptr) ucp_cleanup(context);
}

struct HostCommunicator::Impl {
  std::shared_ptr<HostTransport> transport;
  std::vector<int> members;  // world rank of each group rank
  int rank = 0;              // group rank
  int size = 1;
  uint64_t channel = 0;  // tag field separating this group's messages from other groups'
  ucp_worker_h worker = nullptr;
  std::vector<uint64_t> send_seq;  // per group rank
  std::vector<uint64_t> recv_seq;
  std::vector<char> scratch;
  std::vector<Op> ops;
  size_t direct_max_bytes = 0;  // from kLatencySendBudgetBytes unless overridden
  // Per-operation state.
  Clock::time_point deadline;
  std::chrono::milliseconds timeout{10000};
  const char* op_name = "";

  // A peer as the user knows it: the group rank, plus the world rank in a split group.
  std::string Peer(int p) const {
    if (channel == 0) return absl::StrCat("rank ", p);
    return absl::StrCat("rank ", p, " (world rank ", members[p], ")");
  }

  std::string Prefix() const {
    if (channel == 0) return absl::StrCat(op_name, " (rank ", rank, " of ", size, ")");
    return absl::StrCat(op_name, " (rank ", rank, " of ", size, " in group ", channel,
                        ", world rank ", transport->world_rank, ")");
  }

  absl::Status Begin(const char* name, std::chrono::milliseconds op_timeout) {
    op_name = name;
    if (!transport->broken.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          Prefix(),
          ": communicator is unusable after an earlier error: ", transport->broken.message()));
    }
    timeout = op_timeout;
    deadline = Clock::now() + op_timeout;
    ops.clear();
    return absl::OkStatus();
  }

  absl::Status CheckPeer(int peer) const {
    if (peer < 0 || peer >= size || peer == rank) {
      return absl::InvalidArgumentError(
          absl::StrCat(Prefix(), ": peer rank ", peer, " is not another rank of [0, ", size, ")"));
    }
    return absl::OkStatus();
  }

  ucp_tag_t MakeTag(int world_sender, uint64_t seq) const {
    return (uint64_t(world_sender) << kTagRankShift) | (channel << kTagChannelShift) |
           (seq & kTagSeqMask);
  }

  void PostSend(int peer, const void* data, size_t bytes) {
    Op op;
    op.peer = peer;
    op.expected = bytes;
    const ucp_tag_t tag = MakeTag(transport->world_rank, send_seq[peer]++);
    ucp_request_param_t param{};
    ucs_status_ptr_t request =
        ucp_tag_send_nbx(transport->eps[members[peer]], data, bytes, tag, &param);
    Finish(op, request);
    ops.push_back(op);
  }

  void PostRecv(int peer, void* data, size_t bytes) {
    Op op;
    op.peer = peer;
    op.is_recv = true;
    op.expected = bytes;
    const ucp_tag_t tag = MakeTag(members[peer], recv_seq[peer]++);
    ucp_request_param_t param{};
    // No immediate completion: UCX 1.13 does not report the received length for it, and the
    // length check is what catches mismatched collective calls.
    param.op_attr_mask = UCP_OP_ATTR_FLAG_NO_IMM_CMPL;
    ucs_status_ptr_t request = ucp_tag_recv_nbx(worker, data, bytes, tag, kFullTagMask, &param);
    Finish(op, request);
    ops.push_back(op);
  }

  // Records an immediately completed or failed post; errors surface in Wait.
  void Finish(Op& op, ucs_status_ptr_t request) {
    if (request == nullptr) {
      op.done = true;
      if (!op.is_recv) op.info.length = op.expected;
    } else if (UCS_PTR_IS_ERR(request)) {
      op.done = true;
      op.post_error = UCS_PTR_STATUS(request);  // reported by Wait
    } else {
      op.request = request;
    }
  }

  absl::Status CheckCompleted(const Op& op, ucs_status_t status) {
    if (status != UCS_OK) {
      if (status == UCS_ERR_MESSAGE_TRUNCATED) {
        return Fail(absl::DataLossError(absl::StrCat(Prefix(), ": ", Peer(op.peer),
                                                     " sent more than the expected ", op.expected,
                                                     " bytes (mismatched collective calls?)")));
      }
      const bool peer_gone = status == UCS_ERR_ENDPOINT_TIMEOUT ||
                             status == UCS_ERR_CONNECTION_RESET || status == UCS_ERR_UNREACHABLE;
      return Fail(absl::UnavailableError(
          absl::StrCat(Prefix(), ": ", op.is_recv ? "receive from " : "send to ", Peer(op.peer),
                       " failed: ", UcsError(status), peer_gone ? "; did that process die?" : "")));
    }
    if (op.is_recv && op.info.length != op.expected) {
      return Fail(absl::DataLossError(absl::StrCat(Prefix(), ": ", Peer(op.peer), " sent ",
                                                   op.info.length, " bytes, expected ", op.expected,
                                                   " (mismatched collective calls?)")));
    }
    return absl::OkStatus();
  }

  // Progresses until ops[begin, end) complete, a peer fails, or the deadline passes.
  absl::Status Wait(size_t begin, size_t end) {
    unsigned idle = 0;
    // The first check waits a little: a fast operation never pays for reading /proc.
    Clock::time_point next_liveness_check = Clock::now() + kLivenessInterval;
    while (true) {
      bool all_done = true;
      for (size_t i = begin; i < end; ++i) {
        Op& op = ops[i];
        if (op.done) {
          if (op.post_error != UCS_OK)
            SPARKSTACK_RETURN_IF_ERROR(CheckCompleted(op, op.post_error));
          continue;
        }
        ucs_status_t status = ucp_request_check_status(op.request);
        if (status == UCS_INPROGRESS) {
          all_done = false;
          continue;
        }
        if (op.is_recv) status = ucp_tag_recv_request_test(op.request, &op.info);
        ucp_request_free(op.request);
        op.request = nullptr;
        op.done = true;
        SPARKSTACK_RETURN_IF_ERROR(CheckCompleted(op, status));
      }
      if (all_done) {
        for (size_t i = begin; i < end; ++i) {
          if (ops[i].is_recv && ops[i].info.length != ops[i].expected) {
            SPARKSTACK_RETURN_IF_ERROR(CheckCompleted(ops[i], UCS_OK));
          }
        }
        return absl::OkStatus();
      }
      const Clock::time_point now = Clock::now();
      const bool check_processes = now >= next_liveness_check;
      if (check_processes) next_liveness_check = now + kLivenessInterval;
      for (size_t i = begin; i < end; ++i) {
        if (ops[i].done) continue;
        const int peer = ops[i].peer;
        const int world_peer = members[peer];
        const ucs_status_t peer_error = transport->peer_error[world_peer];
        if (peer_error != UCS_OK) {
          return Fail(absl::UnavailableError(absl::StrCat(Prefix(), ": lost the connection to ",
                                                          Peer(peer), " (", UcsError(peer_error),
                                                          "); did that process die?")));
        }
        if (check_processes && transport->watch_process[world_peer] &&
            ProcessGone(transport->identities[world_peer])) {
          return Fail(absl::UnavailableError(absl::StrCat(Prefix(), ": ", Peer(peer), " (pid ",
                                                          transport->identities[world_peer].pid,
                                                          ") has exited")));
        }
      }
      if (now >= deadline) {
        std::vector<int> waiting;
        for (size_t i = begin; i < end; ++i) {
          if (!ops[i].done) waiting.push_back(ops[i].peer);
        }
        std::sort(waiting.begin(), waiting.end());
        waiting.erase(std::unique(waiting.begin(), waiting.end()), waiting.end());
        std::vector<std::string> names;
        for (int p : waiting) names.push_back(Peer(p));
        return Fail(absl::DeadlineExceededError(absl::StrCat(Prefix(), ": timed out after ",
                                                             timeout.count(), " ms waiting for ",
                                                             absl::StrJoin(names, ", "))));
      }
      // Poll; when idle, yield (see SpinsBeforeYield).
      if (ucp_worker_progress(worker) != 0) {
        idle = 0;
      } else if (++idle > transport->spins_before_yield) {
        sched_yield();
      }
    }
  }

  absl::Status WaitAll() { return Wait(0, ops.size()); }

  // Makes the data plane unusable (every communicator on this transport): force-closes the
  // endpoints and cancels what is in flight, so no buffer is touched after we return.
  absl::Status Fail(absl::Status status) {
    transport->broken = status;
    std::vector<void*> pending;
    for (Op& op : ops) {
      if (op.request == nullptr) continue;
      if (op.is_recv) ucp_request_cancel(worker, op.request);
      pending.push_back(op.request);
      op.request = nullptr;
      op.done = true;
    }
    // Short bounds: the error must reach the caller quickly, and a dead peer never answers.
    transport->CloseEndpoints(UCP_EP_CLOSE_FLAG_FORCE, kFailDrainTimeout);
    transport->DrainAndFree(pending, kFailDrainTimeout);
    return status;
  }

  absl::Status DirectAllReduce(void* data, size_t count, DType dtype, size_t bytes);
  absl::Status RecursiveDoublingAllReduce(void* data, size_t count, DType dtype, size_t bytes);
  absl::Status RingAllReduce(void* data, size_t count, DType dtype, size_t elem);
};

absl::StatusOr<std::unique_ptr<HostCommunicator>> HostCommunicator::Create(
    const RendezvousOptions& options) {
  SPARKSTACK_ASSIGN_OR_RETURN(std::unique_ptr<Rendezvous> rendezvous, Rendezvous::Join(options));
  return Create(*rendezvous);
}

absl::StatusOr<std::unique_ptr<HostCommunicator>> HostCommunicator::Create(Bootstrap& bootstrap) {
  auto t = std::make_shared<HostTransport>();
  t->world_rank = bootstrap.rank();
  t->world_size = bootstrap.world_size();
  const std::string where =
      absl::StrCat("host communicator (rank ", t->world_rank, " of ", t->world_size, ")");
  if (t->world_size > kMaxWorldSize) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": world size above ", kMaxWorldSize));
  }

  RouteUcxLogging();  // UCX must never print to stdout
  ucp_config_t* config = nullptr;
  ucs_status_t status = ucp_config_read(nullptr, nullptr, &config);
  if (status != UCS_OK) {
    return absl::InternalError(absl::StrCat(
        where, ": reading the UCX configuration (UCX_* environment): ", UcsError(status)));
  }
  // Without UCX error handling (same-machine peers, see the header), a transport error is fatal
  // in UCX, and CMA (process_vm_readv into a peer that just died) raises one: the survivor would
  // abort instead of reporting the dead rank. So unless the user chose transports, leave CMA out;
  // large same-machine messages then go through the shared-memory FIFOs instead.
  // Without CMA no shared-memory transport does zero-copy rendezvous, and UCX would move
  // rendezvous-sized messages (>= ~8 KiB) over TCP loopback: ~1 ms instead of ~10 us. So also
  // keep every message on the eager path unless the user set UCX_RNDV_THRESH (on RDMA machines,
  // set UCX_TLS and UCX_RNDV_THRESH to get zero-copy; big device tensors go over NCCL anyway).
  const std::pair<const char*, const char*> defaults[] = {{"TLS", "^cma"}, {"RNDV_THRESH", "inf"}};
  for (const auto& [name, value] : defaults) {
    if (std::getenv(absl::StrCat("UCX_", name).c_str()) != nullptr) continue;
    status = ucp_config_modify(config, name, value);
    if (status != UCS_OK) {
      ucp_config_release(config);
      return absl::InternalError(
          absl::StrCat(where, ": setting UCX ", name, "=", value, ": ", UcsError(status)));
    }
  }
  ucp_params_t params{};
  params.field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_ESTIMATED_NUM_EPS;
  params.features = UCP_FEATURE_TAG;
  params.estimated_num_eps = static_cast<size_t>(t->world_size);
  status = ucp_init(&params, config, &t->context);
  ucp_config_release(config);
  if (status != UCS_OK) {
    return absl::UnavailableError(absl::StrCat(where, ": ucp_init: ", UcsError(status)));
  }
  ucp_worker_params_t worker_params{};
  worker_params.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
  worker_params.thread_mode = UCS_THREAD_MODE_SINGLE;
  status = ucp_worker_create(t->context, &worker_params, &t->worker);
  if (status != UCS_OK) {
    return absl::UnavailableError(absl::StrCat(where, ": ucp_worker_create: ", UcsError(status)));
  }
  ucp_address_t* address = nullptr;
  size_t address_length = 0;
  status = ucp_worker_get_address(t->worker, &address, &address_length);
  if (status != UCS_OK) {
    return absl::UnavailableError(
        absl::StrCat(where, ": ucp_worker_get_address: ", UcsError(status)));
  }
  std::string blob;
  blob.push_back(static_cast<char>(kAddressMagic & 0xff));
  blob.push_back(static_cast<char>((kAddressMagic >> 8) & 0xff));
  blob.push_back(static_cast<char>((kAddressMagic >> 16) & 0xff));
  blob.push_back(static_cast<char>(kAddressMagic >> 24));
  blob.push_back(static_cast<char>(kAddressVersion & 0xff));
  blob.push_back(static_cast<char>(kAddressVersion >> 8));
  const ProcessIdentity self = ProcessIdentity::Self();
  EncodeIdentity(self, blob);
  blob.append(reinterpret_cast<const char*>(address), address_length);
  ucp_worker_release_address(t->worker, address);

  SPARKSTACK_ASSIGN_OR_RETURN(std::vector<std::string> blobs, bootstrap.AllGather(blob));
  // SPARKSTACK_UCX_PEER_FAILURE=1: UCX error handling for every peer (TCP even on one machine).
  const char* force_peer_mode = std::getenv("SPARKSTACK_UCX_PEER_FAILURE");
  const bool ucx_detects_all = force_peer_mode != nullptr && std::string(force_peer_mode) == "1";

  const int n = t->world_size;
  t->eps.assign(n, nullptr);
  t->peer_error.assign(n, UCS_OK);
  t->watch_process.assign(n, false);
  t->identities.assign(n, ProcessIdentity{});
  t->peer_refs.reserve(n);
  for (int p = 0; p < n; ++p) t->peer_refs.push_back({t.get(), p});
  for (int p = 0; p < n; ++p) {
    if (p == t->world_rank) continue;
    std::string_view in = blobs[p];
    const auto byte = [&](size_t i) {
      return static_cast<uint32_t>(static_cast<unsigned char>(in[i]));
    };
    if (in.size() < 6 ||
        (byte(0) | byte(1) << 8 | byte(2) << 16 | byte(3) << 24) != kAddressMagic ||
        (byte(4) | byte(5) << 8) != kAddressVersion) {
      return absl::DataLossError(absl::StrCat(
          where, ": rank ", p,
          " published a worker address this build cannot read (expected magic ", kAddressMagic,
          " version ", kAddressVersion, "; a different sparkstack version?)"));
    }
    in.remove_prefix(6);
    auto identity = DecodeIdentity(in);
    if (!identity.ok()) {
      return absl::DataLossError(
          absl::StrCat(where, ": rank ", p, "'s worker address: ", identity.status().message()));
    }
    if (in.empty()) {
      return absl::DataLossError(
          absl::StrCat(where, ": rank ", p, " published an empty UCX address"));
    }
    t->identities[p] = *identity;
    t->watch_process[p] = !ucx_detects_all && self.SameMachineAs(*identity);
    ucp_ep_params_t ep_params{};
    ep_params.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE;
    ep_params.address = reinterpret_cast<const ucp_address_t*>(in.data());
    if (t->watch_process[p]) {
      ep_params.err_mode = UCP_ERR_HANDLING_MODE_NONE;  // lets UCX pick shared memory
    } else {
      ep_params.field_mask |= UCP_EP_PARAM_FIELD_ERR_HANDLER;
      ep_params.err_mode = UCP_ERR_HANDLING_MODE_PEER;
      ep_params.err_handler.cb = &HostTransport::OnPeerError;
      ep_params.err_handler.arg = &t->peer_refs[p];
    }
    status = ucp_ep_create(t->worker, &ep_params, &t->eps[p]);
    if (status != UCS_OK) {
      return absl::UnavailableError(
          absl::StrCat(where, ": connecting to rank ", p, ": ucp_ep_create: ", UcsError(status)));
    }
  }
  t->spins_before_yield = SpinsBeforeYield();
  std::vector<int> everyone(n);
  for (int p = 0; p < n; ++p) everyone[p] = p;
  auto comm = Make(std::move(t), std::move(everyone), /*channel=*/0);
  // Wire-up happens lazily in UCX; a barrier proves every pair can talk before we report success.
  SPARKSTACK_RETURN_IF_ERROR(comm->Barrier());
  return comm;
}

std::unique_ptr<HostCommunicator> HostCommunicator::Make(std::shared_ptr<HostTransport> transport,
                                                         std::vector<int> members, int channel) {
  auto impl = std::make_unique<Impl>();
  impl->worker = transport->worker;
  impl->size = static_cast<int>(members.size());
  impl->rank = static_cast<int>(std::find(members.begin(), members.end(), transport->world_rank) -
                                members.begin());
  impl->channel = static_cast<uint64_t>(channel);
  impl->send_seq.assign(members.size(), 0);
  impl->recv_seq.assign(members.size(), 0);
  if (impl->size > 1) {
    const int sends = IsPowerOfTwo(impl->size) ? Log2(impl->size) : impl->size - 1;
    impl->direct_max_bytes = kLatencySendBudgetBytes / static_cast<size_t>(sends);
  }
  impl->members = std::move(members);
  impl->transport = std::move(transport);
  return std::unique_ptr<HostCommunicator>(new HostCommunicator(std::move(impl)));
}

absl::StatusOr<std::unique_ptr<HostCommunicator>> HostCommunicator::Split(
    const std::vector<int>& world_ranks) {
  HostTransport& t = *impl_->transport;
  const std::string where =
      absl::StrCat("split of host communicator (world rank ", t.world_rank, ")");
  // Consume the channel number first, so ranks stay in step even if this call fails on one.
  const int channel = t.next_channel++;
  if (channel >= kMaxChannels) {
    return absl::ResourceExhaustedError(
        absl::StrCat(where, ": more than ", kMaxChannels - 1, " groups split from one world"));
  }
  bool has_me = false;
  for (size_t i = 0; i < world_ranks.size(); ++i) {
    const int r = world_ranks[i];
    if (r < 0 || r >= t.world_size) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": rank ", r, " is not in [0, ", t.world_size, ")"));
    }
    if (std::find(world_ranks.begin(), world_ranks.begin() + i, r) != world_ranks.begin() + i) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": rank ", r, " listed twice"));
    }
    has_me |= r == t.world_rank;
  }
  if (!has_me) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": the group [", absl::StrJoin(world_ranks, ", "), "] does not contain this rank"));
  }
  return Make(impl_->transport, world_ranks, channel);
}

HostCommunicator::HostCommunicator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HostCommunicator::~HostCommunicator() {
  // Goodbye barrier on the world communicator, so no rank tears down its endpoints while a peer
  // still expects messages from it. Bounded, and skipped after an error.
  if (impl_->channel == 0 && impl_->size > 1 && impl_->transport->broken.ok()) {
    (void)impl_->Begin("shutdown barrier", kTeardownTimeout);
    static char dummy[1];
    for (int p = 0; p < impl_->size; ++p) {
      if (p != impl_->rank) impl_->PostRecv(p, dummy, 0);
    }
    for (int p = 0; p < impl_->size; ++p) {
      if (p != impl_->rank) impl_->PostSend(p, dummy, 0);
    }
    (void)impl_->WaitAll();
  }
}

int HostCommunicator::rank() const { return impl_->rank; }
int HostCommunicator::size() const { return impl_->size; }

void HostCommunicator::set_direct_allreduce_max_bytes(size_t bytes) {
  impl_->direct_max_bytes = bytes;
}

absl::Status HostCommunicator::AllReduceSum(void* data, size_t count, DType dtype) {
  Impl& s = *impl_;
  SPARKSTACK_RETURN_IF_ERROR(s.Begin("all-reduce", timeout()));
  SPARKSTACK_RETURN_IF_ERROR(CheckReducibleDType(dtype));
  if (s.size == 1 || count == 0) return absl::OkStatus();
  const size_t elem = DTypeByteSize(dtype, 1);
  const size_t bytes = count * elem;
  if (bytes <= s.direct_max_bytes) {
    // Equal for 2 ranks; from 4, recursive doubling sends log2 N messages instead of N - 1.
    if (IsPowerOfTwo(s.size)) return s.RecursiveDoublingAllReduce(data, count, dtype, bytes);
    return s.DirectAllReduce(data, count, dtype, bytes);
  }
  return s.RingAllReduce(data, count, dtype, elem);
}

absl::Status HostCommunicator::Impl::RecursiveDoublingAllReduce(void* data, size_t count,
                                                                DType dtype, size_t bytes) {
  if (scratch.size() < bytes) scratch.resize(bytes);
  for (int mask = 1; mask < size; mask <<= 1) {
    const int partner = rank ^ mask;
    ops.clear();
    PostRecv(partner, scratch.data(), bytes);
    PostSend(partner, data, bytes);
    SPARKSTACK_RETURN_IF_ERROR(WaitAll());
    // Partners compute mine + theirs and theirs + mine: equal bit for bit, since one IEEE
    // addition (and its rounding to f16/bf16) is commutative; so every rank ends identical.
    SumInto(data, scratch.data(), count, dtype);
  }
  return absl::OkStatus();
}

absl::Status HostCommunicator::Impl::DirectAllReduce(void* data, size_t count, DType dtype,
                                                     size_t bytes) {
  if (scratch.size() < bytes * (size - 1)) scratch.resize(bytes * (size - 1));
  absl::InlinedVector<const void*, 8> inputs(size);
  for (int p = 0, slot = 0; p < size; ++p) {
    if (p == rank) {
      inputs[p] = data;
      continue;
    }
    char* buffer = scratch.data() + bytes * slot++;
    inputs[p] = buffer;
    PostRecv(p, buffer, bytes);
  }
  for (int p = 0; p < size; ++p) {
    if (p != rank) PostSend(p, data, bytes);
  }
  SPARKSTACK_RETURN_IF_ERROR(WaitAll());
  SumInOrder(data, inputs.data(), size, count, dtype);
  return absl::OkStatus();
}

absl::Status HostCommunicator::Impl::RingAllReduce(void* data, size_t count, DType dtype,
                                                   size_t elem) {
  char* base = static_cast<char*>(data);
  const size_t seg_elems = (count + size - 1) / size;
  auto seg_begin = [&](int s) { return std::min(count, seg_elems * s); };
  auto seg_end = [&](int s) { return std::min(count, seg_elems * (s + 1)); };
  const size_t chunk_elems = std::max<size_t>(1, kRingChunkBytes / elem);
  const int right = (rank + 1) % size;
  const int left = (rank + size - 1) % size;
  if (scratch.size() < seg_elems * elem) scratch.resize(seg_elems * elem);

  // Reduce-scatter: after step k, segment (rank - k - 1) holds the sum of k + 2 ranks.
  for (int step = 0; step < size - 1; ++step) {
    const int send_seg = (rank - step + 2 * size) % size;
    const int recv_seg = (rank - step - 1 + 2 * size) % size;
    ops.clear();
    const size_t rb = seg_begin(recv_seg), re = seg_end(recv_seg);
    for (size_t c = rb; c < re; c += chunk_elems) {
      PostRecv(left, scratch.data() + (c - rb) * elem, (std::min(re, c + chunk_elems) - c) * elem);
    }
    const size_t recv_ops = ops.size();
    const size_t sb = seg_begin(send_seg), se = seg_end(send_seg);
    for (size_t c = sb; c < se; c += chunk_elems) {
      PostSend(right, base + c * elem, (std::min(se, c + chunk_elems) - c) * elem);
    }
    size_t i = 0;
    for (size_t c = rb; c < re; c += chunk_elems, ++i) {
      SPARKSTACK_RETURN_IF_ERROR(Wait(i, i + 1));
      SumInto(base + c * elem, scratch.data() + (c - rb) * elem, std::min(re, c + chunk_elems) - c,
              dtype);
    }
    SPARKSTACK_RETURN_IF_ERROR(Wait(recv_ops, ops.size()));
  }
  // All-gather: rank owns the finished segment (rank + 1); pass finished segments to the right.
  for (int step = 0; step < size - 1; ++step) {
    const int send_seg = (rank + 1 - step + 2 * size) % size;
    const int recv_seg = (rank - step + 2 * size) % size;
    ops.clear();
    const size_t rb = seg_begin(recv_seg), re = seg_end(recv_seg);
    for (size_t c = rb; c < re; c += chunk_elems) {
      PostRecv(left, base + c * elem, (std::min(re, c + chunk_elems) - c) * elem);
    }
    const size_t sb = seg_begin(send_seg), se = seg_end(send_seg);
    for (size_t c = sb; c < se; c += chunk_elems) {
      PostSend(right, base + c * elem, (std::min(se, c + chunk_elems) - c) * elem);
    }
    SPARKSTACK_RETURN_IF_ERROR(WaitAll());
  }
  return absl::OkStatus();
}

absl::Status HostCommunicator::AllGather(const void* in, void* out, size_t count, DType dtype) {
  Impl& s = *impl_;
  SPARKSTACK_RETURN_IF_ERROR(s.Begin("all-gather", timeout()));
  const size_t bytes = DTypeByteSize(dtype, static_cast<int64_t>(count));
  char* base = static_cast<char*>(out);
  char* mine = base + bytes * s.rank;
  if (in != mine && bytes > 0) std::memmove(mine, in, bytes);
  if (s.size == 1) return absl::OkStatus();
  for (int p = 0; p < s.size; ++p) {
    if (p != s.rank) s.PostRecv(p, base + bytes * p, bytes);
  }
  for (int p = 0; p < s.size; ++p) {
    if (p != s.rank) s.PostSend(p, mine, bytes);
  }
  return s.WaitAll();
}

absl::Status HostCommunicator::Broadcast(void* data, size_t bytes, int root) {
  Impl& s = *impl_;
  SPARKSTACK_RETURN_IF_ERROR(s.Begin("broadcast", timeout()));
  if (root < 0 || root >= s.size) {
    return absl::InvalidArgumentError(
        absl::StrCat(s.Prefix(), ": root ", root, " is not a rank of [0, ", s.size, ")"));
  }
  if (s.size == 1) return absl::OkStatus();
  if (s.rank == root) {
    for (int p = 0; p < s.size; ++p) {
      if (p != root) s.PostSend(p, data, bytes);
    }
  } else {
    s.PostRecv(root, data, bytes);
  }
  return s.WaitAll();
}

absl::Status HostCommunicator::Send(const void* data, size_t bytes, int peer) {
  Impl& s = *impl_;
  SPARKSTACK_RETURN_IF_ERROR(s.Begin("send", timeout()));
  SPARKSTACK_RETURN_IF_ERROR(s.CheckPeer(peer));
  s.PostSend(peer, data, bytes);
  return s.WaitAll();
}

absl::Status HostCommunicator::Recv(void* data, size_t bytes, int peer) {
  Impl& s = *impl_;
  SPARKSTACK_RETURN_IF_ERROR(s.Begin("recv", timeout()));
  SPARKSTACK_RETURN_IF_ERROR(s.CheckPeer(peer));
  s.PostRecv(peer, data, bytes);
  return s.WaitAll();
}

absl::Status HostCommunicator::Barrier() {
  Impl& s = *impl_;
  SPARKSTACK_RETURN_IF_ERROR(s.Begin("barrier", timeout()));
  if (s.size == 1) return absl::OkStatus();
  static char dummy[1];
  for (int p = 0; p < s.size; ++p) {
    if (p != s.rank) s.PostRecv(p, dummy, 0);
  }
  for (int p = 0; p < s.size; ++p) {
    if (p != s.rank) s.PostSend(p, dummy, 0);
  }
  return s.WaitAll();
}

}  // namespace sparkstack
