#!/usr/bin/env bash
# All-reduce (f32, sum) on loopback: sparkstack's HostCommunicator (UCX) against Open MPI's
# MPI_Allreduce, same sizes and iteration counts, for 2 and 4 ranks, in one run.
# Usage: run_allreduce_bench.sh BUILD_DIR [RANKS...]   (default ranks: 2 4)
# Each implementation runs REPEATS times (default 3), alternating, and the table shows the
# median per size, which damps the noise of a shared machine. ratio = sparkstack latency /
# Open MPI latency (< 1: sparkstack faster). SPARKSTACK_BENCH_MAX_BYTES=65536 limits the sizes
# for a quick run. Busy-polling ranks share the cores with everything else: numbers from a
# loaded machine are only comparable within the same run.
set -eu
build=${1:?usage: run_allreduce_bench.sh BUILD_DIR [RANKS...]}
shift
ranks_list=${*:-2 4}
repeats=${REPEATS:-3}
export SPARKSTACK_BENCH_MAX_BYTES=${SPARKSTACK_BENCH_MAX_BYTES:-67108864}
ours="$build/tests/bench/parallel/allreduce_bench"
theirs="$build/tests/bench/parallel/mpi_allreduce_bench"
[ -x "$theirs" ] || { echo "missing $theirs (Open MPI not found at configure time?)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Median of column $2 ($3) per size ($1) over the repeated runs.
median() {
  sort -n -k1,1 -k2,2 "$1" | awk -v col="$2" '
    { size[NR] = $1; val[NR] = $col }
    END {
      n = 0
      for (i = 1; i <= NR; i++) {
        if (i > 1 && size[i] != size[i - 1]) { emit(); n = 0 }
        v[++n] = val[i]; s = size[i]
      }
      if (NR) emit()
    }
    function emit(   j, k, t) {
      for (j = 2; j <= n; j++) { t = v[j]; k = j - 1; while (k > 0 && v[k] > t) { v[k + 1] = v[k]; k-- } v[k + 1] = t }
      print s, v[int((n + 1) / 2)]
    }'
}

for n in $ranks_list; do
  : > "$tmp/ours.$n"; : > "$tmp/mpi.$n"
  for r in $(seq "$repeats"); do
    "$ours" "$n" | awk '{print $3, $4, $5}' >> "$tmp/ours.$n"
    mpirun -x SPARKSTACK_BENCH_MAX_BYTES --allow-run-as-root --oversubscribe --bind-to none -np "$n" \
      "$theirs" 2> "$tmp/mpi.err" | awk '{print $3, $4, $5}' >> "$tmp/mpi.$n" || {
        cat "$tmp/mpi.err" >&2; exit 1; }
  done
  echo
  echo "all-reduce f32, $n ranks, loopback ($(nproc) cores), median of $repeats runs"
  printf "%10s | %12s %12s %7s | %12s %12s\n" size "ours us" "openmpi us" ratio "ours GB/s" "openmpi GB/s"
  join <(median "$tmp/ours.$n" 2) <(median "$tmp/mpi.$n" 2) |
    awk '{ size = $1; unit = "B";
           if (size >= 1048576) { size = size / 1048576; unit = "MiB" } else if (size >= 1024) { size = size / 1024; unit = "KiB" }
           bus = 2.0 * ('"$n"' - 1) / '"$n"' * $1 / 1e3;
           printf "%6d %-3s | %12.1f %12.1f %7.2f | %12.3f %12.3f\n", size, unit, $2, $3, $2 / $3, bus / $2, bus / $3 }'
done
