// The node agent's log for `sparkstack logs`: the last lines of stdout and stderr, its own and its
// children's.
#include "runtime/control/output_tail.h"

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sparkstack::control {
namespace {

using ::testing::ElementsAre;

TEST(LineTailTest, KeepsTheLastCompleteLinesAndCountsTheDropped) {
  LineTail tail(3);
  tail.Append("one\ntwo\nthr");
  EXPECT_THAT(tail.Last(0).first, ElementsAre("one", "two"));  // "thr" is not a line yet
  tail.Append("ee\nfour\nfive\n");
  auto [lines, dropped] = tail.Last(0);
  EXPECT_THAT(lines, ElementsAre("three", "four", "five"));
  EXPECT_EQ(dropped, 2u);
  EXPECT_THAT(tail.Last(2).first, ElementsAre("four", "five"));
  EXPECT_THAT(tail.Last(10).first, ElementsAre("three", "four", "five"));
}

TEST(LineTailTest, CutsAnEndlessLine) {
  LineTail tail(2);
  tail.Append(std::string(3 * LineTail::kMaxLineBytes, 'x') + "\n");
  ASSERT_EQ(tail.Last(0).first.size(), 1u);
  EXPECT_EQ(tail.Last(0).first[0].size(), LineTail::kMaxLineBytes);
}

TEST(OutputTailTest, KeepsWhatThisProcessAndItsChildrenWrite) {
  absl::StatusOr<std::unique_ptr<OutputTail>> tail = OutputTail::Start(100);
  ASSERT_TRUE(tail.ok()) << tail.status();
  const char own[] = "from the agent\n";
  ASSERT_EQ(write(STDERR_FILENO, own, strlen(own)), static_cast<ssize_t>(strlen(own)));
  const char logged[] = "a log line\n";  // spdlog's default logger writes to stdout
  ASSERT_EQ(write(STDOUT_FILENO, logged, strlen(logged)), static_cast<ssize_t>(strlen(logged)));
  const pid_t child = fork();
  if (child == 0) {  // a worker rank inherits descriptor 2
    const char text[] = "from a worker rank\n";
    _exit(write(STDERR_FILENO, text, strlen(text)) > 0 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while ((*tail)->tail().Last(0).first.size() < 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_THAT((*tail)->tail().Last(0).first,
              ElementsAre("from the agent", "a log line", "from a worker rank"));
}

}  // namespace
}  // namespace sparkstack::control
