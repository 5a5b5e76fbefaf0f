// The last lines a process (and every child that inherits its descriptors, such as the node
// agent's worker ranks) wrote to stdout or stderr, kept in memory for the agent's Logs RPC
// (`sparkstack logs NODE`); spdlog's default logger writes to stdout, messages to stderr.
// Start() puts one pipe in place of descriptors 1 and 2; a thread copies what arrives to the
// original stderr (the journal, under systemd) and keeps the last lines.
#ifndef SPARKSTACK_RUNTIME_CONTROL_OUTPUT_TAIL_H_
#define SPARKSTACK_RUNTIME_CONTROL_OUTPUT_TAIL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace sparkstack::control {

// Keeps the last `capacity` lines of a stream of bytes (lines end at '\n'; a line longer than
// kMaxLineBytes is cut there). Thread-safe.
class LineTail {
 public:
  static constexpr size_t kMaxLineBytes = 4096;
  explicit LineTail(size_t capacity);
  ~LineTail();

  void Append(std::string_view bytes);
  // The last `lines` complete lines, oldest first (0: all kept), and how many older lines were
  // dropped since the start.
  std::pair<std::vector<std::string>, uint64_t> Last(size_t lines) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

class OutputTail {
 public:
  // Redirects this process's descriptors 1 and 2 through the tail. Once per process.
  static absl::StatusOr<std::unique_ptr<OutputTail>> Start(size_t capacity);
  // Restores descriptors 1 and 2; the copying thread ends when the children's copies close.
  ~OutputTail();

  const LineTail& tail() const;

  struct Impl;

 private:
  explicit OutputTail(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace sparkstack::control

#endif  // SPARKSTACK_RUNTIME_CONTROL_OUTPUT_TAIL_H_
