// 256 concurrent streaming requests of mixed lengths (prompts of 1-32 random token ids, 1-16
// output tokens, half greedy and half sampled with their own seed) all complete with exact SSE
// framing, and each equals the same request run alone on the server afterwards and offline
// `generate --json` (the engine's outputs do not depend on their batch-mates).
// Usage: node concurrency_test.mjs SPARKSTACK_BINARY NODE_MODULES_DIR
import fs from 'node:fs';
import {generatePromptsFile, makeTinyModel, startServer, Tally, waitForMetrics,
        workDir} from './serving_lib.mjs';
import {streamCompletion} from './sse_client.mjs';

const [bin, nodeModules] = process.argv.slice(2);
const t = new Tally();
const work = workDir('concurrency');
const model = makeTinyModel(bin, nodeModules, work);

let state = 12345;  // a fixed LCG: the same load every run
const rand = (n) => { state = (state * 1103515245 + 12345) % 2147483648; return state % n; };
const kRequests = 256;
const lines = [];
for (let i = 0; i < kRequests; ++i) {
  const ids = Array.from({length: 1 + rand(32)}, () => rand(151643));
  const sampled = i % 2 === 1;
  lines.push({prompt_ids: ids, max_tokens: 1 + rand(16), ignore_eos: true,
              temperature: sampled ? 0.8 : 0, top_p: sampled ? 0.9 : 1, seed: 1000 + i});
}
const ref = generatePromptsFile(bin, model, work, lines);
const body = (l) => ({prompt: l.prompt_ids, max_tokens: l.max_tokens, ignore_eos: true,
                      temperature: l.temperature, top_p: l.top_p, seed: l.seed});

const server = await startServer(bin, model, ['--max-num-seqs', '256']);
try {
  const started = Date.now();
  const results = await Promise.all(lines.map((l) => streamCompletion(server.url, body(l))));
  const seconds = (Date.now() - started) / 1000;
  console.log(`${kRequests} concurrent streams in ${seconds.toFixed(2)} s`);
  t.equal('every stream: 200, framed, finish_reason length',
          results.filter((r) => r.status === 200 && r.framed && r.finish === 'length').length,
          kRequests);
  const mismatches = results.map((r, i) => (r.text === ref[i].text ? -1 : i)).filter((i) => i >= 0);
  t.equal('every stream = offline generate', mismatches, []);
  // The same requests one at a time.
  const alone = [];
  for (let i = 0; i < kRequests; i += 8) alone.push([i, await streamCompletion(server.url, body(lines[i]))]);
  t.equal('every 8th request alone = its concurrent output',
          alone.filter(([i, r]) => r.text !== results[i].text).map(([i]) => i), []);
  const m = await waitForMetrics(server.url, (x) => x.sparkstack_num_requests_running === 0 &&
                                 x.sparkstack_kv_blocks_used === 0);
  t.equal('afterwards: nothing running, no KV blocks held, all finished',
          [m.sparkstack_num_requests_running, m.sparkstack_kv_blocks_used,
           m['sparkstack_requests_total{outcome="finished"}']],
          [0, 0, kRequests + alone.length]);
} catch (e) {
  t.check(`unexpected error: ${e.stack}`, false);
}
t.equal('serve exits 0 on SIGTERM', await server.stop(), 0);
t.close(() => fs.rmSync(work, {recursive: true, force: true}));
