// The gRPC edge: every message round-trips through its proto unchanged, and every bound of
// control.proto is enforced with an error that names the field.
#include "runtime/control/proto_mapping.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/parallel/bootstrap.h"

namespace sparkstack::control {
namespace {

using ::testing::HasSubstr;

NodeCapabilities SampleCapabilities() {
  NodeCapabilities caps;
  caps.hostname = "spark-b";
  caps.os = "Linux 6.8.0";
  caps.cpu_arch = "aarch64";
  caps.cpu_model = "Arm implementer 0x41 part 0xd85";
  caps.cpu_cores = 20;
  caps.memory_total_bytes = 128ull << 30;
  caps.memory_available_bytes = 119ull << 30;
  caps.gpus.push_back({.index = 0,
                       .name = "NVIDIA GB10",
                       .compute_capability_major = 12,
                       .compute_capability_minor = 1,
                       .total_memory_bytes = 128ull << 30,
                       .free_memory_bytes = 100ull << 30,
                       .multiprocessors = 48,
                       .integrated = true});
  caps.nics.push_back({.name = "enp1s0f0np0",
                       .mac = "aa:bb:cc:dd:ee:ff",
                       .mtu = 9000,
                       .operstate = "up",
                       .speed_mbps = 200000,
                       .addresses = {"10.0.0.2", "fe80::1"},
                       .rdma_device = "mlx5_0"});
  caps.versions = {.protocol_version = 1,
                   .sparkstack_version = "0.1.0",
                   .build_id = "abc123",
                   .cuda_runtime = "13.0",
                   .cuda_driver = "13.0",
                   .ucx = "1.13.1",
                   .nccl = "2.28.3"};
  return caps;
}

TEST(ProtoMappingTest, CapabilitiesRoundTrip) {
  const NodeCapabilities caps = SampleCapabilities();
  pb::NodeCapabilities proto;
  ToProto(caps, &proto);
  // Through the wire format, as the peer receives it.
  pb::NodeCapabilities parsed;
  ASSERT_TRUE(parsed.ParseFromString(proto.SerializeAsString()));
  absl::StatusOr<NodeCapabilities> back = FromProto(parsed);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->hostname, "spark-b");
  EXPECT_EQ(back->cpu_cores, 20u);
  EXPECT_EQ(back->memory_available_bytes, 119ull << 30);
  ASSERT_EQ(back->gpus.size(), 1u);
  EXPECT_EQ(back->gpus[0].name, "NVIDIA GB10");
  EXPECT_EQ(back->gpus[0].compute_capability_major, 12);
  EXPECT_EQ(back->gpus[0].compute_capability_minor, 1);
  EXPECT_TRUE(back->gpus[0].integrated);
  ASSERT_EQ(back->nics.size(), 1u);
  EXPECT_EQ(back->nics[0].mtu, 9000u);
  EXPECT_EQ(back->nics[0].speed_mbps, 200000);
  EXPECT_THAT(back->nics[0].addresses, ::testing::ElementsAre("10.0.0.2", "fe80::1"));
  EXPECT_EQ(back->nics[0].rdma_device, "mlx5_0");
  EXPECT_EQ(back->versions.nccl, "2.28.3");
  EXPECT_EQ(back->versions.build_id, "abc123");
}

TEST(ProtoMappingTest, CapabilitiesBoundsNameTheField) {
  pb::NodeCapabilities proto;
  ToProto(SampleCapabilities(), &proto);
  proto.set_hostname(std::string(kMaxNameBytes + 1, 'h'));
  EXPECT_THAT(FromProto(proto).status().message(), HasSubstr("hostname is 257 bytes, at most 256"));

  ToProto(SampleCapabilities(), &proto);
  proto.clear_nics();
  for (size_t i = 0; i <= kMaxNics; ++i) proto.add_nics()->set_name("eth");
  EXPECT_THAT(FromProto(proto).status().message(), HasSubstr("nics has 65 entries, at most 64"));

  pb::NodeCapabilities many_gpus;
  for (size_t i = 0; i <= kMaxGpus; ++i) many_gpus.add_gpus();
  EXPECT_THAT(FromProto(many_gpus).status().message(), HasSubstr("gpus has 17 entries"));

  pb::NodeCapabilities long_address;
  long_address.add_nics()->add_addresses(std::string(300, '1'));
  EXPECT_THAT(FromProto(long_address).status().message(), HasSubstr("nics.addresses is 300 bytes"));
}

LoadPlan SamplePlan() {
  return {.kind = WorkerKind::kModel,
          .model_path = "/models/qwen",
          .rank = 3,
          .world_size = 4,
          .tp = 2,
          .pp = 2,
          .kv_cache_bytes = 7ull << 30,
          .threads = 9,
          .engine_options_json = R"({"max_num_seqs":64})",
          .head_host = "not sent"};
}

TEST(ProtoMappingTest, LoadPlanRoundTripWithoutHeadHost) {
  pb::LoadPlan proto;
  ToProto(SamplePlan(), &proto);
  absl::StatusOr<LoadPlan> back = FromProto(proto);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->kind, WorkerKind::kModel);
  EXPECT_EQ(back->model_path, "/models/qwen");
  EXPECT_EQ(back->rank, 3);
  EXPECT_EQ(back->world_size, 4);
  EXPECT_EQ(back->tp, 2);
  EXPECT_EQ(back->pp, 2);
  EXPECT_EQ(back->kv_cache_bytes, 7ull << 30);
  EXPECT_EQ(back->threads, 9);
  EXPECT_EQ(back->engine_options_json, R"({"max_num_seqs":64})");
  EXPECT_EQ(back->head_host, "");  // the agent fills it in from the connection
}

