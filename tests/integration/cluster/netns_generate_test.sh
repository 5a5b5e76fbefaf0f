#!/usr/bin/env bash
# Two-rank tensor-parallel generation across two network namespaces joined by a veth pair (rank 0:
# `sparkstack generate --tp 2 --rendezvous`, rank 1: `sparkstack worker`), so every activation
# all-reduce crosses a real interface; the tokens and logits must equal the single-process run.
# Exit 77 (ctest skip) where namespaces cannot be created.
set -euo pipefail
bin=${1:?usage: netns_generate_test.sh SPARKSTACK_BINARY}
here=$(cd "$(dirname "$0")" && pwd)
pair=$here/../parallel/netns_pair.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$bin" make-tiny-model --arch llama --out "$work/model" --hidden 64 --intermediate 96 --layers 2 \
  --heads 4 --kv-heads 2 --head-dim 16 --vocab 301 --seed 5 --dtype f32
args="--model $work/model --prompt-ids 3,1,4,1,5,9,2,6 --max-tokens 24 --ignore-eos --json"
"$bin" generate $args > "$work/single.json"

set +e
NETNS_MIN_BYTES=10000 bash "$pair" \
  "$bin generate $args --tp 2 --rendezvous \$NETNS_ADDR0:\$NETNS_PORT --timeout 30 > $work/pair.json" \
  "$bin worker --rank 1 --world 2 --rendezvous \$NETNS_ADDR0:\$NETNS_PORT --timeout 30"
status=$?
set -e
[ "$status" -eq 77 ] && exit 77
[ "$status" -eq 0 ] || { echo "FAIL: the namespace pair exited with $status"; exit 1; }

node -e '
const fs = require("fs");
const a = JSON.parse(fs.readFileSync(process.argv[1])), b = JSON.parse(fs.readFileSync(process.argv[2]));
const same = JSON.stringify(a.output_ids) === JSON.stringify(b.output_ids);
let scale = 0, worst = 0;
a.last_logits.forEach((v, i) => { scale = Math.max(scale, Math.abs(v)); worst = Math.max(worst, Math.abs(v - b.last_logits[i])); });
console.log(`tokens ${same ? "identical" : "DIFFER"}, max |logit diff| ${worst} (max |logit| ${scale})`);
process.exit(same && worst <= 1e-5 * scale ? 0 : 1);
' "$work/single.json" "$work/pair.json"
