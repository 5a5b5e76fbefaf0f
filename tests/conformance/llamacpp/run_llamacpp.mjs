#!/usr/bin/env node
// Runs a GGUF model with llama.cpp (node-llama-cpp's prebuilt CPU binary, nothing is built or
// downloaded) on given prompt token ids and prints one JSON line:
//   {"last_logits": [... vocab floats ...], "output_ids": [... greedy ids ...]}
// last_logits are the raw logits at the last prompt position; output_ids are greedy (argmax)
// continuations with no penalties. EOS does not stop generation: exactly --max-tokens are produced.
//
// Usage: node run_llamacpp.mjs --model M.gguf --prompt-ids 1,2,3 [--max-tokens 16]
//        [--node-modules DIR] [--step-logits]   (step-logits: also print logits of every step)
//
// Precision choices (so llama.cpp is a float32 reference, not an f16 one): KV cache in F32 and flash
// attention off (the CPU flash-attention path converts K/V to f16).

import path from 'node:path';
import fs from 'node:fs';
import { pathToFileURL } from 'node:url';

function parseArgs(argv) {
  const out = { maxTokens: 16, stepLogits: false };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--model') out.model = next();
    else if (a === '--prompt-ids') out.promptIds = next().split(',').filter((s) => s.length).map((s) => {
      const v = Number(s);
      if (!Number.isInteger(v) || v < 0) throw new Error(`--prompt-ids: ${JSON.stringify(s)} is not a token id`);
      return v;
    });
    else if (a === '--max-tokens') out.maxTokens = Number(next());
    else if (a === '--node-modules') out.nodeModules = next();
    else if (a === '--step-logits') out.stepLogits = true;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!out.model) throw new Error('--model is required');
  if (!out.promptIds || out.promptIds.length === 0) throw new Error('--prompt-ids is required (non-empty)');
  return out;
}

export async function loadNodeLlamaCpp(nodeModules) {
  const dir = nodeModules ?? path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../node_modules');
  const entry = path.join(dir, 'node-llama-cpp', 'dist', 'index.js');
  if (!fs.existsSync(entry)) {
    throw new Error(`node-llama-cpp not found at ${entry}. Install the test peers with: (cd tests && npm ci)`);
  }
  // Never try to download or compile llama.cpp: use the prebuilt CPU binary only.
  process.env.NODE_LLAMA_CPP_SKIP_DOWNLOAD = 'true';
  return import(pathToFileURL(entry).href);
}

function logitsMapToArray(map, nVocab) {
  const arr = new Array(nVocab).fill(null);
  for (const [tok, v] of map) arr[tok] = v;
  const missing = arr.findIndex((v) => v === null);
  if (missing >= 0) throw new Error(`llama.cpp returned no logit for token ${missing} (got ${map.size} of ${nVocab})`);
  return arr;
}

export async function runLlamaCpp({ model: modelPath, promptIds, maxTokens = 16, nodeModules, stepLogits = false }) {
  const nlc = await loadNodeLlamaCpp(nodeModules);
  const llama = await nlc.getLlama({
    gpu: false,
    build: 'never',
    usePrebuiltBinaries: true,
    skipDownload: true,
    progressLogs: false,
    logLevel: nlc.LlamaLogLevel.error,
    maxThreads: 2,
  });
  const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
  // Logits come back for the whole vocabulary (greedy sampling does not prune candidates).
  const vocab = model.fileInfo.metadata[model.fileInfo.metadata.general.architecture].vocab_size;
  const context = await model.createContext({
    contextSize: Math.max(64, promptIds.length + maxTokens + 8),
    batchSize: Math.max(32, promptIds.length),
    sequences: 1,
    threads: 2,
    flashAttention: false,
    experimentalKvCacheKeyType: 'F32',
    experimentalKvCacheValueType: 'F32',
  });
  const seq = context.getSequence();
  const gen = { generateNext: { token: true, logits: true, options: { temperature: 0 } } };
  const input = promptIds.slice(0, -1).map((t) => t);
  input.push([promptIds[promptIds.length - 1], gen]);
  let res = await seq.controlledEvaluate(input);
  let next = res[res.length - 1]?.next;
  if (!next || next.token == null || !next.logits) throw new Error('llama.cpp returned no next token/logits for the prompt');
  const lastLogits = logitsMapToArray(next.logits, vocab);
  const steps = stepLogits ? [lastLogits] : undefined;
  const outputIds = [];
  for (let i = 0; i < maxTokens; ++i) {
    const tok = next.token;
    outputIds.push(tok);
    if (i + 1 === maxTokens) break;
    res = await seq.controlledEvaluate([[tok, gen]]);
    next = res[0]?.next;
    if (!next || next.token == null) throw new Error(`llama.cpp returned no token at step ${i + 1}`);
    if (steps) steps.push(logitsMapToArray(next.logits, vocab));
  }
  await context.dispose();
  await model.dispose();
  await llama.dispose();
  const out = { last_logits: lastLogits, output_ids: outputIds };
  if (steps) out.step_logits = steps;
  return out;
}

if (process.argv[1] && path.basename(process.argv[1]) === 'run_llamacpp.mjs') {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`run_llamacpp: ${e.message}`);
    process.exit(2);
  }
  runLlamaCpp(args).then((out) => {
    process.stdout.write(JSON.stringify(out) + '\n');
  }).catch((e) => {
    console.error(`run_llamacpp: ${e.stack ?? e.message}`);
    process.exit(1);
  });
}
