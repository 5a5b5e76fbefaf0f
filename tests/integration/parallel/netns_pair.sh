#!/usr/bin/env bash
# Runs two commands in two fresh network namespaces joined by a veth pair, so that traffic
# between them really crosses an interface. Reusable by any two-rank test (collectives here; a
# `sparkstack generate` + `sparkstack worker` pair elsewhere).
#
# Usage: netns_pair.sh 'RANK0 COMMAND' 'RANK1 COMMAND'
#   The commands run under bash in their namespace with these variables exported:
#     NETNS_ADDR0  rank 0's address on the veth (rendezvous host)   NETNS_ADDR1  rank 1's
#     NETNS_PORT   a port for rank 0 to listen on                   NETNS_DEV    this side's veth
#   UCX is restricted to TCP over the veth (UCX_TLS=tcp, UCX_NET_DEVICES), so no shared-memory
#   shortcut can bypass the interface.
# Optional: NETNS_MIN_BYTES=N fails unless rank 0 sent at least N bytes over its veth.
# Exit: 0 both commands succeeded; 1 a command failed (or too few bytes crossed); 77 skipped
# because namespaces cannot be created here (prints "SKIP: why").
set -u
cmd0=${1:?usage: netns_pair.sh 'RANK0 COMMAND' 'RANK1 COMMAND'}
cmd1=${2:?usage: netns_pair.sh 'RANK0 COMMAND' 'RANK1 COMMAND'}
SKIP=77
skip() { echo "SKIP: $*"; exit $SKIP; }

command -v ip >/dev/null || skip "the 'ip' tool (iproute2) is not installed"
[ "$(id -u)" = 0 ] || skip "network namespaces need root"

tag="ss$$"
ns0="${tag}a"; ns1="${tag}b"; v0="${tag}v0"; v1="${tag}v1"
subnet=10.231.$(( $$ % 250 ))
pid0=
cleanup() {
  [ -n "$pid0" ] && kill "$pid0" 2>/dev/null
  ip netns del "$ns0" 2>/dev/null
  ip netns del "$ns1" 2>/dev/null
}
trap cleanup EXIT

ip netns add "$ns0" 2>/dev/null || skip "cannot create a network namespace (needs CAP_SYS_ADMIN)"
ip netns add "$ns1" || skip "cannot create a second network namespace"
ip link add "$v0" type veth peer name "$v1" 2>/dev/null || skip "cannot create a veth pair"
{ ip link set "$v0" netns "$ns0" && ip link set "$v1" netns "$ns1"; } || skip "cannot move veth ends"
ip -n "$ns0" addr add "$subnet.1/24" dev "$v0"
ip -n "$ns1" addr add "$subnet.2/24" dev "$v1"
for ns in "$ns0" "$ns1"; do ip -n "$ns" link set lo up; done
ip -n "$ns0" link set "$v0" up
ip -n "$ns1" link set "$v1" up

export NETNS_ADDR0="$subnet.1" NETNS_ADDR1="$subnet.2" NETNS_PORT=$(( 20000 + $$ % 20000 ))
export UCX_TLS=tcp UCX_WARN_UNUSED_ENV_VARS=n
tx_bytes() { ip netns exec "$ns0" cat "/sys/class/net/$v0/statistics/tx_bytes"; }
before=$(tx_bytes)

NETNS_DEV="$v0" UCX_NET_DEVICES="$v0" ip netns exec "$ns0" bash -c "$cmd0" &
pid0=$!
NETNS_DEV="$v1" UCX_NET_DEVICES="$v1" ip netns exec "$ns1" bash -c "$cmd1"
rc1=$?
wait "$pid0"; rc0=$?; pid0=
crossed=$(( $(tx_bytes) - before ))
echo "netns_pair: exit codes rank0=$rc0 rank1=$rc1; rank 0 sent $crossed bytes over $v0"
if [ "$rc0" != 0 ] || [ "$rc1" != 0 ]; then
  echo "FAIL: a rank failed"
  exit 1
fi
if [ "$crossed" -lt "${NETNS_MIN_BYTES:-0}" ]; then
  echo "FAIL: only $crossed bytes crossed the veth (expected at least $NETNS_MIN_BYTES)"
  exit 1
fi
exit 0
