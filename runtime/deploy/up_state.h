// What `sparkstack up -f FILE` leaves for `status`, `down` and `logs` on the head: a directory per
// cluster file holding state.json (the serve process, its log, the endpoints) and serve.log.
#ifndef SPARKSTACK_RUNTIME_DEPLOY_UP_STATE_H_
#define SPARKSTACK_RUNTIME_DEPLOY_UP_STATE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace sparkstack::deploy {

struct UpState {
  std::string cluster_file;  // absolute path
  int64_t pid = 0;           // the head's `sparkstack serve`
  std::string log_file;
  std::string api_host;  // where the API servers listen
  int http_port = 0;
  int grpc_port = 0;
  int tp = 1;
  int pp = 1;
  int ep = 1;
  int64_t started_unix = 0;
};

// $SPARKSTACK_STATE_DIR, else $XDG_STATE_HOME/sparkstack, else $HOME/.local/state/sparkstack.
std::string DefaultStateBase();

// BASE/<file name>-<hash of the absolute path>: one directory per cluster file.
std::string StateDirFor(const std::string& cluster_file_absolute, const std::string& base);

// Writes DIR/state.json atomically (creating DIR, mode 0700).
absl::Status WriteUpState(const std::string& dir, const UpState& state);
// NotFound when DIR/state.json does not exist; InvalidArgument naming the file and field when it
// is not what WriteUpState wrote.
absl::StatusOr<UpState> ReadUpState(const std::string& dir);
void RemoveUpState(const std::string& dir);

// The last `count` lines of a text file such as the head's serve.log (fewer when it is shorter);
// NotFound when it cannot be read.
absl::StatusOr<std::vector<std::string>> LastLinesOf(const std::string& path, size_t count);

// Whether `pid` is a live process whose command line is `sparkstack ... serve`: a pid reused by
// an unrelated process after the head died is not mistaken for it.
bool IsServeProcess(int64_t pid);

}  // namespace sparkstack::deploy

#endif  // SPARKSTACK_RUNTIME_DEPLOY_UP_STATE_H_