TEST(ProtoMappingTest, LoadPlanChecks) {
  const auto error = [](auto mutate) {
    pb::LoadPlan proto;
    ToProto(SamplePlan(), &proto);
    mutate(proto);
    return std::string(FromProto(proto).status().message());
  };
  EXPECT_THAT(error([](pb::LoadPlan& p) { p.set_rank(0); }),
              HasSubstr("rank 0 must be in [1, world_size 4)"));
  EXPECT_THAT(error([](pb::LoadPlan& p) { p.set_rank(4); }), HasSubstr("rank 4"));
  EXPECT_THAT(error([](pb::LoadPlan& p) { p.set_tp(3); }),
              HasSubstr("tp 3 x pp 2 must equal world_size 4"));
  EXPECT_THAT(error([](pb::LoadPlan& p) { p.set_world_size(65); }),
              HasSubstr("world_size 65 must be in [2, 64]"));
  EXPECT_THAT(error([](pb::LoadPlan& p) { p.set_kind(pb::WORKER_KIND_UNSPECIFIED); }),
              HasSubstr("unknown worker kind"));
  EXPECT_THAT(error([](pb::LoadPlan& p) { p.set_model_path(std::string(kMaxPathBytes + 1, 'm')); }),
              HasSubstr("model_path is 4097 bytes, at most 4096"));
  EXPECT_THAT(error([](pb::LoadPlan& p) { p.set_model_path(""); }),
              HasSubstr("model_path is empty"));
  EXPECT_THAT(error([](pb::LoadPlan& p) {
                p.set_engine_options_json(std::string(kMaxEngineOptionsBytes + 1, ' '));
              }),
              HasSubstr("engine_options_json is 65537 bytes"));
  EXPECT_THAT(error([](pb::LoadPlan& p) { p.set_threads(-1); }),
              HasSubstr("threads -1 is negative"));
}

TEST(ProtoMappingTest, ModelReportRoundTripAndError) {
  ModelFingerprint fingerprint{.model_path = "/m",
                               .files = {{.name = "a.json", .size_bytes = 10, .header_hash = 1},
                                         {.name = "b.safetensors",
                                          .size_bytes = 1ull << 40,
                                          .header_hash = 0xfedcba9876543210ull}}};
  pb::ModelReport proto;
  ToProto(fingerprint, &proto);
  absl::StatusOr<ModelFingerprint> back = FromProto(proto);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->files, fingerprint.files);

  proto.set_error("model directory /m does not exist here");
  EXPECT_EQ(FromProto(proto).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(FromProto(proto).status().message(), HasSubstr("does not exist here"));

  pb::ModelReport huge;
  for (size_t i = 0; i <= kMaxModelFiles; ++i) huge.add_files()->set_name("f");
  EXPECT_THAT(FromProto(huge).status().message(), HasSubstr("files has 4097 entries"));
}

