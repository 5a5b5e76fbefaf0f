#!/usr/bin/env bash
# All-reduce (f32, sum) on loopback: sparkstack's HostCommunicator (UCX) against Open MPI's
# MPI_Allreduce, same sizes and iteration counts, for 2 and 4 ranks, in one run.
# Usage: run_allreduce_bench.sh BUILD_DIR [RANKS...]   (default ranks: 2 4)
# Prints one table per rank count; ratio = sparkstack latency / Open MPI latency (< 1: faster).
# SPARKSTACK_BENCH_MAX_BYTES=65536 limits the sizes for a quick run. Results are only meaningful
# on an otherwise idle machine: busy-polling ranks share the cores with everything else.
set -eu
build=${1:?usage: run_allreduce_bench.sh BUILD_DIR [RANKS...]}
shift
ranks_list=${*:-2 4}
export SPARKSTACK_BENCH_MAX_BYTES=${SPARKSTACK_BENCH_MAX_BYTES:-67108864}
ours="$build/tests/bench/parallel/allreduce_bench"
theirs="$build/tests/bench/parallel/mpi_allreduce_bench"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for n in $ranks_list; do
  "$ours" "$n" > "$tmp/ours.$n"
  # Pinned to nothing and oversubscribed, like ours (the ranks may outnumber the cores).
  mpirun -x SPARKSTACK_BENCH_MAX_BYTES --allow-run-as-root --oversubscribe --bind-to none -np "$n" "$theirs" > "$tmp/mpi.$n" 2> "$tmp/mpi.err.$n" || {
    cat "$tmp/mpi.err.$n" >&2; exit 1; }
  echo
  echo "all-reduce f32, $n ranks, loopback ($(nproc) cores)"
  printf "%10s | %12s %12s %7s | %12s %12s\n" size "ours us" "openmpi us" ratio "ours GB/s" "openmpi GB/s"
  join -j 1 <(awk '{print $3, $4, $5}' "$tmp/ours.$n" | sort -n) \
            <(awk '{print $3, $4, $5}' "$tmp/mpi.$n" | sort -n) | sort -n |
    awk '{ size = $1; unit = "B";
           if (size >= 1048576) { size = size / 1048576; unit = "MiB" } else if (size >= 1024) { size = size / 1024; unit = "KiB" }
           printf "%6d %-3s | %12.1f %12.1f %7.2f | %12.3f %12.3f\n", size, unit, $2, $4, $2 / $4, $3, $5 }'
done
