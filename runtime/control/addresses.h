// Addresses on the control plane: HOST:PORT flags and the peer strings gRPC reports.
#ifndef SPARKSTACK_RUNTIME_CONTROL_ADDRESSES_H_
#define SPARKSTACK_RUNTIME_CONTROL_ADDRESSES_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace sparkstack::control {

struct HostPort {
  std::string host;  // name, IPv4, or IPv6 without brackets
  int port = 0;
  // "host:port", with brackets around an IPv6 host (what gRPC expects as a target).
  std::string ToString() const;
};

// Parses "HOST:PORT" or "[V6]:PORT"; port in [0, 65535] when `allow_port_zero`, else [1, 65535].
absl::StatusOr<HostPort> ParseHostPort(std::string_view text, bool allow_port_zero = false);

// Parses a comma-separated list of HOST:PORT (empty entries and duplicates are errors).
absl::StatusOr<std::vector<HostPort>> ParseNodeList(std::string_view text);

// The host part of a gRPC peer string ("ipv4:10.0.0.1:5000" -> "10.0.0.1",
// "ipv6:[fe80::1]:5000" -> "fe80::1"); "" for other forms (unix sockets).
std::string PeerHost(std::string_view grpc_peer);

// True for addresses that only this machine can reach (127.0.0.0/8, ::1, localhost).
bool IsLoopbackHost(std::string_view host);

}  // namespace sparkstack::control

#endif  // SPARKSTACK_RUNTIME_CONTROL_ADDRESSES_H_
