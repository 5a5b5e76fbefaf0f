#!/usr/bin/env node
// The peer of cuda_decode_bench: decode tokens/s of llama.cpp's CUDA build (node-llama-cpp with
// the @node-llama-cpp/linux-x64-cuda prebuilt binary) on a GGUF of the same shapes, with `batch`
// sequences of one context decoding together.
//
// Usage: node llamacpp_decode_bench.mjs --model M.gguf [--batches 1,8,32] [--context 512]
//        [--steps 64] [--node-modules DIR]
// Prints one line per batch: tokens/s. Nothing is downloaded or built (the CUDA prebuilt must be
// installed next to node-llama-cpp already).

import { loadNodeLlamaCpp } from '../../conformance/llamacpp/run_llamacpp.mjs';

function parseArgs(argv) {
  const out = { batches: [1, 8, 32], context: 512, steps: 64 };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    const next = () => argv[++i];
    if (a === '--model') out.model = next();
    else if (a === '--batches') out.batches = next().split(',').map(Number);
    else if (a === '--context') out.context = Number(next());
    else if (a === '--steps') out.steps = Number(next());
    else if (a === '--node-modules') out.nodeModules = next();
    else throw new Error(`unknown argument ${a}`);
  }
  if (!out.model) throw new Error('--model is required');
  return out;
}

const args = parseArgs(process.argv.slice(2));
const nlc = await loadNodeLlamaCpp(args.nodeModules);
const llama = await nlc.getLlama({ gpu: 'cuda', build: 'never', usePrebuiltBinaries: true,
                                   skipDownload: true, progressLogs: false,
                                   logLevel: nlc.LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath: args.model, gpuLayers: 'max' });
const vocab = model.fileInfo.metadata[model.fileInfo.metadata.general.architecture].vocab_size;
for (const batch of args.batches) {
  const context = await model.createContext({ contextSize: batch * (args.context + args.steps + 8),
                                              batchSize: Math.max(batch, 512), sequences: batch });
  const sequences = Array.from({ length: batch }, () => context.getSequence());
  const gen = { generateNext: { token: true, options: { temperature: 0 } } };
  // Prefill every sequence, then decode all of them step by step (llama.cpp batches the
  // sequences' evaluations that are pending together).
  await Promise.all(sequences.map((seq, s) => {
    const prompt = Array.from({ length: args.context }, (_, p) => (s * 7919 + p * 104729) % vocab);
    prompt[prompt.length - 1] = [prompt[prompt.length - 1], gen];
    return seq.controlledEvaluate(prompt);
  }));
  let start = 0;
  for (let i = 0; i < args.steps + 2; ++i) {
    if (i === 2) start = performance.now();
    await Promise.all(sequences.map((seq, s) => seq.controlledEvaluate([[(s + i * 31) % vocab, gen]])));
  }
  const seconds = (performance.now() - start) / 1000;
  console.log(`batch ${batch}: ${(batch * args.steps / seconds).toFixed(1)} tokens/s (llama.cpp CUDA)`);
  await context.dispose();
}
await model.dispose();
await llama.dispose();
