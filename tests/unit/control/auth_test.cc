// Authentication of the control plane: the token file rules, constant-time comparison, and — the
// point of it all — a stranger's calls, to every method the service has, end UNAUTHENTICATED
// without disturbing the node or the cluster it belongs to; mTLS keeps out peers whose
// certificate another CA signed.
#include "runtime/control/auth.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "runtime/control/agent_link.h"
#include "runtime/control/coordinator.h"
#include "sparkstack/v1/control.grpc.pb.h"
#include "tests/unit/control/control_test_util.h"

namespace sparkstack::control {
namespace {

namespace fs = std::filesystem;
using ::sparkstack::control::testing::Addresses;
using ::sparkstack::control::testing::FakeHead;
using ::sparkstack::control::testing::FakeWorkers;
using ::sparkstack::control::testing::InsecureAuth;
using ::sparkstack::control::testing::StartAgents;
using ::sparkstack::control::testing::TokenAuth;
using ::sparkstack::control::testing::TokenFile;
using std::chrono::milliseconds;
using ::testing::HasSubstr;

TEST(AuthTest, ConstantTimeEqualsIsEquality) {
  EXPECT_TRUE(ConstantTimeEquals("secret-token", "secret-token"));
  EXPECT_FALSE(ConstantTimeEquals("secret-token", "secret-tokeN"));
  EXPECT_FALSE(ConstantTimeEquals("secret-token", "secret-token2"));
  EXPECT_FALSE(ConstantTimeEquals("secret-token", "secret"));
  EXPECT_FALSE(ConstantTimeEquals("secret-token", ""));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  // A prefix of the token padded with the complement of the next byte must not match either.
  EXPECT_FALSE(ConstantTimeEquals(std::string("ab\0", 3), "ab"));
}

TEST(AuthTest, TokenFileRules) {
  char dir_template[] = "/tmp/control_auth_XXXXXX";
  const fs::path dir = mkdtemp(dir_template);
  const auto write = [&](const std::string& name, const std::string& data, mode_t mode) {
    const std::string path = (dir / name).string();
    std::ofstream(path) << data;
    chmod(path.c_str(), mode);
    return path;
  };
  auto token = ReadTokenFile(write("ok", "0123456789abcdef0123\nsecond line ignored\n", 0600));
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(*token, "0123456789abcdef0123");
  EXPECT_THAT(ReadTokenFile(write("open", "0123456789abcdef0123\n", 0644)).status().message(),
              HasSubstr("readable by group or others (mode 644); run chmod 600"));
  EXPECT_THAT(ReadTokenFile(write("short", "tooshort\n", 0600)).status().message(),
              HasSubstr("the token (first line) has 8 bytes, at least 16"));
  EXPECT_THAT(ReadTokenFile(write("space", "0123456789 abcdef0123\n", 0600)).status().message(),
              HasSubstr("printable ASCII without spaces"));
  EXPECT_THAT(ReadTokenFile((dir / "missing").string()).status().message(),
              HasSubstr("cannot stat"));
  fs::remove_all(dir);
}

TEST(AuthTest, ExactlyOneWayMustBeChosen) {
  EXPECT_THAT(ControlAuth::Load({}).status().message(), HasSubstr("needs credentials"));
  AuthOptions half_tls;
  half_tls.tls_cert_file = "c";
  EXPECT_THAT(ControlAuth::Load(half_tls).status().message(),
              HasSubstr("all three of --tls-cert, --tls-key and --tls-ca"));
  AuthOptions both = TokenAuth("t");
  both.insecure = true;
  EXPECT_THAT(ControlAuth::Load(both).status().message(),
              HasSubstr("--insecure cannot be combined"));
  EXPECT_TRUE(ControlAuth::Load(InsecureAuth()).ok());
}

// Calls `method` (its full name) with an empty message and the given metadata; returns the
// status. Works for every kind of method: a streaming call just sees one message.
grpc::Status CallRaw(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                     const std::string& authorization) {
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  if (!authorization.empty()) context.AddMetadata("authorization", authorization);
  grpc::ByteBuffer request, response;
  grpc::Slice empty("");
  request = grpc::ByteBuffer(&empty, 1);
  auto call = stub.PrepareUnaryCall(&context, method, request, &cq);
  call->StartCall();
  grpc::Status status;
  call->Finish(&response, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return status;
}

std::vector<std::string> AllMethods() {
  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          "sparkstack.v1.NodeAgent");
  std::vector<std::string> methods;
  for (int i = 0; service != nullptr && i < service->method_count(); ++i) {
    methods.push_back(absl::StrCat("/sparkstack.v1.NodeAgent/", service->method(i)->name()));
  }
  return methods;
}

TEST(AuthTest, StrangersCannotCallAnyMethodNorDisturbAFormedCluster) {
  TokenFile token;
  FakeWorkers workers;
  auto agents = StartAgents(2, TokenAuth(token.path()), workers.Fn());
  FakeHead head;
  CoordinatorOptions options;
  options.nodes = Addresses(agents);
  options.auth.token_file = token.path();
  options.plan.kind = WorkerKind::kDataPlaneProbe;
  options.heartbeat_interval = milliseconds(100);
  options.heartbeat_timeout = milliseconds(3000);
  auto coordinator = Coordinator::Create(options, &head);
  ASSERT_TRUE(coordinator.ok());
  ASSERT_TRUE((*coordinator)->Start().ok());

  const std::vector<std::string> methods = AllMethods();
  ASSERT_EQ(methods.size(), 4u) << "a new RPC: make sure it checks credentials, then update this";
  auto channel = grpc::CreateChannel(Addresses(agents)[0], grpc::InsecureChannelCredentials());
  for (const std::string& method : methods) {
    for (const std::string& authorization :
         {std::string(), std::string("Bearer wrong-token-0123456789"),
          std::string("0123456789abcdef0123456789abcdef"),        // the token without "Bearer "
          std::string("Bearer 0123456789abcdef0123456789abcde"),  // one byte short
          std::string("Bearer 0123456789abcdef0123456789abcdef0")}) {  // one byte long
      grpc::Status status = CallRaw(channel, method, authorization);
      EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
          << method << " with '" << authorization << "': " << status.error_message();
    }
  }
  // Garbage that is not even HTTP/2 on the control port.
  {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(agents[1]->port()));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    const std::string junk(4096, '\x17');
    EXPECT_GT(write(fd, junk.data(), junk.size()), 0);
    close(fd);
  }
  // The cluster did not notice any of it.
  std::this_thread::sleep_for(milliseconds(800));
  const ClusterHealth health = (*coordinator)->Health();
  EXPECT_TRUE(health.ready()) << health.Summary();
  EXPECT_EQ(health.epoch, 1u);
  for (const auto& agent : agents) EXPECT_EQ(agent->state(), NodeState::kReady);
  EXPECT_EQ(workers.stopped.load(), 0);
}

// Runs openssl; false when it is missing or fails.
bool Openssl(const std::string& args) {
  return std::system(absl::StrCat("openssl ", args, " >/dev/null 2>&1").c_str()) == 0;
}

class MutualTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir_template[] = "/tmp/control_tls_XXXXXX";
    dir_ = mkdtemp(dir_template);
    std::ofstream(dir_ / "san.ext") << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
    const auto key_and_cert = [&](const std::string& name, const std::string& ca) {
      const std::string d = dir_.string();
      return Openssl(absl::StrCat("req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                                  "-keyout ",
                                  d, "/", name, ".key -out ", d, "/", name,
                                  ".csr -subj /CN=", name)) &&
             Openssl(absl::StrCat("x509 -req -in ", d, "/", name, ".csr -CA ", d, "/", ca,
                                  ".pem -CAkey ", d, "/", ca, ".key -CAcreateserial -out ", d, "/",
                                  name, ".pem -days 1 -extfile ", d, "/san.ext"));
    };
    const auto ca = [&](const std::string& name) {
      const std::string d = dir_.string();
      return Openssl(
          absl::StrCat("req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
                       "-nodes -keyout ",
                       d, "/", name, ".key -out ", d, "/", name, ".pem -days 1 -subj /CN=", name));
    };
    ok_ = ca("cluster-ca") && ca("rogue-ca") && key_and_cert("node", "cluster-ca") &&
          key_and_cert("head", "cluster-ca") && key_and_cert("stranger", "rogue-ca");
  }
  void TearDown() override { fs::remove_all(dir_); }

  AuthOptions Tls(const std::string& who, const std::string& ca = "cluster-ca") const {
    AuthOptions auth;
    auth.tls_cert_file = (dir_ / (who + ".pem")).string();
    auth.tls_key_file = (dir_ / (who + ".key")).string();
    auth.tls_ca_file = (dir_ / (ca + ".pem")).string();
    return auth;
  }

  fs::path dir_;
  bool ok_ = false;
};

