#include "runtime/control/proto_mapping.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "runtime/core/status_macros.h"
#include "runtime/parallel/bootstrap.h"

namespace sparkstack::control {
namespace {

absl::Status CheckBytes(absl::string_view where, absl::string_view field, absl::string_view value,
                        size_t max) {
  if (value.size() <= max) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(where, ": ", field, " is ", value.size(), " bytes, at most ", max));
}

absl::Status CheckCount(absl::string_view where, absl::string_view field, size_t count,
                        size_t max) {
  if (count <= max) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(where, ": ", field, " has ", count, " entries, at most ", max));
}

}  // namespace

void ToProto(const NodeCapabilities& in, pb::NodeCapabilities* out) {
  out->set_hostname(in.hostname);
  out->set_os(in.os);
  out->set_cpu_arch(in.cpu_arch);
  out->set_cpu_model(in.cpu_model);
  out->set_cpu_cores(in.cpu_cores);
  out->set_memory_total_bytes(in.memory_total_bytes);
  out->set_memory_available_bytes(in.memory_available_bytes);
  for (const GpuInfo& gpu : in.gpus) {
    pb::GpuInfo* g = out->add_gpus();
    g->set_index(gpu.index);
    g->set_name(gpu.name);
    g->set_compute_capability_major(gpu.compute_capability_major);
    g->set_compute_capability_minor(gpu.compute_capability_minor);
    g->set_total_memory_bytes(gpu.total_memory_bytes);
    g->set_free_memory_bytes(gpu.free_memory_bytes);
    g->set_multiprocessors(gpu.multiprocessors);
    g->set_integrated(gpu.integrated);
  }
  for (const NicInfo& nic : in.nics) {
    pb::NicInfo* n = out->add_nics();
    n->set_name(nic.name);
    n->set_mac(nic.mac);
    n->set_mtu(nic.mtu);
    n->set_operstate(nic.operstate);
    n->set_speed_mbps(nic.speed_mbps);
    for (const std::string& address : nic.addresses) n->add_addresses(address);
    n->set_rdma_device(nic.rdma_device);
  }
  pb::VersionInfo* v = out->mutable_versions();
  v->set_protocol_version(in.versions.protocol_version);
  v->set_sparkstack_version(in.versions.sparkstack_version);
  v->set_build_id(in.versions.build_id);
  v->set_cuda_runtime(in.versions.cuda_runtime);
  v->set_cuda_driver(in.versions.cuda_driver);
  v->set_ucx(in.versions.ucx);
  v->set_nccl(in.versions.nccl);
}

