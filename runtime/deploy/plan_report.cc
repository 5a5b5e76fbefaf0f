#include "runtime/deploy/plan_report.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace sparkstack::deploy {
namespace {

std::string GiB(double bytes) { return absl::StrFormat("%.1f GiB", bytes / kGiB); }

std::string KiB(double bytes) { return absl::StrFormat("%.1f KiB", bytes / 1024.0); }

std::string Rate(double tokens_per_s) {
  return tokens_per_s >= 100 ? absl::StrFormat("%.0f", tokens_per_s)
                             : absl::StrFormat("%.1f", tokens_per_s);
}

std::string LayoutName(const LayoutPlan& l) {
  return absl::StrFormat("tp=%d pp=%d ep=%d", l.tp, l.pp, l.ep);
}

}  // namespace

std::string FormatPlanTable(const Plan& plan) {
  const PlanOptions& o = plan.options;
  const PerfConstants& p = o.perf;
  std::string out = absl::StrCat("model: ", plan.model, " (", plan.architecture, ")\n");
  absl::StrAppend(&out, "weights: ", GiB(plan.total_weight_bytes), " resident (checkpoint ",
                  GiB(plan.checkpoint_bytes));
  if (plan.fp8_converted) absl::StrAppend(&out, "; FP8 weights become NVFP4 at load");
  if (plan.skipped_bytes > 0) {
    absl::StrAppend(&out, "; multi-token-prediction layers, ", GiB(plan.skipped_bytes),
                    ", not loaded");
  }
  absl::StrAppend(&out, ")", plan.header_only ? " [read from header-only files]" : "", "\n");
  absl::StrAppend(&out, "sequences of ", plan.max_context, " tokens, KV cache ",
                  std::string(DTypeName(o.kv_dtype)), "; step limits ", o.max_num_batched_tokens,
                  " tokens, ", o.max_num_seqs, " sequences; decode predicted at ", o.perf_context,
                  " tokens of context per sequence, prefill in chunks of ",
                  o.max_num_batched_tokens, " tokens\n");
  absl::StrAppend(
      &out, "performance model (DESIGN.md): read bandwidth ",
      absl::StrFormat("%.0f GB/s", p.read_bandwidth / 1e9), "; all-reduce ",
      absl::StrFormat("%.0f us at <= %.0f KiB, %.0f us at %.0f KiB", p.allreduce_small_s * 1e6,
                      p.allreduce_small_bytes / 1024, p.allreduce_large_s * 1e6,
                      p.allreduce_large_bytes / 1024),
      absl::StrFormat(", above that + 2(n-1)/n x bytes / %.0f GB/s", p.bus_bandwidth / 1e9),
      "; host overhead ", absl::StrFormat("%.2f ms", p.host_overhead_s * 1e3),
      " per step; tensor throughput (assumed) ",
      absl::StrFormat("FP4 %.0f, BF16 %.0f TFLOP/s", p.fp4_flops / 1e12, p.bf16_flops / 1e12),
      "; allocatable ", GiB(p.allocatable_bytes), " per node, runtime reserve ",
      GiB(p.runtime_reserve_bytes), "\n\n");

  const std::string seqs_header = absl::StrCat("seqs@", plan.max_context);
  absl::StrAppend(&out, absl::StrFormat("%-16s %-4s %12s %14s %10s %12s %12s %12s %12s\n", "layout",
                                        "fits", "weights/node", "KV/token/node", "workspace",
                                        seqs_header, "decode b=1", "decode b=32", "prefill"));
  for (const LayoutPlan& l : plan.layouts) {
    uint64_t weights = 0, kv = 0, workspace = 0;
    for (const NodePlan& n : l.per_node) {
      weights = std::max(weights, n.weight_bytes);
      kv = std::max(kv, n.kv_bytes_per_token);
      workspace = std::max(workspace, n.workspace_bytes);
    }
    absl::StrAppend(
        &out, absl::StrFormat("%-16s %-4s %12s %14s %10s %12d %12s %12s %12s\n", LayoutName(l),
                              l.fits ? "yes" : "no", GiB(weights), KiB(kv), GiB(workspace),
                              l.max_sequences, Rate(l.decode_tokens_per_s_batch1),
                              Rate(l.decode_tokens_per_s_batch32), Rate(l.prefill_tokens_per_s)));
  }
  absl::StrAppend(&out,
                  "(decode and prefill in tokens/s; weights/node, KV/token/node and "
                  "workspace are the largest node's)\n\nper node:\n");
  for (const LayoutPlan& l : plan.layouts) {
    absl::StrAppend(&out, LayoutName(l), l.fits ? "" : absl::StrCat(": does not fit, ", l.reason),
                    "\n");
    for (const NodePlan& n : l.per_node) {
      absl::StrAppend(&out, absl::StrFormat("  node %d: stage %d, layers %d-%d", n.node, n.stage,
                                            n.layer_begin, n.layer_end - 1));
      if (n.expert_end > n.expert_begin) {
        absl::StrAppend(&out, absl::StrFormat(", experts %d-%d", n.expert_begin, n.expert_end - 1));
      }
      absl::StrAppend(&out, "; weights ", GiB(n.weight_bytes), ", workspace ",
                      GiB(n.workspace_bytes), ", reserve ", GiB(n.reserve_bytes), ", KV ",
                      GiB(static_cast<double>(std::max<int64_t>(n.kv_budget_bytes, 0))), " (",
                      KiB(n.kv_bytes_per_token), "/token, ", n.max_sequences, " sequences)\n");
    }
  }
  return out;
}

nlohmann::json PlanToJson(const Plan& plan) {
  nlohmann::json layouts = nlohmann::json::array();
  for (const LayoutPlan& l : plan.layouts) {
    nlohmann::json nodes = nlohmann::json::array();
    for (const NodePlan& n : l.per_node) {
      nodes.push_back({{"node", n.node},
                       {"stage", n.stage},
                       {"tp_rank", n.tp_rank},
                       {"layers", {n.layer_begin, n.layer_end}},
                       {"experts", {n.expert_begin, n.expert_end}},
                       {"weight_bytes", n.weight_bytes},
                       {"kv_bytes_per_token", n.kv_bytes_per_token},
                       {"workspace_bytes", n.workspace_bytes},
                       {"reserve_bytes", n.reserve_bytes},
                       {"kv_budget_bytes", n.kv_budget_bytes},
                       {"max_sequences", n.max_sequences}});
    }
    layouts.push_back(
        {{"tp", l.tp},
         {"pp", l.pp},
         {"ep", l.ep},
         {"nodes", l.nodes},
         {"fits", l.fits},
         {"per_node", std::move(nodes)},
         {"max_sequences", l.max_sequences},
         {"decode_tokens_per_s",
          {{"batch1", l.decode_tokens_per_s_batch1}, {"batch32", l.decode_tokens_per_s_batch32}}},
         {"prefill_tokens_per_s", l.prefill_tokens_per_s}});
  }
  return {{"model", plan.model},
          {"total_weight_bytes", plan.total_weight_bytes},
          {"layouts", std::move(layouts)}};
}

}  // namespace sparkstack::deploy