TEST_F(MutualTlsTest, ClusterFormsOverMtlsAndForeignCertificatesAreRefused) {
  if (!ok_) GTEST_SKIP() << "openssl could not make test certificates";
  FakeWorkers workers;
  auto agents = StartAgents(1, Tls("node"), workers.Fn());
  FakeHead head;
  CoordinatorOptions options;
  options.nodes = Addresses(agents);
  options.auth = Tls("head");
  options.plan.kind = WorkerKind::kDataPlaneProbe;
  auto coordinator = Coordinator::Create(options, &head);
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  ASSERT_TRUE((*coordinator)->Start().ok());
  EXPECT_EQ(head.formed(), 1);

  // A certificate from another CA: the handshake fails, no call gets through.
  auto stranger = ControlAuth::Load(Tls("stranger", "cluster-ca"));
  ASSERT_TRUE(stranger.ok());
  auto hello = CallHello(MakeAgentChannel(Addresses(agents)[0], **stranger), **stranger, "x",
                         milliseconds(1500));
  EXPECT_FALSE(hello.ok());
  // No client certificate at all.
  grpc::SslCredentialsOptions ca_only;
  {
    std::ifstream in(dir_ / "cluster-ca.pem");
    ca_only.pem_root_certs = std::string(std::istreambuf_iterator<char>(in), {});
  }
  auto plain = grpc::CreateChannel(Addresses(agents)[0], grpc::SslCredentials(ca_only));
  EXPECT_NE(CallRaw(plain, "/sparkstack.v1.NodeAgent/Hello", "").error_code(),
            grpc::StatusCode::OK);
  // Plaintext to a TLS port.
  auto cleartext = grpc::CreateChannel(Addresses(agents)[0], grpc::InsecureChannelCredentials());
  EXPECT_NE(CallRaw(cleartext, "/sparkstack.v1.NodeAgent/Shutdown", "").error_code(),
            grpc::StatusCode::OK);
  // The head with the right certificate but expecting another CA's agents cannot talk either.
  auto wrong_ca = ControlAuth::Load(Tls("head", "rogue-ca"));
  ASSERT_TRUE(wrong_ca.ok());
  EXPECT_FALSE(CallHello(MakeAgentChannel(Addresses(agents)[0], **wrong_ca), **wrong_ca, "x",
                         milliseconds(1500))
                   .ok());

  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_TRUE((*coordinator)->ready());
  EXPECT_EQ((*coordinator)->Health().epoch, 1u);
}

}  // namespace
}  // namespace sparkstack::control