absl::StatusOr<NodeCapabilities> FromProto(const pb::NodeCapabilities& in) {
  constexpr absl::string_view kWhere = "node capabilities";
  for (const auto& [field, value] :
       {std::pair<absl::string_view, const std::string&>{"hostname", in.hostname()},
        {"os", in.os()},
        {"cpu_arch", in.cpu_arch()},
        {"cpu_model", in.cpu_model()}}) {
    SPARKSTACK_RETURN_IF_ERROR(CheckBytes(kWhere, field, value, kMaxNameBytes));
  }
  SPARKSTACK_RETURN_IF_ERROR(CheckCount(kWhere, "gpus", in.gpus_size(), kMaxGpus));
  SPARKSTACK_RETURN_IF_ERROR(CheckCount(kWhere, "nics", in.nics_size(), kMaxNics));
  NodeCapabilities out;
  out.hostname = in.hostname();
  out.os = in.os();
  out.cpu_arch = in.cpu_arch();
  out.cpu_model = in.cpu_model();
  out.cpu_cores = in.cpu_cores();
  out.memory_total_bytes = in.memory_total_bytes();
  out.memory_available_bytes = in.memory_available_bytes();
  for (const pb::GpuInfo& g : in.gpus()) {
    SPARKSTACK_RETURN_IF_ERROR(CheckBytes(kWhere, "gpus.name", g.name(), kMaxNameBytes));
    out.gpus.push_back({.index = g.index(),
                        .name = g.name(),
                        .compute_capability_major = g.compute_capability_major(),
                        .compute_capability_minor = g.compute_capability_minor(),
                        .total_memory_bytes = g.total_memory_bytes(),
                        .free_memory_bytes = g.free_memory_bytes(),
                        .multiprocessors = g.multiprocessors(),
                        .integrated = g.integrated()});
  }
  for (const pb::NicInfo& n : in.nics()) {
    for (const auto& [field, value] :
         {std::pair<absl::string_view, const std::string&>{"nics.name", n.name()},
          {"nics.mac", n.mac()},
          {"nics.operstate", n.operstate()},
          {"nics.rdma_device", n.rdma_device()}}) {
      SPARKSTACK_RETURN_IF_ERROR(CheckBytes(kWhere, field, value, kMaxNameBytes));
    }
    SPARKSTACK_RETURN_IF_ERROR(
        CheckCount(kWhere, "nics.addresses", n.addresses_size(), kMaxNicAddresses));
    NicInfo nic{.name = n.name(),
                .mac = n.mac(),
                .mtu = n.mtu(),
                .operstate = n.operstate(),
                .speed_mbps = n.speed_mbps(),
                .addresses = {},
                .rdma_device = n.rdma_device()};
    for (const std::string& address : n.addresses()) {
      SPARKSTACK_RETURN_IF_ERROR(CheckBytes(kWhere, "nics.addresses", address, kMaxNameBytes));
      nic.addresses.push_back(address);
    }
    out.nics.push_back(std::move(nic));
  }
  const pb::VersionInfo& v = in.versions();
  for (const auto& [field, value] : {std::pair<absl::string_view, const std::string&>{
                                         "versions.sparkstack_version", v.sparkstack_version()},
                                     {"versions.build_id", v.build_id()},
                                     {"versions.cuda_runtime", v.cuda_runtime()},
                                     {"versions.cuda_driver", v.cuda_driver()},
                                     {"versions.ucx", v.ucx()},
                                     {"versions.nccl", v.nccl()}}) {
    SPARKSTACK_RETURN_IF_ERROR(CheckBytes(kWhere, field, value, kMaxNameBytes));
  }
  out.versions = {.protocol_version = v.protocol_version(),
                  .sparkstack_version = v.sparkstack_version(),
                  .build_id = v.build_id(),
                  .cuda_runtime = v.cuda_runtime(),
                  .cuda_driver = v.cuda_driver(),
                  .ucx = v.ucx(),
                  .nccl = v.nccl()};
  return out;
}

pb::NodeState ToProto(NodeState in) {
  switch (in) {
    case NodeState::kIdle:
      return pb::NODE_STATE_IDLE;
    case NodeState::kClaimed:
      return pb::NODE_STATE_CLAIMED;
    case NodeState::kLoading:
      return pb::NODE_STATE_LOADING;
    case NodeState::kReady:
      return pb::NODE_STATE_READY;
    case NodeState::kDraining:
      return pb::NODE_STATE_DRAINING;
    case NodeState::kFailed:
      return pb::NODE_STATE_FAILED;
  }
  return pb::NODE_STATE_UNSPECIFIED;
}

absl::StatusOr<NodeState> FromProto(pb::NodeState in) {
  switch (in) {
    case pb::NODE_STATE_IDLE:
      return NodeState::kIdle;
    case pb::NODE_STATE_CLAIMED:
      return NodeState::kClaimed;
    case pb::NODE_STATE_LOADING:
      return NodeState::kLoading;
    case pb::NODE_STATE_READY:
      return NodeState::kReady;
    case pb::NODE_STATE_DRAINING:
      return NodeState::kDraining;
    case pb::NODE_STATE_FAILED:
      return NodeState::kFailed;
    default:
      return absl::InvalidArgumentError(absl::StrCat("unknown node state ", static_cast<int>(in)));
  }
}

