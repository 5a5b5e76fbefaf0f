#include "runtime/deploy/up_state.h"

#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace sparkstack::deploy {
namespace {

constexpr char kStateFile[] = "state.json";

uint64_t Fnv1a64(const std::string& text) {
  uint64_t hash = 1469598103934665603ull;
  for (unsigned char c : text) hash = (hash ^ c) * 1099511628211ull;
  return hash;
}

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::string(value) : fallback;
}

}  // namespace

std::string DefaultStateBase() {
  const std::string explicit_dir = EnvOr("SPARKSTACK_STATE_DIR", "");
  if (!explicit_dir.empty()) return explicit_dir;
  const std::string xdg = EnvOr("XDG_STATE_HOME", "");
  if (!xdg.empty()) return xdg + "/sparkstack";
  return EnvOr("HOME", "/root") + "/.local/state/sparkstack";
}

std::string StateDirFor(const std::string& cluster_file_absolute, const std::string& base) {
  const std::string name = std::filesystem::path(cluster_file_absolute).filename().string();
  return absl::StrFormat("%s/%s-%08x", base, name,
                         static_cast<uint32_t>(Fnv1a64(cluster_file_absolute)));
}

absl::Status WriteUpState(const std::string& dir, const UpState& state) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all,
                               std::filesystem::perm_options::replace, ec);
  const nlohmann::json json = {{"cluster_file", state.cluster_file},
                               {"pid", state.pid},
                               {"log_file", state.log_file},
                               {"api_host", state.api_host},
                               {"http_port", state.http_port},
                               {"grpc_port", state.grpc_port},
                               {"tp", state.tp},
                               {"pp", state.pp},
                               {"ep", state.ep},
                               {"started_unix", state.started_unix}};
  const std::string path = absl::StrCat(dir, "/", kStateFile);
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary);
    out << json.dump(2) << "\n";
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", temporary));
  }
  std::filesystem::rename(temporary, path, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot rename ", temporary, ": ", ec.message()));
  return absl::OkStatus();
}

absl::StatusOr<UpState> ReadUpState(const std::string& dir) {
  const std::string path = absl::StrCat(dir, "/", kStateFile);
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, " does not exist"));
  std::stringstream text;
  text << in.rdbuf();
  const nlohmann::json json = nlohmann::json::parse(text.str(), nullptr, false);
  if (!json.is_object()) return absl::InvalidArgumentError(absl::StrCat(path, ": not JSON"));
  UpState state;
  const auto field = [&](const char* name, auto& out) -> absl::Status {
    auto it = json.find(name);
    using T = std::decay_t<decltype(out)>;
    const bool ok = it != json.end() &&
                    (std::is_same_v<T, std::string> ? it->is_string() : it->is_number_integer());
    if (!ok) return absl::InvalidArgumentError(absl::StrCat(path, ": field ", name, " missing"));
    out = it->template get<T>();
    return absl::OkStatus();
  };
  for (absl::Status s : {field("cluster_file", state.cluster_file), field("pid", state.pid),
                         field("log_file", state.log_file), field("api_host", state.api_host),
                         field("http_port", state.http_port), field("grpc_port", state.grpc_port),
                         field("tp", state.tp), field("pp", state.pp), field("ep", state.ep),
                         field("started_unix", state.started_unix)}) {
    if (!s.ok()) return s;
  }
  return state;
}

void RemoveUpState(const std::string& dir) {
  std::error_code ec;
  std::filesystem::remove(absl::StrCat(dir, "/", kStateFile), ec);
}

absl::StatusOr<std::vector<std::string>> LastLinesOf(const std::string& path, size_t count) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(std::move(line));
  if (lines.size() > count) lines.erase(lines.begin(), lines.end() - static_cast<ptrdiff_t>(count));
  return lines;
}

bool IsServeProcess(int64_t pid) {
  if (pid <= 0 || kill(static_cast<pid_t>(pid), 0) != 0) return false;
  std::ifstream in(absl::StrCat("/proc/", pid, "/cmdline"));
  std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // NUL-separated arguments: the binary, then the subcommand.
  const size_t first = cmdline.find('\0');
  if (first == std::string::npos) return false;
  const size_t second = cmdline.find('\0', first + 1);
  const bool binary = cmdline.substr(0, first).find("sparkstack") != std::string::npos;
  return binary && cmdline.substr(first + 1, second - first - 1) == "serve";
}

}  // namespace sparkstack::deploy
