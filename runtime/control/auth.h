// Authentication of the control plane: a shared token or mutual TLS (AuthOptions in
// control_types.h). Internal to runtime/control (it names gRPC types).
//
// Token: the first line of the token file (>= 16 bytes; a file readable by group or others is
// refused, like ssh keys). Clients send it as `authorization: Bearer TOKEN` metadata on every call;
// the agent compares it in constant time and ends calls without it UNAUTHENTICATED before any
// handler reads a message. (gRPC refuses call credentials on plaintext channels, hence plain
// metadata. Over an untrusted network prefer mTLS: a token sent in clear can be observed.)
//
// mTLS: the agent requires and verifies a client certificate signed by the CA; the coordinator
// verifies the agent's certificate against the same CA (and tls_server_name when set). Token and
// mTLS may be combined.
#ifndef SPARKSTACK_RUNTIME_CONTROL_AUTH_H_
#define SPARKSTACK_RUNTIME_CONTROL_AUTH_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/channel_arguments.h"
#include "runtime/control/control_types.h"

namespace sparkstack::control {

// True when a and b are equal; the time taken depends only on their lengths, not on where they
// differ, so a caller cannot find the token byte by byte.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// Reads a token file (see above). Errors name the file and the problem.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

class ControlAuth {
 public:
  // Reads the files named by `options` and checks that exactly one way was chosen (a token, mTLS,
  // both, or `insecure` alone).
  static absl::StatusOr<std::shared_ptr<const ControlAuth>> Load(const AuthOptions& options);
  // For tests: a token held in memory.
  static std::shared_ptr<const ControlAuth> WithToken(std::string token);
  static std::shared_ptr<const ControlAuth> Insecure();

  std::shared_ptr<grpc::ServerCredentials> ServerCredentials() const;
  std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials() const;
  // Channel arguments the credentials need (the TLS name override), added to `args`.
  void AddChannelArguments(grpc::ChannelArguments& args) const;

  // Server side, first thing in every handler: OK, or UNAUTHENTICATED when the call lacks the
  // token. (mTLS is enforced by the TLS handshake before any call exists.)
  grpc::Status Check(const grpc::ServerContext& context) const;
  // Client side: adds the token to a call.
  void Authorize(grpc::ClientContext& context) const;

  bool uses_token() const { return !token_.empty(); }
  bool uses_tls() const { return !tls_cert_.empty(); }

 private:
  ControlAuth() = default;
  std::string token_;
  std::string tls_cert_, tls_key_, tls_ca_, tls_server_name_;
};

}  // namespace sparkstack::control

#endif  // SPARKSTACK_RUNTIME_CONTROL_AUTH_H_