void ToProto(const LoadPlan& in, pb::LoadPlan* out) {
  switch (in.kind) {
    case WorkerKind::kModel:
      out->set_kind(pb::WORKER_KIND_MODEL);
      break;
    case WorkerKind::kDataPlaneProbe:
      out->set_kind(pb::WORKER_KIND_DATA_PLANE_PROBE);
      break;
  }
  out->set_model_path(in.model_path);
  out->set_rank(in.rank);
  out->set_world_size(in.world_size);
  out->set_tp(in.tp);
  out->set_pp(in.pp);
  out->set_kv_cache_bytes(in.kv_cache_bytes);
  out->set_threads(in.threads);
  out->set_engine_options_json(in.engine_options_json);
}

absl::StatusOr<LoadPlan> FromProto(const pb::LoadPlan& in) {
  constexpr absl::string_view kWhere = "load plan";
  LoadPlan out;
  switch (in.kind()) {
    case pb::WORKER_KIND_MODEL:
      out.kind = WorkerKind::kModel;
      break;
    case pb::WORKER_KIND_DATA_PLANE_PROBE:
      out.kind = WorkerKind::kDataPlaneProbe;
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(kWhere, ": unknown worker kind ", static_cast<int>(in.kind())));
  }
  SPARKSTACK_RETURN_IF_ERROR(CheckBytes(kWhere, "model_path", in.model_path(), kMaxPathBytes));
  SPARKSTACK_RETURN_IF_ERROR(
      CheckBytes(kWhere, "engine_options_json", in.engine_options_json(), kMaxEngineOptionsBytes));
  if (in.world_size() < 2 || in.world_size() > kMaxWorldSize) {
    return absl::InvalidArgumentError(absl::StrCat(kWhere, ": world_size ", in.world_size(),
                                                   " must be in [2, ", kMaxWorldSize, "]"));
  }
  if (in.rank() < 1 || in.rank() >= in.world_size()) {
    return absl::InvalidArgumentError(absl::StrCat(kWhere, ": rank ", in.rank(),
                                                   " must be in [1, world_size ", in.world_size(),
                                                   ") (rank 0 runs on the head)"));
  }
  if (in.tp() < 1 || in.pp() < 1 ||
      static_cast<int64_t>(in.tp()) * in.pp() != static_cast<int64_t>(in.world_size())) {
    return absl::InvalidArgumentError(absl::StrCat(kWhere, ": tp ", in.tp(), " x pp ", in.pp(),
                                                   " must equal world_size ", in.world_size()));
  }
  if (in.threads() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWhere, ": threads ", in.threads(), " is negative"));
  }
  if (in.model_path().empty() && out.kind == WorkerKind::kModel) {
    return absl::InvalidArgumentError(absl::StrCat(kWhere, ": model_path is empty"));
  }
  out.model_path = in.model_path();
  out.rank = in.rank();
  out.world_size = in.world_size();
  out.tp = in.tp();
  out.pp = in.pp();
  out.kv_cache_bytes = in.kv_cache_bytes();
  out.threads = in.threads();
  out.engine_options_json = in.engine_options_json();
  return out;
}

void ToProto(const ModelFingerprint& in, pb::ModelReport* out) {
  out->set_model_path(in.model_path);
  for (const ModelFile& file : in.files) {
    pb::ModelFile* f = out->add_files();
    f->set_name(file.name);
    f->set_size_bytes(file.size_bytes);
    f->set_header_hash(file.header_hash);
  }
}

