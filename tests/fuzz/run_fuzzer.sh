#!/usr/bin/env bash
# Runs one libFuzzer target for ctest: replays its seed and regression corpora, then explores for
# SECONDS. New inputs go to a scratch copy of the corpus (never into the source tree); a crashing
# input is saved under WORK and its path printed.
# Usage: run_fuzzer.sh FUZZER CORPUS_DIR REGRESSIONS_DIR WORK_DIR SECONDS
set -euo pipefail
fuzzer=$1 corpus=$2 regressions=$3 work=$4 seconds=$5
rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
dirs=("$work/corpus" "$corpus")
if [[ -d "$regressions" ]]; then dirs+=("$regressions"); fi
# -timeout: one input taking over 10 s is a hang; -rss_limit_mb: unbounded allocation is a bug.
exec "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$work/artifacts/" "${dirs[@]}"
