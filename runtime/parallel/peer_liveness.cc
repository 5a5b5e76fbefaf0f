#include "runtime/parallel/peer_liveness.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace sparkstack {
namespace {

constexpr size_t kMaxBootIdBytes = 64;

void PutU64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

bool GetU64(std::string_view& in, uint64_t* v) {
  if (in.size() < 8) return false;
  *v = 0;
  for (int i = 0; i < 8; ++i) *v |= uint64_t{static_cast<unsigned char>(in[i])} << (8 * i);
  in.remove_prefix(8);
  return true;
}

// State letter and start time from /proc/<pid>/stat; false when unreadable.
bool ReadStat(int64_t pid, char* state, uint64_t* start_time) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/stat");
  if (!file) return false;
  std::string line;
  std::getline(file, line);
  // The command name (field 2) may hold spaces and parentheses: parse after the last ')'.
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream rest(line.substr(close + 1));
  std::string field;
  rest >> *state;  // field 3
  for (int f = 4; f < 22; ++f) rest >> field;
  rest >> *start_time;  // field 22
  return static_cast<bool>(rest);
}

}  // namespace

ProcessIdentity ProcessIdentity::Self() {
  ProcessIdentity self;
  std::ifstream boot("/proc/sys/kernel/random/boot_id");
  std::getline(boot, self.boot_id);
  if (self.boot_id.size() > kMaxBootIdBytes) self.boot_id.clear();
  struct stat ns {};
  if (::stat("/proc/self/ns/pid", &ns) == 0) self.pid_ns = ns.st_ino;
  self.pid = ::getpid();
  char state = 0;
  if (!ReadStat(self.pid, &state, &self.start_time)) self.start_time = 0;
  return self;
}

bool ProcessIdentity::SameMachineAs(const ProcessIdentity& other) const {
  return !boot_id.empty() && boot_id == other.boot_id && pid_ns != 0 && pid_ns == other.pid_ns &&
         start_time != 0 && other.start_time != 0;
}

void EncodeIdentity(const ProcessIdentity& identity, std::string& out) {
  out.push_back(static_cast<char>(identity.boot_id.size()));
  out += identity.boot_id;
  PutU64(out, identity.pid_ns);
  PutU64(out, static_cast<uint64_t>(identity.pid));
  PutU64(out, identity.start_time);
}

absl::StatusOr<ProcessIdentity> DecodeIdentity(std::string_view& in) {
  ProcessIdentity identity;
  if (in.empty()) return absl::DataLossError("process identity: empty");
  const size_t boot_bytes = static_cast<unsigned char>(in[0]);
  in.remove_prefix(1);
  if (boot_bytes > kMaxBootIdBytes || in.size() < boot_bytes) {
    return absl::DataLossError("process identity: bad boot id length");
  }
  identity.boot_id = std::string(in.substr(0, boot_bytes));
  in.remove_prefix(boot_bytes);
  uint64_t pid = 0;
  if (!GetU64(in, &identity.pid_ns) || !GetU64(in, &pid) || !GetU64(in, &identity.start_time)) {
    return absl::DataLossError("process identity: truncated");
  }
  if (pid == 0 || pid > (uint64_t{1} << 32))
    return absl::DataLossError("process identity: bad pid");
  identity.pid = static_cast<int64_t>(pid);
  return identity;
}

bool ProcessGone(const ProcessIdentity& peer) {
  if (::kill(static_cast<pid_t>(peer.pid), 0) != 0 && errno == ESRCH) return true;
  char state = 0;
  uint64_t start_time = 0;
  if (!ReadStat(peer.pid, &state, &start_time)) return true;  // raced with its exit
  return state == 'Z' || state == 'X' || start_time != peer.start_time;
}

}  // namespace sparkstack
