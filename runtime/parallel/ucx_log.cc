#include "runtime/parallel/ucx_log.h"

#include <ucs/debug/log_def.h>

#include <cstdarg>
#include <cstdio>
#include <mutex>

#include "spdlog/spdlog.h"

namespace sparkstack {
namespace {

ucs_log_func_rc_t ForwardToSpdlog(const char* file, unsigned line, const char* function,
                                  ucs_log_level_t level,
                                  const ucs_log_component_config_t* component,
                                  const char* message, va_list args) {
  if (level > UCS_LOG_LEVEL_WARN) return UCS_LOG_FUNC_RC_STOP;  // info, debug, trace: dropped
  char text[1024];
  va_list copy;
  va_copy(copy, args);
  vsnprintf(text, sizeof(text), message, copy);
  va_end(copy);
  if (level == UCS_LOG_LEVEL_FATAL) {
    spdlog::error("UCX {}:{}: {}", file, line, text);
  } else {
    spdlog::debug("UCX {}:{}: {}", file, line, text);
  }
  return UCS_LOG_FUNC_RC_STOP;  // not the default handler: it prints to stdout
}

}  // namespace

void RouteUcxLogging() {
  static std::once_flag once;
  std::call_once(once, [] { ucs_log_push_handler(&ForwardToSpdlog); });
}

}  // namespace sparkstack