absl::StatusOr<ModelFingerprint> FromProto(const pb::ModelReport& in) {
  constexpr absl::string_view kWhere = "model report";
  SPARKSTACK_RETURN_IF_ERROR(CheckBytes(kWhere, "model_path", in.model_path(), kMaxPathBytes));
  SPARKSTACK_RETURN_IF_ERROR(CheckBytes(kWhere, "error", in.error(), kMaxMessageBytes));
  if (!in.error().empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("model directory ", in.model_path(), ": ", in.error()));
  }
  SPARKSTACK_RETURN_IF_ERROR(CheckCount(kWhere, "files", in.files_size(), kMaxModelFiles));
  ModelFingerprint out;
  out.model_path = in.model_path();
  for (const pb::ModelFile& f : in.files()) {
    SPARKSTACK_RETURN_IF_ERROR(CheckBytes(kWhere, "files.name", f.name(), kMaxPathBytes));
    out.files.push_back(
        {.name = f.name(), .size_bytes = f.size_bytes(), .header_hash = f.header_hash()});
  }
  std::sort(out.files.begin(), out.files.end(),
            [](const ModelFile& a, const ModelFile& b) { return a.name < b.name; });
  return out;
}

void ToProto(const LoadProgress& in, pb::LoadProgress* out) {
  switch (in.phase) {
    case LoadPhase::kAccepted:
      out->set_phase(pb::LOAD_PHASE_ACCEPTED);
      break;
    case LoadPhase::kLoading:
      out->set_phase(pb::LOAD_PHASE_LOADING);
      break;
    case LoadPhase::kConnecting:
      out->set_phase(pb::LOAD_PHASE_CONNECTING);
      break;
    case LoadPhase::kReady:
      out->set_phase(pb::LOAD_PHASE_READY);
      break;
    case LoadPhase::kFailed:
      out->set_phase(pb::LOAD_PHASE_FAILED);
      break;
  }
  out->set_bytes_done(in.bytes_done);
  out->set_bytes_total(in.bytes_total);
  out->set_message(Truncate(in.message));
}

absl::StatusOr<LoadProgress> FromProto(const pb::LoadProgress& in) {
  SPARKSTACK_RETURN_IF_ERROR(
      CheckBytes("load progress", "message", in.message(), kMaxMessageBytes));
  LoadProgress out{
      .bytes_done = in.bytes_done(), .bytes_total = in.bytes_total(), .message = in.message()};
  switch (in.phase()) {
    case pb::LOAD_PHASE_ACCEPTED:
      out.phase = LoadPhase::kAccepted;
      break;
    case pb::LOAD_PHASE_LOADING:
      out.phase = LoadPhase::kLoading;
      break;
    case pb::LOAD_PHASE_CONNECTING:
      out.phase = LoadPhase::kConnecting;
      break;
    case pb::LOAD_PHASE_READY:
      out.phase = LoadPhase::kReady;
      break;
    case pb::LOAD_PHASE_FAILED:
      out.phase = LoadPhase::kFailed;
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("load progress: unknown phase ", static_cast<int>(in.phase())));
  }
  return out;
}

pb::WorkerReport ToWorkerReport(int rank, const absl::Status& result, bool stopped) {
  pb::WorkerReport report;
  report.set_outcome(stopped || result.ok() ? pb::WORKER_OUTCOME_STOPPED
                                            : pb::WORKER_OUTCOME_FAILED);
  report.set_rank(rank);
  report.set_status_code(static_cast<int>(result.code()));
  report.set_message(Truncate(result.message()));
  return report;
}

absl::StatusOr<absl::Status> FromProto(const pb::WorkerReport& in) {
  SPARKSTACK_RETURN_IF_ERROR(
      CheckBytes("worker report", "message", in.message(), kMaxMessageBytes));
  switch (in.outcome()) {
    case pb::WORKER_OUTCOME_STOPPED:
      return absl::OkStatus();
    case pb::WORKER_OUTCOME_FAILED: {
      // An unknown or OK code on a failure still has to read as a failure.
      absl::StatusCode code = static_cast<absl::StatusCode>(in.status_code());
      if (in.status_code() <= 0 || in.status_code() > 16) code = absl::StatusCode::kUnknown;
      return absl::Status(code, in.message());
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("worker report: unknown outcome ", static_cast<int>(in.outcome())));
  }
}

