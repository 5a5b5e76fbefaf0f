#!/usr/bin/env node
// Conformance: sparkstack's CPU forward pass against llama.cpp (node-llama-cpp 3.22.1, prebuilt CPU
// binary) on tiny random checkpoints made by `sparkstack make-tiny-model`, converted to GGUF by our
// own hf_to_gguf.mjs. A float64 Hugging Face-semantics reference (reference_forward.mjs) runs too,
// as a referee: if llama.cpp and the float64 reference disagree, the harness itself is broken and the
// test says so instead of blaming sparkstack.
//
// Usage:
//   node check_against_llamacpp.mjs --sparkstack BIN --node-modules DIR [--workdir DIR] [--keep]
//   node check_against_llamacpp.mjs --self-test --node-modules DIR
//       (no sparkstack: checkpoints come from make_test_checkpoint.mjs and only llama.cpp vs the
//        float64 reference is checked; validates the converter and the runner)
//
// Pass criteria per config: max |logit diff| <= 1e-3 * max |logit| (1e-4 for the mixture-of-experts
// configs of moe_conformance_configs.mjs) at the last prompt position, and identical 16 greedy tokens.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { convert, readSafetensors, readCheckpointTensors } from './hf_to_gguf.mjs';
import { makeCheckpoint, writeSafetensors } from './make_test_checkpoint.mjs';
import { ReferenceModel } from './reference_forward.mjs';
import { makeMoeCheckpoint, moeConfig } from './moe_checkpoint.mjs';
import { MOE_CONFIGS, MOE_REL_TOL } from './moe_conformance_configs.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REL_TOL = 1e-3;
const MAX_TOKENS = 16;

// Odd-ish sizes on purpose: hidden not a power of two, vocab not a multiple of 32/64.
const CONFIGS = [
  { name: 'llama-gqa4', arch: 'llama', hidden: 96, intermediate: 200, layers: 2, heads: 8, kvHeads: 2, headDim: 32, vocab: 301, seed: 11, promptLen: 37 },
  { name: 'llama-tied', arch: 'llama', hidden: 160, intermediate: 344, layers: 3, heads: 5, kvHeads: 5, headDim: 32, vocab: 517, seed: 12, tieEmbeddings: true, embedScale: 0.05 },
  { name: 'llama-rope-llama3', arch: 'llama', hidden: 96, intermediate: 232, layers: 2, heads: 6, kvHeads: 3, headDim: 32, vocab: 389, seed: 13, ropeScaling: 'llama3' },
  { name: 'qwen3', arch: 'qwen3', hidden: 160, intermediate: 288, layers: 3, heads: 4, kvHeads: 2, headDim: 32, vocab: 611, seed: 14, promptLen: 37 },
  { name: 'qwen3-tied-mha', arch: 'qwen3', hidden: 96, intermediate: 176, layers: 2, heads: 3, kvHeads: 3, headDim: 32, vocab: 997, seed: 15, tieEmbeddings: true, embedScale: 0.05 },
].concat(MOE_CONFIGS.map((c) => ({ ...c, vocab: moeConfig(c.moe, c.overrides).vocab_size, relTol: MOE_REL_TOL })));
// Prompt ids avoid 0..2 (unk/bos/eos in the dummy vocab) only to keep tables readable.
const PROMPT = [5, 17, 250, 3, 99, 42, 7, 123, 64];
// A longer prompt (37 ids -> positions up to 52 with generation) for configs with promptLen, to cover
// attention/rope past small tile sizes. Deterministic, ids in [3, vocab).
function promptFor(c) {
  if (!c.promptLen) return PROMPT;
  const ids = [];
  let x = c.seed * 2654435761 >>> 0;
  for (let i = 0; i < c.promptLen; ++i) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    ids.push(3 + (x % (c.vocab - 3)));
  }
  return ids;
}

function parseArgs(argv) {
  const o = { keep: false, selfTest: false };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    if (a === '--sparkstack') o.sparkstack = argv[++i];
    else if (a === '--node-modules') o.nodeModules = argv[++i];
    else if (a === '--workdir') o.workdir = argv[++i];
    else if (a === '--keep') o.keep = true;
    else if (a === '--self-test') o.selfTest = true;
    else if (a === '--only') o.only = argv[++i].split(',');
    else throw new Error(`unknown argument ${a}`);
  }
  o.nodeModules ??= path.resolve(HERE, '../../node_modules');
  if (!o.selfTest && !o.sparkstack) o.sparkstack = process.env.SPARKSTACK_BINARY;
  if (!o.selfTest && !o.sparkstack) throw new Error('--sparkstack BIN (or env SPARKSTACK_BINARY) is required unless --self-test');
  return o;
}