TEST(ProtoMappingTest, ProgressAndWorkerReports) {
  pb::LoadProgress progress;
  ToProto(
      LoadProgress{
          .phase = LoadPhase::kLoading, .bytes_done = 5, .bytes_total = 9, .message = "layer 3"},
      &progress);
  absl::StatusOr<LoadProgress> p = FromProto(progress);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->phase, LoadPhase::kLoading);
  EXPECT_EQ(p->bytes_done, 5u);
  EXPECT_EQ(p->bytes_total, 9u);
  EXPECT_EQ(p->message, "layer 3");
  progress.set_phase(static_cast<pb::LoadPhase>(99));
  EXPECT_THAT(FromProto(progress).status().message(), HasSubstr("unknown phase 99"));

  // A failure keeps its code and message; a stopped worker is OK even if it returned an error.
  pb::WorkerReport failed =
      ToWorkerReport(2, absl::UnavailableError("peer rank 3 unavailable"), false);
  absl::StatusOr<absl::Status> result = FromProto(failed);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(result->message(), "peer rank 3 unavailable");
  EXPECT_TRUE(FromProto(ToWorkerReport(2, absl::CancelledError("stopped"), true))->ok());
  // A forged FAILED report with an OK code still reads as a failure.
  failed.set_status_code(0);
  EXPECT_FALSE(FromProto(failed)->ok());
  // Long messages are cut at a UTF-8 boundary.
  const std::string long_message = std::string(kMaxMessageBytes - 1, 'x') + "\xC3\xA9";
  pb::WorkerReport cut = ToWorkerReport(1, absl::InternalError(long_message), false);
  EXPECT_EQ(cut.message().size(), kMaxMessageBytes - 1);
}

TEST(ProtoMappingTest, TruncateKeepsUtf8Whole) {
  EXPECT_EQ(Truncate("abc", 5), "abc");
  EXPECT_EQ(Truncate("ab\xE2\x82\xAC", 4), "ab");  // the euro sign would be split
  EXPECT_EQ(Truncate("ab\xE2\x82\xAC", 5), "ab\xE2\x82\xAC");
}

TEST(ProtoMappingTest, ClaimChecks) {
  pb::Claim claim;
  claim.set_protocol_version(kControlProtocolVersion);
  claim.set_cluster_id("c1");
  claim.set_heartbeat_interval_ms(1000);
  claim.set_heartbeat_timeout_ms(3000);
  EXPECT_TRUE(ValidateClaim(claim).ok());
  pb::Claim other = claim;
  other.set_protocol_version(7);
  EXPECT_THAT(ValidateClaim(other).message(),
              HasSubstr("coordinator speaks control protocol 7, this node speaks 1"));
  other = claim;
  other.set_heartbeat_interval_ms(10);
  EXPECT_THAT(ValidateClaim(other).message(), HasSubstr("50 <= interval <= timeout <= 60000"));
  other = claim;
  other.set_heartbeat_timeout_ms(500);
  EXPECT_FALSE(ValidateClaim(other).ok());
  other = claim;
  other.set_cluster_id("");
  EXPECT_THAT(ValidateClaim(other).message(), HasSubstr("cluster_id is empty"));
}

TEST(ProtoMappingTest, BootstrapBounds) {
  pb::BootstrapContribution c;
  c.set_op(pb::BOOTSTRAP_OP_ALL_GATHER);
  c.set_blob(std::string(kBootstrapMaxBlobBytes, 'b'));
  EXPECT_TRUE(ValidateContribution(c).ok());
  c.set_blob(std::string(kBootstrapMaxBlobBytes + 1, 'b'));
  EXPECT_THAT(ValidateContribution(c).message(), HasSubstr("blob is 262145 bytes"));
  c.set_blob("");
  c.set_op(pb::BOOTSTRAP_OP_UNSPECIFIED);
  EXPECT_THAT(ValidateContribution(c).message(), HasSubstr("unknown op"));

  for (BootstrapOpKind kind :
       {BootstrapOpKind::kAllGather, BootstrapOpKind::kBroadcast, BootstrapOpKind::kBarrier}) {
    EXPECT_EQ(FromProto(ToProto(kind)), kind);
  }

  pb::BootstrapResult r;
  r.add_blobs("x");
  r.add_blobs("y");
  EXPECT_THAT(*ResultBlobs(r), ::testing::ElementsAre("x", "y"));
  r.set_error_code(static_cast<int>(absl::StatusCode::kUnavailable));
  r.set_error("node lost");
  EXPECT_EQ(ResultBlobs(r).status().code(), absl::StatusCode::kUnavailable);
  pb::BootstrapResult many;
  for (int i = 0; i <= kMaxWorldSize; ++i) many.add_blobs("");
  EXPECT_THAT(ResultBlobs(many).status().message(), HasSubstr("blobs has 65 entries"));
}

TEST(ProtoMappingTest, StatusConversionKeepsCodeAndMessage) {
  const absl::Status in = absl::ResourceExhaustedError("no memory on node 2");
  const grpc::Status g = ToGrpcStatus(in);
  EXPECT_EQ(g.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(g.error_message(), "no memory on node 2");
  EXPECT_EQ(FromGrpcStatus(g), in);
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
}

}  // namespace
}  // namespace sparkstack::control
