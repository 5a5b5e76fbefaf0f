#!/usr/bin/env bash
# The control plane across two network namespaces joined by a veth pair (netns_pair.sh): the head
# (control_cluster_check: coordinator + rank 0) in one, a `sparkstack node` agent in the other,
# restarted by a loop as systemd would. The data-plane probe's all-reduce must cross the veth (UCX
# over TCP), strangers must be refused, kill -9 of the agent must be named within 5 s, and the
# group must re-form once the agent is back; then the head's link is taken down (a pulled cable:
# no reset reaches anyone) and the heartbeats must notice, and the group re-form when it is back.
# Usage: netns_control_test.sh SPARKSTACK_BINARY CONTROL_CLUSTER_CHECK   Exit: 0 pass, 1 fail, 77 skip.
set -u
bin=${1:?usage: netns_control_test.sh SPARKSTACK_BINARY CONTROL_CLUSTER_CHECK}
check=${2:?usage: netns_control_test.sh SPARKSTACK_BINARY CONTROL_CLUSTER_CHECK}
here=$(cd "$(dirname "$0")" && pwd)
pair=$here/../parallel/netns_pair.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$work/token")

# Two probe all-reduces (1001 and 300007 f32) per formation, two formations: well over 1 MB.
export NETNS_MIN_BYTES=1000000
timeout 150 bash "$pair" \
  "timeout 120 '$check' --node \$NETNS_ADDR1:\$NETNS_PORT --token-file '$work/token' \
     --pid-file '$work/agent.pid' --done-file '$work/done' --unplug-dev \$NETNS_DEV" \
  "for attempt in 1 2 3 4 5; do
     '$bin' node --listen \$NETNS_ADDR1:\$NETNS_PORT --token-file '$work/token' &
     echo \$! > '$work/agent.pid'
     wait \$!
     [ -f '$work/done' ] && exit 0
     sleep 1
   done
   exit 1"
rc=$?
[ "$rc" = 0 ] && echo PASS
exit $rc
