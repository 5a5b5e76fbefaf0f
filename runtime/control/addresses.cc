#include "runtime/control/addresses.h"

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace sparkstack::control {

std::string HostPort::ToString() const {
  if (absl::StrContains(host, ':')) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

absl::StatusOr<HostPort> ParseHostPort(std::string_view input, bool allow_port_zero) {
  absl::string_view text(input.data(), input.size());
  const auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("address '", text, "': ", why, " (expected HOST:PORT or [IPV6]:PORT)"));
  };
  text = absl::StripAsciiWhitespace(text);
  HostPort out;
  absl::string_view port_text;
  if (absl::ConsumePrefix(&text, "[")) {
    const size_t close = text.find(']');
    if (close == absl::string_view::npos) return bad("unclosed '['");
    out.host = std::string(text.substr(0, close));
    absl::string_view rest = text.substr(close + 1);
    if (!absl::ConsumePrefix(&rest, ":")) return bad("no port");
    port_text = rest;
  } else {
    const size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos) return bad("no port");
    out.host = std::string(text.substr(0, colon));
    if (absl::StrContains(out.host, ':')) return bad("an IPv6 host needs brackets");
    port_text = text.substr(colon + 1);
  }
  if (out.host.empty()) return bad("no host");
  if (out.host.size() > 255) return bad("host longer than 255 bytes");
  if (!absl::SimpleAtoi(port_text, &out.port) || out.port < (allow_port_zero ? 0 : 1) ||
      out.port > 65535) {
    return bad(allow_port_zero ? "port must be 0..65535" : "port must be 1..65535");
  }
  return out;
}

absl::StatusOr<std::vector<HostPort>> ParseNodeList(std::string_view input) {
  absl::string_view text(input.data(), input.size());
  std::vector<HostPort> nodes;
  std::set<std::string> seen;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    absl::StatusOr<HostPort> node = ParseHostPort(std::string_view(item.data(), item.size()));
    if (!node.ok()) return node.status();
    if (!seen.insert(node->ToString()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("node ", node->ToString(), " is listed twice"));
    }
    nodes.push_back(*std::move(node));
  }
  return nodes;
}

std::string PeerHost(std::string_view peer) {
  absl::string_view grpc_peer(peer.data(), peer.size());
  if (absl::ConsumePrefix(&grpc_peer, "ipv4:")) {
    const size_t colon = grpc_peer.rfind(':');
    return std::string(grpc_peer.substr(0, colon));
  }
  if (absl::ConsumePrefix(&grpc_peer, "ipv6:")) {
    absl::StatusOr<HostPort> parsed = ParseHostPort(
        std::string_view(grpc_peer.data(), grpc_peer.size()), /*allow_port_zero=*/true);
    if (!parsed.ok()) return "";
    // Percent-encoded zone ids ("fe80::1%25eth0") stay as gRPC wrote them.
    return parsed->host;
  }
  return "";
}

bool IsLoopbackHost(std::string_view host) {
  return host == "localhost" || host == "::1" || host.substr(0, 4) == "127.";
}

}  // namespace sparkstack::control
