// The official `openai` npm client against `sparkstack serve`: completions and chat, streaming
// and not, stop strings, seeds, n, usage and logprobs. Every output is compared with offline
// `sparkstack generate --json` for the same request (same prompt, sampling and seed), and logprobs
// with the log-softmax of generate's first-token logits.
// Usage: node openai_client_test.mjs SPARKSTACK_BINARY NODE_MODULES_DIR
import fs from 'node:fs';
import path from 'node:path';
import {generate, generatePromptsFile, logSoftmax, makeTinyModel, requireFrom, samplingVocab,
        startServer, Tally,
        topK, workDir} from './serving_lib.mjs';

const [bin, nodeModules] = process.argv.slice(2);
const {OpenAI} = requireFrom(nodeModules)('openai');
const t = new Tally();
const work = workDir('openai');
const model = makeTinyModel(bin, nodeModules, work);
const vocab = samplingVocab(nodeModules, model);  // logprobs are over these ids

// Offline references, one generate run for every text prompt (each line its own sampling).
const penalties = {top_k: 40, top_p: 0.95, min_p: 0.01, presence_penalty: 0.5,
                   frequency_penalty: 0.3, repetition_penalty: 1.1};
const lines = [
  {prompt: 'Hello, Spark! 你好', max_tokens: 12, ignore_eos: true, temperature: 0, seed: 0},
  {prompt: 'def f(x):\n    return x  # 🙂', max_tokens: 10, ignore_eos: true, temperature: 0,
   seed: 0},
  {prompt: 'Tell me a story', max_tokens: 12, ignore_eos: true, temperature: 0.9, seed: 7},
  {prompt: 'Sample with care', max_tokens: 9, ignore_eos: true, temperature: 0.8, seed: 11,
   ...penalties},
  {prompt_ids: [9707, 1052, 11, 4149], max_tokens: 8, ignore_eos: true, temperature: 0, seed: 0},
  {prompt: 'Stop here, please', max_tokens: 40, ignore_eos: true, temperature: 0, seed: 0},
  {prompt: 'Sample with care', max_tokens: 9, ignore_eos: true, temperature: 0.8, seed: 12,
   ...penalties},
];
const ref = generatePromptsFile(bin, model, work, lines, []);  // with last_logits
const messages = [{role: 'system', content: 'Be brief.'}, {role: 'user', content: 'Wie geht es? 🚀'}];
const chatFile = path.join(work, 'chat.json');
fs.writeFileSync(chatFile, JSON.stringify({messages}));
const [chatRef] = generate(bin, model, ['--chat', chatFile, '--max-tokens', '12', '--ignore-eos']);

const server = await startServer(bin, model);
const client = new OpenAI({baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0});
const usageOf = (r) => ({prompt_tokens: r.prompt_ids.length, completion_tokens: r.output_ids.length,
                         total_tokens: r.prompt_ids.length + r.output_ids.length});
const pick = ({prompt_tokens, completion_tokens, total_tokens}) =>
    ({prompt_tokens, completion_tokens, total_tokens});
const sampling = (l) => ({max_tokens: l.max_tokens, temperature: l.temperature, seed: l.seed,
                          ignore_eos: true, top_k: l.top_k, top_p: l.top_p, min_p: l.min_p,
                          presence_penalty: l.presence_penalty,
                          frequency_penalty: l.frequency_penalty,
                          repetition_penalty: l.repetition_penalty});

