// Early-return helpers for absl::Status and absl::StatusOr.
#ifndef SPARKSTACK_RUNTIME_CORE_STATUS_MACROS_H_
#define SPARKSTACK_RUNTIME_CORE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Evaluates `expr` (an absl::Status) and returns it from the caller when it is not OK.
#define SPARKSTACK_RETURN_IF_ERROR(expr)            \
  do {                                              \
    ::absl::Status _sparkstack_status = (expr);     \
    if (!_sparkstack_status.ok()) return _sparkstack_status; \
  } while (0)

#define SPARKSTACK_STATUS_CONCAT_INNER(a, b) a##b
#define SPARKSTACK_STATUS_CONCAT(a, b) SPARKSTACK_STATUS_CONCAT_INNER(a, b)

// `SPARKSTACK_ASSIGN_OR_RETURN(auto x, MakeX());` — evaluates a StatusOr, returns its status on
// error, otherwise moves the value into `lhs`.
#define SPARKSTACK_ASSIGN_OR_RETURN(lhs, expr) \
  SPARKSTACK_ASSIGN_OR_RETURN_IMPL(SPARKSTACK_STATUS_CONCAT(_sparkstack_or_, __LINE__), lhs, expr)

#define SPARKSTACK_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                     \
  if (!tmp.ok()) return std::move(tmp).status();         \
  lhs = std::move(tmp).value()

#endif  // SPARKSTACK_RUNTIME_CORE_STATUS_MACROS_H_