function compareLogits(a, b, tol = REL_TOL) {
  if (a.length !== b.length) return { ok: false, why: `logit count ${a.length} vs ${b.length}`, maxAbs: NaN, rel: NaN, scale: NaN };
  let maxAbs = 0, scale = 0, at = -1;
  for (let i = 0; i < a.length; ++i) {
    if (!Number.isFinite(a[i]) || !Number.isFinite(b[i])) return { ok: false, why: `non-finite logit at ${i}: ${a[i]} vs ${b[i]}`, maxAbs: NaN, rel: NaN, scale: NaN };
    const d = Math.abs(a[i] - b[i]);
    if (d > maxAbs) { maxAbs = d; at = i; }
    scale = Math.max(scale, Math.abs(b[i]));
  }
  const rel = maxAbs / Math.max(scale, 1e-30);
  return { ok: rel <= tol, maxAbs, rel, scale, at, why: rel <= tol ? '' : `max |diff| ${maxAbs.toExponential(3)} at token ${at} (${a[at]} vs ${b[at]}) > ${tol} * max|logit| ${scale.toFixed(4)}` };
}

function compareTokens(a, b) {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; ++i) if (a[i] !== b[i]) return { ok: false, at: i, why: `first differs at step ${i}: ${a[i]} vs ${b[i]} (${a.length} vs ${b.length} tokens)` };
  return { ok: true, at: -1, why: '' };
}

function runCommand(cmd, args, what) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 << 20, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    throw new Error(`${what} failed (exit ${e.status}): ${cmd} ${args.join(' ')}\n${(e.stderr ?? '').toString().slice(-4000)}`);
  }
}

function runJson(cmd, args, what) {
  const out = runCommand(cmd, args, what);
  const line = out.trim().split('\n').filter((l) => l.trim().startsWith('{')).pop();
  if (!line) throw new Error(`${what} printed no JSON object: ${cmd} ${args.join(' ')}\nstdout: ${out.slice(-2000)}`);
  try {
    return JSON.parse(line);
  } catch (e) {
    throw new Error(`${what} printed invalid JSON (${e.message}): ${line.slice(0, 300)}`);
  }
}

