#!/usr/bin/env node
// CPU throughput of sparkstack against llama.cpp on the same f32 weights, in the same run.
//
// A Llama-shaped f32 model (hidden 1024, 12 layers, 16 query / 4 kv heads of 64, MLP 2816, vocab
// 8192: about 600 MB) is written by `sparkstack make-tiny-model` and converted to GGUF (all
// tensors F32) by tests/conformance/llamacpp/hf_to_gguf.mjs. Both engines use the same thread
// count, f32 KV caches and greedy decoding, and run in turns (llama.cpp, then sparkstack, each
// round) so a busy machine slows both alike. Figures, each the median over the rounds:
//   decode 1      tokens/s of one sequence decoding (1 / median step time)
//   decode N      aggregate tokens/s of N sequences decoding together (N / median step time),
//                 for each N of --sequences other than 1 (default 16; the points: 8,32)
//   prefill 512   tokens/s of one 512-token prompt (512 / its prefill time)
// The best round of each side is printed too (on a shared machine, the least disturbed one).
// sparkstack is driven through `sparkstack bench --json` (the real engine: scheduler, batch
// building, sampling): decode steps from the inter-token latency median, prefill from the time to
// first token. llama.cpp is node-llama-cpp 3.22.1's prebuilt CPU binary (tests/node_modules);
// its sequences of one context are batched into one llama_decode per step by node-llama-cpp.
//
// Usage: node tests/bench/cpu/llamacpp_bench.mjs --sparkstack build/launcher/sparkstack
//          [--threads 2] [--rounds 3] [--model-dir /tmp/sparkstack_bench_f32]
//          [--node-modules tests/node_modules] [--decode-tokens 64] [--sequences 1,16] [--json]
// It is not a ctest test (it takes minutes); docs/perf.md ("CPU backend") has the numbers.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadNodeLlamaCpp } from '../../conformance/llamacpp/run_llamacpp.mjs';

const here = path.dirname(new URL(import.meta.url).pathname);

const kModel = {
  arch: 'llama', hidden: 1024, intermediate: 2816, layers: 12, heads: 16, kvHeads: 4,
  headDim: 64, vocab: 8192,
};
const kPromptLen = 16;      // decode runs start from a 16-token prompt
const kPrefillLen = 512;

function parseArgs(argv) {
  const out = {
    threads: 2, rounds: 3, modelDir: '/tmp/sparkstack_bench_f32', decodeTokens: 64, json: false,
    sequences: [1, 16],
  };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--sparkstack') out.sparkstack = next();
    else if (a === '--threads') out.threads = Number(next());
    else if (a === '--rounds') out.rounds = Number(next());
    else if (a === '--model-dir') out.modelDir = next();
    else if (a === '--node-modules') out.nodeModules = next();
    else if (a === '--decode-tokens') out.decodeTokens = Number(next());
    else if (a === '--sequences') {
      out.sequences = next().split(',').map((v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1) throw new Error(`--sequences: ${JSON.stringify(v)} is not a count`);
        return n;
      });
    } else if (a === '--json') out.json = true;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!out.sparkstack) throw new Error('--sparkstack PATH_TO_BINARY is required');
  return out;
}

function median(values) {
  const v = [...values].sort((a, b) => a - b);
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

// Writes the model and its GGUF once (kept across runs of the benchmark).
function prepareModel(args) {
  const gguf = path.join(args.modelDir, 'model.gguf');
  if (!fs.existsSync(path.join(args.modelDir, 'config.json'))) {
    execFileSync(args.sparkstack, [
      'make-tiny-model', '--arch', kModel.arch, '--dtype', 'f32', '--out', args.modelDir,
      '--hidden', `${kModel.hidden}`, '--intermediate', `${kModel.intermediate}`,
      '--layers', `${kModel.layers}`, '--heads', `${kModel.heads}`,
      '--kv-heads', `${kModel.kvHeads}`, '--head-dim', `${kModel.headDim}`,
      '--vocab', `${kModel.vocab}`, '--seed', '1',
    ], { stdio: 'inherit' });
  }
  if (!fs.existsSync(gguf)) {
    execFileSync(process.execPath, [
      path.join(here, '../../conformance/llamacpp/hf_to_gguf.mjs'), args.modelDir, gguf,
    ], { stdio: 'inherit' });
  }
  return gguf;
}

function randomTokens(count, seed) {
  let state = seed >>> 0;
  const out = [];
  for (let i = 0; i < count; ++i) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out.push(state % kModel.vocab);
  }
  return out;
}

// ---- llama.cpp