absl::Status ValidateClaim(const pb::Claim& claim) {
  constexpr absl::string_view kWhere = "claim";
  if (claim.protocol_version() != kControlProtocolVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the coordinator speaks control protocol ", claim.protocol_version(), ", this node speaks ",
        kControlProtocolVersion, " (run the same sparkstack version on every node)"));
  }
  SPARKSTACK_RETURN_IF_ERROR(CheckBytes(kWhere, "cluster_id", claim.cluster_id(), kMaxNameBytes));
  SPARKSTACK_RETURN_IF_ERROR(CheckBytes(kWhere, "coordinator", claim.coordinator(), kMaxNameBytes));
  if (claim.cluster_id().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(kWhere, ": cluster_id is empty"));
  }
  const uint32_t interval = claim.heartbeat_interval_ms();
  const uint32_t timeout = claim.heartbeat_timeout_ms();
  if (interval < 50 || interval > timeout || timeout > 60000) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWhere, ": heartbeat interval ", interval, " ms and timeout ", timeout,
                     " ms must satisfy 50 <= interval <= timeout <= 60000"));
  }
  return absl::OkStatus();
}

pb::BootstrapOp ToProto(BootstrapOpKind kind) {
  switch (kind) {
    case BootstrapOpKind::kAllGather:
      return pb::BOOTSTRAP_OP_ALL_GATHER;
    case BootstrapOpKind::kBroadcast:
      return pb::BOOTSTRAP_OP_BROADCAST;
    case BootstrapOpKind::kBarrier:
      return pb::BOOTSTRAP_OP_BARRIER;
  }
  return pb::BOOTSTRAP_OP_UNSPECIFIED;
}

BootstrapOpKind FromProto(pb::BootstrapOp op) {
  switch (op) {
    case pb::BOOTSTRAP_OP_BROADCAST:
      return BootstrapOpKind::kBroadcast;
    case pb::BOOTSTRAP_OP_BARRIER:
      return BootstrapOpKind::kBarrier;
    default:
      return BootstrapOpKind::kAllGather;
  }
}

absl::Status ValidateContribution(const pb::BootstrapContribution& contribution) {
  constexpr absl::string_view kWhere = "bootstrap contribution";
  if (contribution.op() != pb::BOOTSTRAP_OP_ALL_GATHER &&
      contribution.op() != pb::BOOTSTRAP_OP_BROADCAST &&
      contribution.op() != pb::BOOTSTRAP_OP_BARRIER) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWhere, ": unknown op ", static_cast<int>(contribution.op())));
  }
  return CheckBytes(kWhere, "blob", contribution.blob(), kBootstrapMaxBlobBytes);
}

absl::StatusOr<std::vector<std::string>> ResultBlobs(const pb::BootstrapResult& result) {
  constexpr absl::string_view kWhere = "bootstrap result";
  if (result.error_code() != 0) {
    SPARKSTACK_RETURN_IF_ERROR(CheckBytes(kWhere, "error", result.error(), kMaxMessageBytes));
    absl::StatusCode code = static_cast<absl::StatusCode>(result.error_code());
    if (result.error_code() < 0 || result.error_code() > 16) code = absl::StatusCode::kUnknown;
    return absl::Status(code, result.error());
  }
  SPARKSTACK_RETURN_IF_ERROR(CheckCount(kWhere, "blobs", result.blobs_size(), kMaxWorldSize));
  std::vector<std::string> blobs;
  blobs.reserve(result.blobs_size());
  for (const std::string& blob : result.blobs()) {
    SPARKSTACK_RETURN_IF_ERROR(CheckBytes(kWhere, "blob", blob, kBootstrapMaxBlobBytes));
    blobs.push_back(blob);
  }
  return blobs;
}

std::string Truncate(absl::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  size_t end = max_bytes;
  // Step back over continuation bytes (10xxxxxx) so that no sequence is cut in two.
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return std::string(text.substr(0, end));
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), Truncate(status.message()));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

}  // namespace sparkstack::control