function makeWithSparkstack(bin, c, dir) {
  if (c.moe) {
    const args = ['make-tiny-model', '--arch', c.moe, '--out', dir, '--seed', String(c.seed), '--dtype', 'f32',
      '--config-overrides', JSON.stringify(moeConfig(c.moe, c.overrides))];
    try {
      execFileSync(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      throw new Error(`sparkstack make-tiny-model failed (exit ${e.status}): ${bin} ${args.join(' ')}\n${(e.stderr ?? '').toString().slice(-4000)}`);
    }
    return;
  }
  const args = ['make-tiny-model', '--arch', c.arch, '--out', dir, '--hidden', c.hidden, '--intermediate', c.intermediate,
    '--layers', c.layers, '--heads', c.heads, '--kv-heads', c.kvHeads, '--head-dim', c.headDim, '--vocab', c.vocab,
    '--seed', c.seed, '--dtype', 'f32'].map(String);
  if (c.tieEmbeddings) args.push('--tie-embeddings');
  if (c.ropeScaling) args.push('--rope-scaling', c.ropeScaling);
  try {
    execFileSync(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    throw new Error(`sparkstack make-tiny-model failed (exit ${e.status}): ${bin} ${args.join(' ')}\n${(e.stderr ?? '').toString().slice(-4000)}`);
  }
}

// Make llama3 rope scaling matter within a 25-position test: with head_dim 32, an original context of
// 64 puts wavelengths below 16 (kept), between 16 and 64 (smoothed) and above 64 (divided by factor).
// The checkpoint's config.json is an input shared by sparkstack, llama.cpp and the f64 reference.
function sharpenRopeScaling(dir) {
  const file = path.join(dir, 'config.json');
  const cfg = JSON.parse(fs.readFileSync(file, 'utf8'));
  const rs = cfg.rope_scaling;
  if (!rs || (rs.rope_type ?? rs.type) !== 'llama3') {
    throw new Error(`${file}: expected rope_scaling of type llama3, found ${JSON.stringify(rs)}`);
  }
  cfg.rope_scaling = { ...rs, factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 64 };
  fs.writeFileSync(file, JSON.stringify(cfg, null, 2));
}

// With tied embeddings and unit-scale random embeddings, the residual stream is dominated by the
// current token's embedding, so the tied head always predicts the last token again (16 identical
// greedy tokens, logits ~100 that make a max-relative tolerance loose). Shrinking the shared
// embedding/lm_head matrix gives diverse greedy tokens and O(1) logits. The rewritten
// model.safetensors (F32, same names/shapes) is the input to sparkstack, llama.cpp and the reference.
function rescaleEmbedding(dir, factor) {
  const tensors = readCheckpointTensors(dir);
  const list = [];
  for (const [name, t] of tensors) {
    const data = name === 'model.embed_tokens.weight' ? t.data.map((v) => v * factor) : t.data;
    list.push([name, t.shape, data]);
  }
  const file = path.join(dir, 'model.safetensors');
  if (!fs.existsSync(file)) throw new Error(`${dir}: rescaleEmbedding expects a single model.safetensors`);
  writeSafetensors(file, list, 'f32');
}

function sparkstackGenerate(bin, dir, ids, maxTokens) {
  const ss = runJson(bin, ['generate', '--model', dir, '--prompt-ids', ids.join(','),
    '--max-tokens', String(maxTokens), '--ignore-eos', '--json'], 'sparkstack generate');
  if (!Array.isArray(ss.last_logits) || !Array.isArray(ss.output_ids)) {
    throw new Error(`sparkstack generate JSON lacks last_logits/output_ids arrays: keys ${Object.keys(ss)}`);
  }
  return ss;
}

// Many sequences in one engine batch: `prompts` submitted together with a small token budget, so
// prefill chunks of some share steps with decodes of others. Returns one result per prompt.
function sparkstackGenerateBatch(bin, dir, prompts, maxTokens) {
  const args = ['generate', '--model', dir, '--max-tokens', String(maxTokens), '--ignore-eos', '--json',
    '--max-num-batched-tokens', '19', '--max-num-seqs', '4'];
  for (const p of prompts) args.push('--prompt-ids', p.join(','));
  const out = runCommand(bin, args, 'sparkstack generate (batch)');
  const lines = out.trim().split('\n').map((l) => JSON.parse(l));
  if (lines.length !== prompts.length) throw new Error(`batched generate printed ${lines.length} lines for ${prompts.length} prompts`);
  return lines;
}

// Extra prompts of varied lengths for the batch check, deterministic per config.
function batchPrompts(c, prompt) {
  const prompts = [prompt];
  let x = (c.seed * 7919) >>> 0;
  for (const len of [1, 23, 5]) {
    const ids = [];
    for (let i = 0; i < len; ++i) {
      x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
      ids.push(3 + (x % (c.vocab - 3)));
    }
    prompts.push(ids);
  }
  return prompts;
}

// On a sparkstack failure, narrows it down with the float64 reference (which agrees with llama.cpp,
// see the referee check): prefill logits at growing prompt lengths (length 1 has rope = identity and
// attention = copy of v, so a failure there points at embedding/norm/matmul/MLP/lm_head; a first
// failure at length >= 2 points at rope/attention), and, for a greedy-token mismatch with good prefill
// logits, the prefill of prompt + llama.cpp's tokens up to the divergence (good there but bad in
// generate means the decode/KV-cache path).
function triage(bin, dir, ref, row, prompt) {
  const lines = [];
  for (const n of [1, 2, 3, prompt.length]) {
    const ids = prompt.slice(0, n);
    try {
      const ss = sparkstackGenerate(bin, dir, ids, 1);
      const r = compareLogits(ss.last_logits, Array.from(ref.forward(ids)));
      lines.push(`prefill len ${n}: sparkstack~f64 rel ${r.rel.toExponential(2)} ${r.ok ? 'ok' : 'BAD (' + r.why + ')'}`);
    } catch (e) {
      lines.push(`prefill len ${n}: error ${e.message.split('\n')[0]}`);
    }
  }
  if (row.tokens && !row.tokens.ok && row.lc) {
    const ids = prompt.concat(row.lc.slice(0, row.tokens.at));
    try {
      const ss = sparkstackGenerate(bin, dir, ids, 1);
      const refLogits = Array.from(ref.forward(ids));
      const r = compareLogits(ss.last_logits, refLogits);
      const sorted = refLogits.map((v, i) => [v, i]).sort((a, b) => b[0] - a[0]);
      lines.push(`prefill of prompt + llama.cpp tokens[0..${row.tokens.at}) (${ids.length} ids): sparkstack~f64 rel ` +
        `${r.rel.toExponential(2)} ${r.ok ? 'ok' : 'BAD'}; prefill argmax ${ss.output_ids[0]} (f64 top2: ${sorted[0][1]}=${sorted[0][0].toFixed(5)}, ` +
        `${sorted[1][1]}=${sorted[1][0].toFixed(5)})` + (r.ok && ss.output_ids[0] === sorted[0][1] ? ' => prefill right, decode path wrong' : ''));
    } catch (e) {
      lines.push(`divergence prefill: error ${e.message.split('\n')[0]}`);
    }
  }
  return lines;
}

// Self-test of the safetensors BF16/F16 decoders on bit patterns whose values the IEEE/bfloat16
// definitions fix (1.0, -2.5, 2^-133 subnormal bf16; 1.0, -2.0, 65504, 2^-24 subnormal f16, -0.0).
function checkDecoders(work) {
  const cases = {
    BF16: [[0x3f80, 1.0], [0xc020, -2.5], [0x0001, 2 ** -133], [0x4049, 3.140625]],
    F16: [[0x3c00, 1.0], [0xc000, -2.0], [0x7bff, 65504], [0x0001, 2 ** -24], [0x3555, 0.333251953125]],
  };
  const header = {};
  const bufs = [];
  let off = 0;
  for (const [dt, pairs] of Object.entries(cases)) {
    const b = Buffer.alloc(pairs.length * 2);
    pairs.forEach(([bits], i) => b.writeUInt16LE(bits, i * 2));
    header[dt] = { dtype: dt, shape: [pairs.length], data_offsets: [off, off + b.length] };
    off += b.length;
    bufs.push(b);
  }
  let json = JSON.stringify(header);
  while (json.length % 8) json += ' ';
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const file = path.join(work, 'decoders.safetensors');
  fs.writeFileSync(file, Buffer.concat([len, Buffer.from(json), ...bufs]));
  const st = readSafetensors(file);
  const errors = [];
  for (const [dt, pairs] of Object.entries(cases)) {
    pairs.forEach(([bits, want], i) => {
      const got = st.get(dt).data[i];
      if (got !== Math.fround(want)) errors.push(`${dt} 0x${bits.toString(16)}: got ${got}, want ${want}`);
    });
  }
  return errors;
}

function pad(s, n) { s = String(s); return s.length >= n ? s : s + ' '.repeat(n - s.length); }

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const nlcEntry = path.join(o.nodeModules, 'node-llama-cpp', 'dist', 'index.js');
  if (!fs.existsSync(nlcEntry)) {
    console.error(`FATAL: node-llama-cpp is not installed (looked for ${nlcEntry}).\n` +
      `Install the test peers first: (cd ${path.resolve(HERE, '../..')} && npm ci)`);
    process.exit(1);
  }
  if (!o.selfTest && !fs.existsSync(o.sparkstack)) {
    console.error(`FATAL: sparkstack binary not found at ${o.sparkstack}`);
    process.exit(1);
  }
  const { runLlamaCpp } = await import('./run_llamacpp.mjs');
  const work = o.workdir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'llamacpp-conf-'));
  fs.mkdirSync(work, { recursive: true });
  // Self-test only: a BF16 checkpoint exercises the converter's BF16 path (sparkstack's make-tiny-model
  // is asked for f32 in the main check).
  const all = o.selfTest ? CONFIGS.concat([{ ...CONFIGS[0], name: 'llama-gqa4-bf16', dtype: 'bf16', seed: 21 }]) : CONFIGS;
  const configs = o.only ? all.filter((c) => o.only.includes(c.name)) : all;
  const rows = [];
  let failed = 0;
  if (o.selfTest) {
    const errors = checkDecoders(work);
    rows.push({ name: 'bf16/f16 decoders', ok: errors.length === 0, error: errors.join('; '),
      refLogits: { rel: NaN }, refTokens: { ok: errors.length === 0, at: -1 } });
    if (errors.length) failed++;
  }
  for (const c of configs) {
    const dir = path.join(work, c.name);
    const gguf = path.join(work, `${c.name}.gguf`);
    const row = { name: c.name };
    const prompt = promptFor(c);
    row.promptLen = prompt.length;
    try {
      fs.rmSync(dir, { recursive: true, force: true });
      if (o.selfTest && c.moe) makeMoeCheckpoint({ cfg: moeConfig(c.moe, c.overrides), out: dir, seed: c.seed, dtype: c.dtype ?? 'f32' });
      else if (o.selfTest) makeCheckpoint({ ...c, out: dir, dtype: c.dtype ?? 'f32' });
      else makeWithSparkstack(o.sparkstack, c, dir);
      if (c.ropeScaling === 'llama3') sharpenRopeScaling(dir);
      if (c.embedScale) rescaleEmbedding(dir, c.embedScale);
      convert(dir, gguf);
      const lc = await runLlamaCpp({ model: gguf, promptIds: prompt, maxTokens: MAX_TOKENS, nodeModules: o.nodeModules });
      const ref = new ReferenceModel(dir).generate(prompt, MAX_TOKENS);
      // Referee: the float64 reference vs llama.cpp. A failure here is a harness (converter/runner) bug
      // or a checkpoint the converter misreads, not a sparkstack forward-pass bug.
      row.refLogits = compareLogits(lc.last_logits, ref.last_logits, c.relTol);
      row.refTokens = compareTokens(lc.output_ids, ref.output_ids);
      row.lc = lc.output_ids; row.ref = ref.output_ids;
      if (c.brokenRoutingCheck) {
        // The same reference with a wrong group score must lose to llama.cpp, or the check is blind.
        const broken = new ReferenceModel(dir, { brokenRouting: true }).generate(prompt, MAX_TOKENS);
        const caught = !compareLogits(lc.last_logits, broken.last_logits, c.relTol).ok ||
          !compareTokens(lc.output_ids, broken.output_ids).ok;
        row.brokenCaught = caught;
        if (!caught) row.error = 'a deliberately broken routing rule (group score = best expert) was not caught';
      }
      if (!o.selfTest) {
        const ss = sparkstackGenerate(o.sparkstack, dir, prompt, MAX_TOKENS);
        row.logits = compareLogits(ss.last_logits, lc.last_logits, c.relTol);
        // sparkstack may legitimately stop early at EOS; llama.cpp's runner never stops. Then the
        // shorter stream must be a prefix of llama.cpp's and end with an EOS id from config.json.
        const eos = [].concat(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')).eos_token_id ?? []);
        const stoppedAtEos = ss.output_ids.length < MAX_TOKENS && ss.output_ids.length > 0 &&
          eos.includes(ss.output_ids[ss.output_ids.length - 1]);
        row.tokens = compareTokens(ss.output_ids, stoppedAtEos ? lc.output_ids.slice(0, ss.output_ids.length) : lc.output_ids);
        if (stoppedAtEos) row.note = `sparkstack stopped at EOS after ${ss.output_ids.length} tokens`;
        if (Array.isArray(ss.prompt_ids) && ss.prompt_ids.join(',') !== prompt.join(',')) {
          throw new Error(`sparkstack generate echoed prompt_ids ${ss.prompt_ids} but was given ${prompt}`);
        }
        row.ssVsRef = compareLogits(ss.last_logits, ref.last_logits, c.relTol);
        // The same prompt batched with others must give the same logits and tokens, and so must
        // each other prompt batched versus run alone.
        const prompts = batchPrompts(c, prompt);
        const batched = sparkstackGenerateBatch(o.sparkstack, dir, prompts, MAX_TOKENS);
        row.batch = { ok: true, why: '' };
        for (let i = 0; i < prompts.length; ++i) {
          const alone = i === 0 ? ss : sparkstackGenerate(o.sparkstack, dir, prompts[i], MAX_TOKENS);
          const l = compareLogits(batched[i].last_logits, alone.last_logits);
          const t = compareTokens(batched[i].output_ids, alone.output_ids);
          if (!l.ok || !t.ok || l.rel > 1e-5) {
            row.batch = { ok: false, why: `prompt ${i} batched vs alone: logits ${l.why || l.rel}, tokens ${t.why || 'same'}` };
          }
        }
        row.ok = row.logits.ok && row.tokens.ok && row.refLogits.ok && row.refTokens.ok && row.batch.ok &&
          row.brokenCaught !== false;
        row.ss = ss.output_ids;
        if (!row.ok && row.refLogits.ok && row.refTokens.ok) row.triage = triage(o.sparkstack, dir, new ReferenceModel(dir), row, prompt);
      } else {
        row.ok = row.refLogits.ok && row.refTokens.ok && row.brokenCaught !== false;
      }
    } catch (e) {
      row.ok = false;
      row.error = e.message;
    }
    if (!row.ok) failed++;
    rows.push(row);
  }

  // Table.
  const fmt = (r) => (r && Number.isFinite(r.rel) ? r.rel.toExponential(2) : '-');
  console.log(`\nllama.cpp conformance (${o.selfTest ? 'self-test: llama.cpp vs float64 reference' : 'sparkstack vs llama.cpp'}), ` +
    `prompts of ${[...new Set(rows.map((r) => r.promptLen).filter(Boolean))].join('/')} ids, ${MAX_TOKENS} greedy tokens, tolerance rel ${REL_TOL} (MoE rows ${MOE_REL_TOL})`);
  if (o.selfTest) {
    console.log(`${pad('config', 20)} ${pad('llama.cpp~f64 rel', 18)} ${pad('tokens', 8)} result`);
    for (const r of rows) {
      console.log(`${pad(r.name, 20)} ${pad(fmt(r.refLogits), 18)} ${pad(r.refTokens ? (r.refTokens.ok ? 'same' : `@${r.refTokens.at}`) : '-', 8)} ${r.ok ? 'PASS' : 'FAIL'}` +
        (r.brokenCaught ? '  (a broken routing rule is caught)' : ''));
    }
  } else {
    console.log(`${pad('config', 20)} ${pad('max|logit|', 11)} ${pad('ss~llama.cpp rel', 17)} ${pad('ss~f64 rel', 11)} ${pad('llama.cpp~f64', 14)} ${pad('tokens', 8)} result`);
    for (const r of rows) {
      console.log(`${pad(r.name, 20)} ${pad(r.logits && Number.isFinite(r.logits.scale) ? r.logits.scale.toFixed(3) : '-', 11)} ${pad(fmt(r.logits), 17)} ${pad(fmt(r.ssVsRef), 11)} ${pad(fmt(r.refLogits), 14)} ` +
        `${pad(r.tokens ? (r.tokens.ok ? 'same' : `@${r.tokens.at}`) : '-', 8)} ${r.ok ? 'PASS' : 'FAIL'}${r.note ? '  (' + r.note + ')' : ''}` +
        (r.brokenCaught ? '  (a broken routing rule is caught)' : ''));
    }
  }
  for (const r of rows) {
    if (r.ok) continue;
    console.log(`\n[${r.name}] FAILED`);
    if (r.error) { console.log(`  error: ${r.error}`); continue; }
    if (!r.refLogits.ok || !r.refTokens.ok) {
      console.log(`  HARNESS PROBLEM (llama.cpp disagrees with the float64 HF reference; not sparkstack's fault):`);
      if (!r.refLogits.ok) console.log(`    logits: ${r.refLogits.why}`);
      if (!r.refTokens.ok) console.log(`    tokens: ${r.refTokens.why}\n    llama.cpp: ${r.lc}\n    f64 ref:   ${r.ref ?? ''}`);
    }
    if (r.logits && !r.logits.ok) console.log(`  sparkstack vs llama.cpp logits: ${r.logits.why}`);
    if (r.batch && !r.batch.ok) console.log(`  many sequences in one batch: ${r.batch.why}`);
    if (r.tokens && !r.tokens.ok) console.log(`  sparkstack vs llama.cpp tokens: ${r.tokens.why}\n    sparkstack: ${r.ss}\n    llama.cpp:  ${r.lc}`);
    if (r.triage) for (const l of r.triage) console.log(`  triage: ${l}`);
  }
  for (const r of rows) {
    const ids = r.lc ?? [];
    if (ids.length && new Set(ids).size < 4) {
      console.log(`WARNING [${r.name}]: only ${new Set(ids).size} distinct greedy tokens; the token check has little power ` +
        `(tiny-model init scale?)`);
    }
  }
  if (!o.keep && !o.workdir) fs.rmSync(work, { recursive: true, force: true });
  else console.log(`\nartifacts kept in ${work}`);
  console.log(`\n${rows.length - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(`FATAL: ${e.stack ?? e.message}`);
  process.exit(1);
});
