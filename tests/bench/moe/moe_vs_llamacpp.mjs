#!/usr/bin/env node
// Whole-model MoE decode tokens/s: sparkstack's CPU backend against llama.cpp (node-llama-cpp's
// prebuilt CPU binary) on the same tiny-but-wide Qwen3-MoE model (F32 weights in both: the
// safetensors sparkstack reads and the GGUF our converter writes), same thread count, batch 1,
// in the same run. Goal (issue 11): sparkstack >= 1.1x llama.cpp.
//
// Usage: node moe_vs_llamacpp.mjs --sparkstack BIN --bench MOE_BENCH [--node-modules DIR]
//          [--threads 2] [--tokens 32] [--workdir DIR]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CONFORMANCE = path.resolve(HERE, '../../conformance/llamacpp');
const { convert } = await import(path.join(CONFORMANCE, 'hf_to_gguf.mjs'));
const { loadNodeLlamaCpp } = await import(path.join(CONFORMANCE, 'run_llamacpp.mjs'));

const o = { threads: 2, tokens: 32, nodeModules: path.resolve(HERE, '../../node_modules') };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const v = argv[i + 1];
  if (argv[i] === '--sparkstack') o.sparkstack = v;
  else if (argv[i] === '--bench') o.bench = v;
  else if (argv[i] === '--node-modules') o.nodeModules = v;
  else if (argv[i] === '--threads') o.threads = Number(v);
  else if (argv[i] === '--tokens') o.tokens = Number(v);
  else if (argv[i] === '--workdir') o.workdir = v;
  else throw new Error(`unknown argument ${argv[i]}`);
}
if (!o.sparkstack || !o.bench) throw new Error('--sparkstack BIN and --bench MOE_BENCH are required');

// Wide enough that decode reads weights, not overheads: 32 experts of width 384 in 3 layers
// (8 routed per token: 28 MB of experts per token in f32), hidden 768.
const overrides = {
  hidden_size: 768, num_hidden_layers: 3, num_attention_heads: 8, num_key_value_heads: 2, head_dim: 96,
  num_experts: 32, num_experts_per_tok: 8, moe_intermediate_size: 384, intermediate_size: 2048,
  vocab_size: 4001, norm_topk_prob: true,
};
const work = o.workdir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'moe-bench-'));
const dir = path.join(work, 'wide-qwen3moe');
execFileSync(o.sparkstack, ['make-tiny-model', '--arch', 'qwen3_moe', '--out', dir, '--seed', '5',
  '--dtype', 'f32', '--config-overrides', JSON.stringify(overrides)]);
const gguf = path.join(work, 'wide-qwen3moe.gguf');
convert(dir, gguf);

// llama.cpp: a 16-token prompt, then `tokens` greedy decode steps, timed after the first.
const nlc = await loadNodeLlamaCpp(o.nodeModules);
const llama = await nlc.getLlama({ gpu: false, build: 'never', usePrebuiltBinaries: true, skipDownload: true,
  progressLogs: false, logLevel: nlc.LlamaLogLevel.error, maxThreads: o.threads });
const model = await llama.loadModel({ modelPath: gguf, gpuLayers: 0 });
const context = await model.createContext({ contextSize: 128, batchSize: 32, sequences: 1, threads: o.threads,
  flashAttention: false });
const seq = context.getSequence();
const gen = { generateNext: { token: true, options: { temperature: 0 } } };
const prompt = Array.from({ length: 16 }, (_, i) => 5 + i * 11);
let res = await seq.controlledEvaluate([...prompt.slice(0, -1), [prompt[prompt.length - 1], gen]]);
let token = res[res.length - 1].next.token;
res = await seq.controlledEvaluate([[token, gen]]);  // warm-up step
token = res[0].next.token;
const start = process.hrtime.bigint();
for (let t = 0; t < o.tokens; ++t) {
  res = await seq.controlledEvaluate([[token, gen]]);
  token = res[0].next.token;
}
const llamaSeconds = Number(process.hrtime.bigint() - start) / 1e9;
await context.dispose(); await model.dispose(); await llama.dispose();
const llamaRate = o.tokens / llamaSeconds;

const out = execFileSync(o.bench, ['--model', dir, '--threads', String(o.threads), '--tokens', String(o.tokens)],
  { encoding: 'utf8' });
const ss = JSON.parse(out.trim().split('\n').pop());
console.log(`MoE decode, batch 1, ${o.threads} threads, ${o.tokens} tokens: Qwen3-MoE hidden 768, 3 layers, ` +
  `32 experts x 384, top 8, f32 weights`);
console.log(`  sparkstack  ${ss.decode_tokens_per_s.toFixed(2)} tokens/s (${ss.step_ms.toFixed(2)} ms/token)`);
console.log(`  llama.cpp   ${llamaRate.toFixed(2)} tokens/s (${(1e3 / llamaRate).toFixed(2)} ms/token)`);
console.log(`  ratio       ${(ss.decode_tokens_per_s / llamaRate).toFixed(2)}x (goal >= 1.1x)`);
if (!o.workdir) fs.rmSync(work, { recursive: true, force: true });
