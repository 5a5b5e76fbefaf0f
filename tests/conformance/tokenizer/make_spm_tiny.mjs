// Builds two tiny SentencePiece-style BPE tokenizers (byte fallback, like Llama 2 / Mistral) by
// training a few hundred merges on generated English text, and writes them to testdata/:
//   spm_tiny/       Llama 2 layout: Prepend+Replace normalizer, no pre-tokenizer,
//                   Replace/ByteFallback/Fuse/Strip decoder, TemplateProcessing with <s>.
//   spm_metaspace/  Mistral layout: Metaspace pre-tokenizer (prepend_scheme "first") and decoder.
// No npm package ships such a vocabulary, so these stand in; the conformance test checks them
// against Hugging Face's Rust tokenizers like the real ones. Run: node make_spm_tiny.mjs
import fs from 'node:fs';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {makeCorpus} from './make_corpus.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const SP = '\u2581';

const text = makeCorpus(7, 600).filter((s) => /^[\x20-\x7e\n]*$/.test(s)).join(' ');
const chars = new Set([SP, ...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?\'"-:;()', 'é', '的', '我']);
const vocab = {'<unk>': 0, '<s>': 1, '</s>': 2};
for (let b = 0; b < 256; ++b) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
for (const c of chars) vocab[c] = Object.keys(vocab).length;

// Word frequencies over "▁word" units.
const freq = new Map();
for (const w of text.replace(/\s+/g, ' ').split(' ')) {
  if (!w) continue;
  const key = SP + w;
  freq.set(key, (freq.get(key) || 0) + 1);
}
let words = [...freq.entries()].map(([w, f]) => [Array.from(w).filter((c) => chars.has(c)), f]);
const merges = [];
for (let step = 0; step < 400; ++step) {
  const pairs = new Map();
  for (const [symbols, f] of words) {
    for (let i = 0; i + 1 < symbols.length; ++i) {
      const k = symbols[i] + '\u0000' + symbols[i + 1];
      pairs.set(k, (pairs.get(k) || 0) + f);
    }
  }
  let best = null, bestCount = 1;
  for (const [k, c] of [...pairs.entries()].sort()) if (c > bestCount) { best = k; bestCount = c; }
  if (!best) break;
  const [a, b] = best.split('\u0000');
  merges.push([a, b]);
  if (!(a + b in vocab)) vocab[a + b] = Object.keys(vocab).length;
  words = words.map(([s, f]) => {
    const out = [];
    for (let i = 0; i < s.length; ++i) {
      if (i + 1 < s.length && s[i] === a && s[i + 1] === b) { out.push(a + b); ++i; } else out.push(s[i]);
    }
    return [out, f];
  });
}

const special = (id, content) => ({id, content, single_word: false, lstrip: false, rstrip: false,
                                   normalized: false, special: true});
const base = {
  version: '1.0',
  truncation: null,
  padding: null,
  added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
  post_processor: {
    type: 'TemplateProcessing',
    single: [{SpecialToken: {id: '<s>', type_id: 0}}, {Sequence: {id: 'A', type_id: 0}}],
    pair: [{SpecialToken: {id: '<s>', type_id: 0}}, {Sequence: {id: 'A', type_id: 0}},
           {SpecialToken: {id: '<s>', type_id: 1}}, {Sequence: {id: 'B', type_id: 1}}],
    special_tokens: {'<s>': {id: '<s>', ids: [1], tokens: ['<s>']}},
  },
  model: {type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null,
          end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, ignore_merges: false,
          vocab, merges},
};
const llama2 = {
  ...base,
  normalizer: {type: 'Sequence', normalizers: [{type: 'Prepend', prepend: SP},
                                               {type: 'Replace', pattern: {String: ' '}, content: SP}]},
  pre_tokenizer: null,
  decoder: {type: 'Sequence', decoders: [{type: 'Replace', pattern: {String: SP}, content: ' '},
                                         {type: 'ByteFallback'}, {type: 'Fuse'},
                                         {type: 'Strip', content: ' ', start: 1, stop: 0}]},
};
const mistral = {
  ...base,
  normalizer: null,
  pre_tokenizer: {type: 'Metaspace', replacement: SP, prepend_scheme: 'first', split: false},
  decoder: {type: 'Metaspace', replacement: SP, prepend_scheme: 'first', split: false},
};
const config = {add_bos_token: true, add_eos_token: false, bos_token: '<s>', eos_token: '</s>',
                unk_token: '<unk>', tokenizer_class: 'LlamaTokenizerFast'};
for (const [dir, tok] of [['spm_tiny', llama2], ['spm_metaspace', mistral]]) {
  fs.mkdirSync(path.join(here, 'testdata', dir), {recursive: true});
  fs.writeFileSync(path.join(here, 'testdata', dir, 'tokenizer.json'), JSON.stringify(tok, null, 1) + '\n');
  fs.writeFileSync(path.join(here, 'testdata', dir, 'tokenizer_config.json'), JSON.stringify(config, null, 2) + '\n');
}
console.log(`vocab ${Object.keys(vocab).length}, merges ${merges.length}`);
