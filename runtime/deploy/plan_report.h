// How `sparkstack plan` shows a Plan: a table for people, one JSON object for programs.
#ifndef SPARKSTACK_RUNTIME_DEPLOY_PLAN_REPORT_H_
#define SPARKSTACK_RUNTIME_DEPLOY_PLAN_REPORT_H_

#include <string>

#include "nlohmann/json.hpp"
#include "runtime/deploy/plan.h"

namespace sparkstack::deploy {

// The model line, the constants of the performance model, one row per layout (the largest
// per-node figures) and each node's share below it. Memory in GiB, speeds in tokens/s.
std::string FormatPlanTable(const Plan& plan);

// {"model", "total_weight_bytes", "layouts": [{"tp", "pp", "ep", "nodes", "fits",
//   "per_node": [{"node", "stage", "tp_rank", "layers": [begin, end], "experts": [begin, end],
//                 "weight_bytes", "kv_bytes_per_token", "workspace_bytes", "reserve_bytes",
//                 "kv_budget_bytes", "max_sequences"}],
//   "max_sequences", "decode_tokens_per_s": {"batch1", "batch32"}, "prefill_tokens_per_s"}]}
nlohmann::json PlanToJson(const Plan& plan);

}  // namespace sparkstack::deploy

#endif  // SPARKSTACK_RUNTIME_DEPLOY_PLAN_REPORT_H_
