// Parsing of the --rendezvous HOST:PORT flag shared by `generate` and `worker`.
#ifndef SPARKSTACK_LAUNCHER_RENDEZVOUS_ADDRESS_H_
#define SPARKSTACK_LAUNCHER_RENDEZVOUS_ADDRESS_H_

#include <string>

#include "absl/status/statusor.h"
#include "runtime/parallel/rendezvous.h"

namespace sparkstack::launcher {

// Options for joining rank 0 at `address` ("HOST:PORT", port 1..65535) as `rank` of `world`.
absl::StatusOr<RendezvousOptions> ParseRendezvous(const std::string& address, int rank, int world,
                                                  int timeout_s);

}  // namespace sparkstack::launcher

#endif  // SPARKSTACK_LAUNCHER_RENDEZVOUS_ADDRESS_H_
