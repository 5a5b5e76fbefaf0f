#!/usr/bin/env bash
# Two ranks in two network namespaces joined by a veth pair, so the collective traffic really
# crosses an interface (UCX forced onto TCP over the veth; no shared memory). Checks the
# collectives' results and that the veth carried the bytes.
# Usage: netns_test.sh /path/to/collective_rank
# Exit 0 = pass, 77 = skipped (cannot create namespaces here: not root, no CAP_SYS_ADMIN, no ip).
set -u
RANK_BIN=${1:?usage: netns_test.sh /path/to/collective_rank}
SKIP=77
skip() { echo "SKIP: $*"; exit $SKIP; }

command -v ip >/dev/null || skip "the 'ip' tool (iproute2) is not installed"
[ "$(id -u)" = 0 ] || skip "network namespaces need root"

tag="ss$$"
ns0="${tag}a"; ns1="${tag}b"; v0="${tag}v0"; v1="${tag}v1"
addr0=10.231.$(( $$ % 250 )).1; addr1=10.231.$(( $$ % 250 )).2
cleanup() {
  ip netns del "$ns0" 2>/dev/null
  ip netns del "$ns1" 2>/dev/null
  [ -n "${pid0:-}" ] && kill "$pid0" 2>/dev/null
}
trap cleanup EXIT

ip netns add "$ns0" 2>/dev/null || skip "cannot create a network namespace (needs CAP_SYS_ADMIN)"
ip netns add "$ns1" || skip "cannot create a second network namespace"
ip link add "$v0" type veth peer name "$v1" 2>/dev/null || skip "cannot create a veth pair"
ip link set "$v0" netns "$ns0" && ip link set "$v1" netns "$ns1" || skip "cannot move veth ends"
ip -n "$ns0" addr add "$addr0/24" dev "$v0"
ip -n "$ns1" addr add "$addr1/24" dev "$v1"
for ns in "$ns0" "$ns1"; do ip -n "$ns" link set lo up; done
ip -n "$ns0" link set "$v0" up
ip -n "$ns1" link set "$v1" up

tx_bytes() { ip netns exec "$1" cat "/sys/class/net/$2/statistics/tx_bytes"; }
before=$(tx_bytes "$ns0" "$v0")

port=$(( 20000 + $$ % 20000 ))
# UCX on TCP only, bound to the veth, so nothing can take a shared-memory shortcut.
export UCX_TLS=tcp UCX_WARN_UNUSED_ENV_VARS=n
UCX_NET_DEVICES="$v0" timeout 60 ip netns exec "$ns0" "$RANK_BIN" 0 2 "$addr0" "$port" &
pid0=$!
UCX_NET_DEVICES="$v1" timeout 60 ip netns exec "$ns1" "$RANK_BIN" 1 2 "$addr0" "$port"
rc1=$?
wait "$pid0"; rc0=$?; pid0=
after=$(tx_bytes "$ns0" "$v0")
crossed=$(( after - before ))
echo "rank exit codes: $rc0 $rc1; bytes sent by rank 0 over $v0: $crossed"
if [ "$rc0" != 0 ] || [ "$rc1" != 0 ]; then
  echo "FAIL: a rank failed"
  exit 1
fi
# Rank 0 alone sends > 4 MiB of f32 all-reduce data; anything less means it took another path.
if [ "$crossed" -lt 4000000 ]; then
  echo "FAIL: only $crossed bytes crossed the veth"
  exit 1
fi
echo "PASS"
