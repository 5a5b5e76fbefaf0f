// Flags and process plumbing shared by the control-plane commands (`node`, `serve`).
#ifndef SPARKSTACK_LAUNCHER_CONTROL_FLAGS_H_
#define SPARKSTACK_LAUNCHER_CONTROL_FLAGS_H_

#include <functional>

#include "CLI/CLI.hpp"
#include "runtime/control/control_types.h"

namespace sparkstack::launcher {

// --token-file, --tls-cert, --tls-key, --tls-ca, --tls-server-name, --insecure.
void AddControlAuthFlags(CLI::App& cmd, control::AuthOptions& auth);

// Blocks SIGINT and SIGTERM in the calling thread and every thread it starts afterwards, so that
// they can be waited for with WaitForTerminationSignal. Call first thing in a command.
void BlockTerminationSignals();

// Waits until SIGINT or SIGTERM arrives or `stop()` returns true (checked every 100 ms); returns
// the signal number, or 0 when `stop` ended the wait.
int WaitForTerminationSignal(const std::function<bool()>& stop);

}  // namespace sparkstack::launcher

#endif  // SPARKSTACK_LAUNCHER_CONTROL_FLAGS_H_
