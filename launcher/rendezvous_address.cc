#include "launcher/rendezvous_address.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace sparkstack::launcher {

absl::StatusOr<RendezvousOptions> ParseRendezvous(const std::string& address, int rank, int world,
                                                  int timeout_s) {
  const size_t colon = address.rfind(':');
  RendezvousOptions options;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), &options.port) || options.port <= 0 ||
      options.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--rendezvous '", address, "' is not HOST:PORT"));
  }
  options.host = address.substr(0, colon);
  options.rank = rank;
  options.world_size = world;
  options.timeout = std::chrono::seconds(timeout_s);
  return options;
}

}  // namespace sparkstack::launcher