try {
  const models = await client.models.list();
  t.equal('models.list', models.data.map((m) => m.id), ['tiny-qwen3']);

  // Completions, not streamed.
  const c0 = await client.completions.create({model: 'tiny-qwen3', prompt: lines[0].prompt,
                                              ...sampling(lines[0])});
  t.equal('completions text = generate', c0.choices[0].text, ref[0].text);
  t.equal('completions finish_reason', c0.choices[0].finish_reason, 'length');
  t.equal('completions usage', pick(c0.usage), usageOf(ref[0]));

  // Completions, streamed, with usage.
  const s1 = await client.completions.create({model: 'tiny-qwen3', prompt: lines[1].prompt,
                                              ...sampling(lines[1]), stream: true,
                                              stream_options: {include_usage: true}});
  let text1 = '', usage1 = null, finish1 = null, chunks1 = 0;
  for await (const chunk of s1) {
    chunks1++;
    if (chunk.usage) usage1 = chunk.usage;
    for (const choice of chunk.choices) {
      text1 += choice.text;
      if (choice.finish_reason) finish1 = choice.finish_reason;
    }
  }
  t.equal('completions stream text = generate', text1, ref[1].text);
  t.check('completions stream has several chunks', chunks1 >= 3, `${chunks1} chunks`);
  t.equal('completions stream finish_reason', finish1, 'length');
  t.equal('completions stream usage chunk', usage1 && pick(usage1), usageOf(ref[1]));

  // Seeds: the same seed gives the same text, equal to generate's; n = 2 uses seed, seed + 1.
  const a = await client.completions.create({prompt: lines[2].prompt, ...sampling(lines[2])});
  const b = await client.completions.create({prompt: lines[2].prompt, ...sampling(lines[2])});
  t.equal('seed: repeated request, same text', a.choices[0].text, b.choices[0].text);
  t.equal('seed: text = generate', a.choices[0].text, ref[2].text);
  const n2 = await client.completions.create({prompt: lines[3].prompt, ...sampling(lines[3]), n: 2});
  t.equal('n=2 with every sampling parameter: choice 0 = generate seed 11',
          n2.choices.find((c) => c.index === 0).text, ref[3].text);
  t.equal('n=2: choice 1 = generate seed 12', n2.choices.find((c) => c.index === 1).text,
          ref[6].text);
  t.equal('n=2 usage counts the prompt once', pick(n2.usage),
          {prompt_tokens: ref[3].prompt_ids.length,
           completion_tokens: ref[3].output_ids.length + ref[6].output_ids.length,
           total_tokens: ref[3].prompt_ids.length + ref[3].output_ids.length +
                         ref[6].output_ids.length});

  // Prompts as token ids, and several text prompts in one request.
  const ids = await client.completions.create({prompt: lines[4].prompt_ids, ...sampling(lines[4])});
  t.equal('prompt as token ids', ids.choices[0].text, ref[4].text);
  const two = await client.completions.create({prompt: [lines[0].prompt, lines[1].prompt],
                                               ...sampling(lines[0]), max_tokens: 10});
  t.equal('two prompts: choice 1 = its generate output (first 10 tokens)',
          two.choices[1].text, ref[1].text);

  // Stop strings: the text ends before the first occurrence, finish_reason "stop".
  const full = ref[5].text;
  const at = Math.floor(full.length / 2);
  const stop = full.slice(at, at + 2);
  const stopped = await client.completions.create({prompt: lines[5].prompt, ...sampling(lines[5]),
                                                   stop: [stop, '\u2603never']});
  t.equal(`stop ${JSON.stringify(stop)}: text cut before it`, stopped.choices[0].text,
          full.slice(0, full.indexOf(stop)));
  t.equal('stop: finish_reason', stopped.choices[0].finish_reason, 'stop');
  const stoppedStream = await client.completions.create({prompt: lines[5].prompt,
                                                         ...sampling(lines[5]), stop, stream: true});
  let streamedStop = '';
  for await (const chunk of stoppedStream) streamedStop += chunk.choices[0]?.text ?? '';
  t.equal('stop, streamed: same text', streamedStop, full.slice(0, full.indexOf(stop)));

  // Logprobs: the chosen token's logprob is log_softmax(first-token logits).
  const lp = await client.completions.create({prompt: lines[0].prompt, ...sampling(lines[0]),
                                              max_tokens: 3, logprobs: 5});
  const ls0 = logSoftmax(ref[0].last_logits.slice(0, vocab));
  const got0 = lp.choices[0].logprobs.token_logprobs[0];
  t.check('completions logprobs[0] = log_softmax(logits)[token]',
          Math.abs(got0 - ls0[ref[0].output_ids[0]]) < 1e-3,
          `${got0} vs ${ls0[ref[0].output_ids[0]]}`);
  t.equal('completions logprobs: 3 tokens with top entries',
          lp.choices[0].logprobs.tokens.length, 3);

  // Chat, not streamed and streamed; logprobs with top_logprobs.
  const chat = await client.chat.completions.create({model: 'tiny-qwen3', messages,
                                                     max_completion_tokens: 12, temperature: 0,
                                                     ignore_eos: true, logprobs: true,
                                                     top_logprobs: 4});
  t.equal('chat content = generate --chat', chat.choices[0].message.content, chatRef.text);
  t.equal('chat role', chat.choices[0].message.role, 'assistant');
  t.equal('chat usage', pick(chat.usage), usageOf(chatRef));
  const lsChat = logSoftmax(chatRef.last_logits.slice(0, vocab));
  const wantTop = topK(lsChat, 4).map((id) => lsChat[id]);
  const gotTop = chat.choices[0].logprobs.content[0].top_logprobs.map((e) => e.logprob);
  t.check('chat top_logprobs = top 4 of log_softmax(logits)',
          gotTop.length === 4 && gotTop.every((v, i) => Math.abs(v - wantTop[i]) < 1e-3),
          `${gotTop} vs ${wantTop}`);
  t.equal('chat logprobs: one entry per token', chat.choices[0].logprobs.content.length,
          chatRef.output_ids.length);
  const chatStream = await client.chat.completions.create({messages, max_tokens: 12,
                                                           temperature: 0, ignore_eos: true,
                                                           stream: true,
                                                           stream_options: {include_usage: true}});
  let chatText = '', role = null, chatUsage = null;
  for await (const chunk of chatStream) {
    if (chunk.usage) chatUsage = chunk.usage;
    for (const c of chunk.choices) {
      if (c.delta.role) role = c.delta.role;
      chatText += c.delta.content ?? '';
    }
  }
  t.equal('chat stream content = generate --chat', chatText, chatRef.text);
  t.equal('chat stream role first', role, 'assistant');
  t.equal('chat stream usage', chatUsage && pick(chatUsage), usageOf(chatRef));

  // /tokenize and /detokenize (vLLM's shape) use the same tokenizer and chat template.
  const post = async (route, body) => (await fetch(`${server.url}${route}`, {
    method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify(body),
  })).json();
  const tok = await post('/tokenize', {model: 'tiny-qwen3', prompt: lines[0].prompt});
  t.equal('/tokenize = generate prompt_ids', [tok.tokens, tok.count, tok.max_model_len],
          [ref[0].prompt_ids, ref[0].prompt_ids.length, 2048]);
  t.equal('/tokenize messages = generate --chat prompt_ids',
          (await post('/tokenize', {messages})).tokens, chatRef.prompt_ids);
  t.equal('/detokenize = generate text',
          (await post('/detokenize', {tokens: ref[0].output_ids, skip_special_tokens: true})).prompt,
          ref[0].text);

  // Errors come back as the client's typed errors.
  try {
    await client.completions.create({model: 'no-such-model', prompt: 'x', max_tokens: 1});
    t.check('unknown model is refused', false);
  } catch (e) {
    t.equal('unknown model: 404 NotFoundError', [e.status, e.constructor.name],
            [404, 'NotFoundError']);
  }
} catch (e) {
  t.check(`unexpected error: ${e.stack}`, false);
}
const code = await server.stop();
t.equal('serve exits 0 on SIGTERM', code, 0);
t.close(() => fs.rmSync(work, {recursive: true, force: true}));
