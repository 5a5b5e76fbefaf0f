// UCX's own log lines go to sparkstack's logger (stderr), never to stdout, where they would mix
// into a command's results (`generate --json`). UCX reports transient trouble at ERROR level (for
// instance a refused probe of an interface a peer does not listen on) and retries on its own;
// what matters reaches the caller as a Status from the communicator, so UCX errors and warnings
// are logged at debug level (SPDLOG_LEVEL=debug shows them) and only fatal ones as errors.
#ifndef SPARKSTACK_RUNTIME_PARALLEL_UCX_LOG_H_
#define SPARKSTACK_RUNTIME_PARALLEL_UCX_LOG_H_

namespace sparkstack {

// Installs the handler once per process (thread-safe, idempotent). Call before UCX is used.
void RouteUcxLogging();

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_PARALLEL_UCX_LOG_H_
