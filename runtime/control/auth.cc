#include "runtime/control/auth.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "grpcpp/client_context.h"
#include "runtime/core/status_macros.h"

namespace sparkstack::control {
namespace {

constexpr size_t kMinTokenBytes = 16;
constexpr size_t kMaxTokenBytes = 4096;
constexpr size_t kMaxPemBytes = 1 << 20;
constexpr char kAuthorizationKey[] = "authorization";
constexpr std::string_view kBearer = "Bearer ";
constexpr char kBearerText[] = "Bearer ";

absl::StatusOr<std::string> ReadSmallFile(const std::string& path, absl::string_view what,
                                          size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(what, " ", path, ": cannot open it"));
  std::string data(max_bytes + 1, '\0');
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  data.resize(static_cast<size_t>(in.gcount()));
  if (data.size() > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " ", path, ": larger than ", max_bytes, " bytes"));
  }
  return data;
}

}  // namespace

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  // Walk the expected length whatever the input, folding every difference into one word.
  size_t diff = a.size() ^ b.size();
  for (size_t i = 0; i < a.size(); ++i) {
    const unsigned char x = static_cast<unsigned char>(a[i]);
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : ~x;
    diff |= static_cast<size_t>(x ^ y);
  }
  // Keep the compiler from turning the loop into an early-exit comparison.
  volatile size_t result = diff;
  return result == 0;
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("token file ", path, ": cannot stat it"));
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("token file ", path, ": readable by group or others (mode ",
                     absl::StrFormat("%03o", st.st_mode & 0777), "); run chmod 600 ", path));
  }
  SPARKSTACK_ASSIGN_OR_RETURN(std::string data, ReadSmallFile(path, "token file", kMaxTokenBytes));
  std::string token(absl::StripAsciiWhitespace(data.substr(0, data.find('\n'))));
  if (token.size() < kMinTokenBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "token file ", path, ": the token (first line) has ", token.size(), " bytes, at least ",
        kMinTokenBytes, " are needed (e.g. openssl rand -hex 32)"));
  }
  for (char c : token) {
    if (c < 0x21 || c > 0x7e) {
      return absl::InvalidArgumentError(
          absl::StrCat("token file ", path, ": the token must be printable ASCII without spaces"));
    }
  }
  return token;
}

absl::StatusOr<std::shared_ptr<const ControlAuth>> ControlAuth::Load(const AuthOptions& options) {
  const bool any_tls = !options.tls_cert_file.empty() || !options.tls_key_file.empty() ||
                       !options.tls_ca_file.empty();
  const bool all_tls = !options.tls_cert_file.empty() && !options.tls_key_file.empty() &&
                       !options.tls_ca_file.empty();
  if (any_tls && !all_tls) {
    return absl::InvalidArgumentError("mTLS needs all three of --tls-cert, --tls-key and --tls-ca");
  }
  if (options.insecure && (any_tls || !options.token_file.empty())) {
    return absl::InvalidArgumentError(
        "--insecure cannot be combined with a token file or TLS flags");
  }
  if (!options.insecure && !any_tls && options.token_file.empty()) {
    return absl::InvalidArgumentError(
        "the control plane needs credentials: --token-file FILE (a shared secret on every node) "
        "or --tls-cert/--tls-key/--tls-ca (mTLS)");
  }
  std::shared_ptr<ControlAuth> auth(new ControlAuth());
  if (!options.token_file.empty()) {
    SPARKSTACK_ASSIGN_OR_RETURN(auth->token_, ReadTokenFile(options.token_file));
  }
  if (all_tls) {
    SPARKSTACK_ASSIGN_OR_RETURN(
        auth->tls_cert_, ReadSmallFile(options.tls_cert_file, "TLS certificate", kMaxPemBytes));
    SPARKSTACK_ASSIGN_OR_RETURN(auth->tls_key_,
                                ReadSmallFile(options.tls_key_file, "TLS key", kMaxPemBytes));
    SPARKSTACK_ASSIGN_OR_RETURN(auth->tls_ca_,
                                ReadSmallFile(options.tls_ca_file, "TLS CA", kMaxPemBytes));
    for (const auto& [what, pem] :
         {std::pair<absl::string_view, const std::string&>{"TLS certificate", auth->tls_cert_},
          {"TLS key", auth->tls_key_},
          {"TLS CA", auth->tls_ca_}}) {
      if (pem.find("-----BEGIN") == std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat(what, " is not in PEM format"));
      }
    }
    auth->tls_server_name_ = options.tls_server_name;
  }
  return std::shared_ptr<const ControlAuth>(std::move(auth));
}

std::shared_ptr<const ControlAuth> ControlAuth::WithToken(std::string token) {
  std::shared_ptr<ControlAuth> auth(new ControlAuth());
  auth->token_ = std::move(token);
  return auth;
}

std::shared_ptr<const ControlAuth> ControlAuth::Insecure() {
  return std::shared_ptr<const ControlAuth>(new ControlAuth());
}

std::shared_ptr<grpc::ServerCredentials> ControlAuth::ServerCredentials() const {
  if (!uses_tls()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions ssl(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  ssl.pem_root_certs = tls_ca_;
  ssl.pem_key_cert_pairs.push_back({tls_key_, tls_cert_});
  return grpc::SslServerCredentials(ssl);
}

std::shared_ptr<grpc::ChannelCredentials> ControlAuth::ChannelCredentials() const {
  if (!uses_tls()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = tls_ca_;
  ssl.pem_private_key = tls_key_;
  ssl.pem_cert_chain = tls_cert_;
  return grpc::SslCredentials(ssl);
}

void ControlAuth::AddChannelArguments(grpc::ChannelArguments& args) const {
  if (uses_tls() && !tls_server_name_.empty()) {
    args.SetSslTargetNameOverride(tls_server_name_);
  }
}

grpc::Status ControlAuth::Check(const grpc::ServerContext& context) const {
  if (token_.empty()) return grpc::Status::OK;
  const auto& metadata = context.client_metadata();
  auto found = metadata.find(kAuthorizationKey);
  if (found == metadata.end()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "this node's control plane needs the cluster token (authorization: "
                        "Bearer TOKEN); start the coordinator with the same --token-file");
  }
  std::string_view value(found->second.data(), found->second.size());
  const bool bearer = value.substr(0, kBearer.size()) == kBearer;
  if (bearer) value.remove_prefix(kBearer.size());
  if (!ConstantTimeEquals(token_, value) || !bearer) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "wrong cluster token for this node's control plane");
  }
  return grpc::Status::OK;
}

void ControlAuth::Authorize(grpc::ClientContext& context) const {
  if (!token_.empty()) context.AddMetadata(kAuthorizationKey, absl::StrCat(kBearerText, token_));
}

}  // namespace sparkstack::control