async function llamaDecode(llama, model, args, sequences, round) {
  const perSeq = kPromptLen + args.decodeTokens + 8;
  const context = await model.createContext({
    contextSize: sequences * perSeq,
    sequences,
    batchSize: Math.max(512, sequences),
    threads: args.threads,
    flashAttention: false,
    experimentalKvCacheKeyType: 'F32',
    experimentalKvCacheValueType: 'F32',
  });
  const gen = { generateNext: { token: true, options: { temperature: 0 } } };
  const seqs = [];
  for (let s = 0; s < sequences; ++s) seqs.push(context.getSequence());
  // Prefill all prompts (batched together), then step every sequence once per step.
  let next = await Promise.all(seqs.map(async (seq, s) => {
    const prompt = randomTokens(kPromptLen, 1000 * round + s);
    const input = prompt.slice(0, -1);
    input.push([prompt[prompt.length - 1], gen]);
    const res = await seq.controlledEvaluate(input);
    return res[res.length - 1].next.token;
  }));
  const steps = [];
  for (let step = 0; step < args.decodeTokens; ++step) {
    const start = process.hrtime.bigint();
    next = await Promise.all(seqs.map(async (seq, s) => {
      const res = await seq.controlledEvaluate([[next[s], gen]]);
      return res[0].next.token;
    }));
    steps.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  await context.dispose();
  return sequences / median(steps);
}

async function llamaPrefill(llama, model, args, round) {
  const context = await model.createContext({
    contextSize: kPrefillLen + 16,
    sequences: 1,
    batchSize: kPrefillLen,
    threads: args.threads,
    flashAttention: false,
    experimentalKvCacheKeyType: 'F32',
    experimentalKvCacheValueType: 'F32',
  });
  const seq = context.getSequence();
  const prompt = randomTokens(kPrefillLen, 7000 + round);
  const start = process.hrtime.bigint();
  await seq.evaluateWithoutGeneratingNewTokens(prompt);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await context.dispose();
  return kPrefillLen / seconds;
}

// ---- sparkstack

function sparkstackBench(args, flags) {
  const out = execFileSync(args.sparkstack, [
    'bench', '--model', args.modelDir, '--threads', `${args.threads}`, '--json',
    '--max-num-batched-tokens', `${Math.max(kPrefillLen, 64)}`, ...flags,
  ], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return JSON.parse(out.trim().split('\n').pop());
}

function sparkstackDecode(args, sequences, round) {
  const r = sparkstackBench(args, [
    '--num-prompts', `${sequences}`, '--concurrency', `${sequences}`,
    '--input-len', `${kPromptLen}`, '--output-len', `${args.decodeTokens + 1}`,
    '--seed', `${round}`,
  ]);
  return sequences / (r.itl_ms.p50 / 1000);
}

function sparkstackPrefill(args, round) {
  const r = sparkstackBench(args, [
    '--num-prompts', '1', '--concurrency', '1', '--input-len', `${kPrefillLen}`,
    '--output-len', '1', '--seed', `${round}`,
  ]);
  return kPrefillLen / (r.ttft_ms.p50 / 1000);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const gguf = prepareModel(args);
  const nlc = await loadNodeLlamaCpp(args.nodeModules);
  const llama = await nlc.getLlama({
    gpu: false, build: 'never', usePrebuiltBinaries: true, skipDownload: true,
    progressLogs: false, logLevel: nlc.LlamaLogLevel.error, maxThreads: args.threads,
  });
  const model = await llama.loadModel({ modelPath: gguf, gpuLayers: 0 });
  const points = args.sequences.map((n) => ({
    name: `decode ${n} seq${n > 1 ? 's' : ''} (tok/s)`,
    llama: (r) => llamaDecode(llama, model, args, n, r),
    ours: (r) => sparkstackDecode(args, n, r),
  }));
  points.push({ name: `prefill ${kPrefillLen} (tok/s)`,
                llama: (r) => llamaPrefill(llama, model, args, r),
                ours: (r) => sparkstackPrefill(args, r) });
  const loadBefore = os.loadavg();
  // One warm-up of each side (page cache, llama.cpp's thread pool), not counted.
  await points[0].llama(99);
  points[0].ours(99);
  const results = points.map((p) => ({ name: p.name, llama: [], ours: [] }));
  for (let round = 0; round < args.rounds; ++round) {
    for (let i = 0; i < points.length; ++i) {
      results[i].llama.push(await points[i].llama(round));
      results[i].ours.push(points[i].ours(round));
    }
  }
  await model.dispose();
  await llama.dispose();
  // The machine may be shared: its load average says how disturbed the run was.
  const load = { cores: os.cpus().length, before: loadBefore, after: os.loadavg() };

  const rows = results.map((r) => ({
    point: r.name, sparkstack: median(r.ours), llamacpp: median(r.llama),
    ratio: median(r.ours) / median(r.llama),
    sparkstack_best: Math.max(...r.ours), llamacpp_best: Math.max(...r.llama),
    ratio_best: Math.max(...r.ours) / Math.max(...r.llama),
    sparkstack_runs: r.ours, llamacpp_runs: r.llama,
  }));
  if (args.json) {
    process.stdout.write(JSON.stringify({ threads: args.threads, rounds: args.rounds, load, rows }) + '\n');
    return;
  }
  const fmt = (l) => l.map((v) => v.toFixed(2)).join(' ');
  console.log(`${args.threads} threads, median of ${args.rounds} rounds, model ${args.modelDir}`);
  console.log(`machine: ${load.cores} cores, load average (1/5/15 min) ${fmt(load.before)} ` +
              `before, ${fmt(load.after)} after`);
  console.log(`${'point'.padEnd(24)} ${'sparkstack'.padStart(11)} ${'llama.cpp'.padStart(11)} ` +
              `${'ratio'.padStart(7)}   ${'best: ours'.padStart(10)} ${'llama'.padStart(7)} ` +
              `${'ratio'.padStart(7)}`);
  for (const r of rows) {
    console.log(`${r.point.padEnd(24)} ${r.sparkstack.toFixed(1).padStart(11)} ` +
                `${r.llamacpp.toFixed(1).padStart(11)} ${r.ratio.toFixed(2).padStart(6)}x   ` +
                `${r.sparkstack_best.toFixed(1).padStart(10)} ${r.llamacpp_best.toFixed(1).padStart(7)} ` +
                `${r.ratio_best.toFixed(2).padStart(6)}x`);
  }
}

main().catch((e) => {
  console.error(`llamacpp_bench: ${e.stack ?? e.message}`);
  process.exit(1);
});
