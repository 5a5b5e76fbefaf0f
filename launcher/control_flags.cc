#include "launcher/control_flags.h"

#include <signal.h>

#include <ctime>

namespace sparkstack::launcher {

void AddControlAuthFlags(CLI::App& cmd, control::AuthOptions& auth) {
  cmd.add_option("--token-file", auth.token_file,
                 "shared cluster token (first line, >= 16 bytes, mode 600), the same on every "
                 "node");
  cmd.add_option("--tls-cert", auth.tls_cert_file, "mTLS: this process's certificate (PEM)");
  cmd.add_option("--tls-key", auth.tls_key_file, "mTLS: its private key (PEM)");
  cmd.add_option("--tls-ca", auth.tls_ca_file, "mTLS: the CA that signed every node's certificate");
  cmd.add_option("--tls-server-name", auth.tls_server_name,
                 "mTLS: the name to expect in the agents' certificates (default: their host)");
  cmd.add_flag("--insecure", auth.insecure,
               "no authentication at all (loopback tests only: anyone who can connect controls "
               "the node)");
}

void BlockTerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int WaitForTerminationSignal(const std::function<bool()>& stop) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  const timespec tick{.tv_sec = 0, .tv_nsec = 100'000'000};
  while (!stop()) {
    const int signal = sigtimedwait(&set, nullptr, &tick);
    if (signal > 0) return signal;
  }
  return 0;
}

}  // namespace sparkstack::launcher
