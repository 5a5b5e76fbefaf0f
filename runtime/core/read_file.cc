#include "runtime/core/read_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/core/memory_budget.h"

namespace sparkstack {
namespace {

absl::Status OsError(absl::string_view what, const std::string& path, int err) {
  if (err == ENOENT || err == ENOTDIR) {
    return absl::NotFoundError(absl::StrCat(what, " ", path, " not found"));
  }
  const std::string message = absl::StrCat(what, " ", path, ": ", std::strerror(err));
  if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(message);
  return absl::InternalError(message);
}

const char* FileKind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "not a regular file";
}

absl::Status CheckMode(mode_t mode, absl::string_view what, const std::string& path) {
  if (S_ISREG(mode)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(what, " ", path, " is ", FileKind(mode), ", not a regular file"));
}

absl::Status TooLarge(absl::string_view what, const std::string& path, uint64_t size,
                      uint64_t max_bytes) {
  return absl::InvalidArgumentError(absl::StrCat(what, " ", path, " is ", HumanBytes(size),
                                                 ", more than the ", HumanBytes(max_bytes),
                                                 " such a file may be"));
}

}  // namespace

std::string HumanBytes(uint64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  const char* units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double value = static_cast<double>(bytes) / 1024;
  int unit = 0;
  while (value >= 1024 && unit < 5) {
    value /= 1024;
    ++unit;
  }
  return absl::StrFormat("%.1f %s", value, units[unit]);
}

absl::Status CheckRegularFile(const std::string& path, absl::string_view what) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return OsError(what, path, errno);
  return CheckMode(st.st_mode, what, path);
}

absl::StatusOr<std::string> ReadRegularFile(const std::string& path, uint64_t max_bytes,
                                            absl::string_view what, uint64_t memory_per_byte) {
  // stat first: opening some devices has side effects, and a FIFO must never be opened for a
  // blocking read.
  if (absl::Status status = CheckRegularFile(path, what); !status.ok()) return status;
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return OsError(what, path, errno);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0) return OsError(what, path, errno);
  if (absl::Status status = CheckMode(st.st_mode, what, path); !status.ok()) return status;
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size > max_bytes) return TooLarge(what, path, size, max_bytes);
  if (absl::Status status =
          CheckMemoryBudget(size * std::max<uint64_t>(memory_per_byte, 1),
                            absl::StrCat("reading ", what, " ", path, " (", HumanBytes(size), ")"));
      !status.ok()) {
    return status;
  }
  std::string text;
  text.resize(size);
  uint64_t done = 0;
  while (true) {
    if (done == text.size()) {
      // The file may have grown since fstat; keep reading, still within max_bytes.
      if (done >= max_bytes + 1) break;
      text.resize(std::min<uint64_t>(max_bytes + 1, done + 65536));
    }
    const ssize_t n = ::read(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return OsError(absl::StrCat("cannot read ", what), path, errno);
    }
    if (n == 0) break;
    done += static_cast<uint64_t>(n);
  }
  if (done > max_bytes) return TooLarge(what, path, done, max_bytes);
  text.resize(done);
  return text;
}

}  // namespace sparkstack
