#!/usr/bin/env bash
# Two ranks of collective_rank in two network namespaces joined by a veth pair (netns_pair.sh):
# the collectives' results are checked by the ranks, and the veth must have carried the data.
# Usage: netns_test.sh /path/to/collective_rank      Exit: 0 pass, 1 fail, 77 skipped.
set -u
rank_bin=${1:?usage: netns_test.sh /path/to/collective_rank}
here=$(cd "$(dirname "$0")" && pwd)
# Rank 0 alone sends > 4 MB of f32 all-reduce data; anything less means it took another path.
export NETNS_MIN_BYTES=4000000
timeout 90 "$here/netns_pair.sh" \
  "timeout 60 '$rank_bin' 0 2 \$NETNS_ADDR0 \$NETNS_PORT" \
  "timeout 60 '$rank_bin' 1 2 \$NETNS_ADDR0 \$NETNS_PORT"
rc=$?
[ "$rc" = 0 ] && echo PASS
exit $rc
