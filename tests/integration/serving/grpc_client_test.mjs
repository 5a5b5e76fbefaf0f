// @grpc/grpc-js, loading the repository's proto/sparkstack/v1/inference.proto, against
// `sparkstack serve`: streaming Generate from text, token ids and chat messages (token ids and text
// equal offline `generate --json`), logprobs (ids and values against the log-softmax of generate's
// first-token logits), stop strings and ids, Abort and a cancelled call mid-stream (the request
// ends and its KV blocks are freed: /metrics), Tokenize, Detokenize, GetModelInfo, GetServerInfo,
// Health, and error codes.
// Usage: node grpc_client_test.mjs SPARKSTACK_BINARY NODE_MODULES_DIR SOURCE_DIR
import fs from 'node:fs';
import path from 'node:path';
import {generate, generatePromptsFile, logSoftmax, makeTinyModel, metrics, requireFrom,
        samplingVocab,
        startServer, Tally, topK, waitForMetrics, workDir} from './serving_lib.mjs';

const [bin, nodeModules, sourceDir] = process.argv.slice(2);
const require = requireFrom(nodeModules);
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const t = new Tally();
const work = workDir('grpc');
const model = makeTinyModel(bin, nodeModules, work);
const vocab = samplingVocab(nodeModules, model);  // logprobs are over these ids

const lines = [
  {prompt: 'Hello, Spark! 你好', max_tokens: 12, ignore_eos: true, temperature: 0, seed: 0},
  {prompt_ids: [9707, 1052, 11, 4149, 0, 151643], max_tokens: 9, ignore_eos: true,
   temperature: 0.7, seed: 42, top_k: 50},
  {prompt: 'Stop here, please', max_tokens: 40, ignore_eos: true, temperature: 0, seed: 0},
];
const ref = generatePromptsFile(bin, model, work, lines, []);
const messages = [{role: 'user', content: 'Wie geht es? 🚀'}];
const chatFile = path.join(work, 'chat.json');
fs.writeFileSync(chatFile, JSON.stringify({messages}));
const [chatRef] = generate(bin, model, ['--chat', chatFile, '--max-tokens', '7', '--ignore-eos',
                                        '--no-logits']);

const definition = protoLoader.loadSync(path.join(sourceDir, 'proto/sparkstack/v1/inference.proto'),
                                        {keepCase: true, longs: String, enums: String,
                                         defaults: false, oneofs: true});
const {Inference} = grpc.loadPackageDefinition(definition).sparkstack.v1;
const server = await startServer(bin, model);
const client = new Inference(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
const unary = (method, request) => new Promise((resolve, reject) =>
  client[method](request, (err, response) => (err ? reject(err) : resolve(response))));

// Runs a Generate call to its end; `onMessage(message, call, all)` may cancel or abort.
function collect(request, onMessage = () => {}) {
  return new Promise((resolve) => {
    const messages = [];
    const call = client.Generate(request);
    call.on('data', (m) => { messages.push(m); onMessage(m, call, messages); });
    call.on('error', (error) => resolve({messages, error}));
    call.on('end', () => resolve({messages, error: null}));
  });
}
const ids = (ms) => ms.flatMap((m) => (m.token_ids ?? []).map(Number));
const text = (ms) => ms.map((m) => m.text ?? '').join('');
const last = (ms) => ms[ms.length - 1];

try {
  // Text input, greedy.
  const g0 = await collect({text: lines[0].prompt,
                            sampling: {temperature: 0, seed: 0},
                            stopping: {max_tokens: 12, ignore_eos: true}});
  t.equal('Generate(text): no error', g0.error?.message ?? null, null);
  t.check('first message: request_id and prompt_tokens, no tokens',
          g0.messages[0].request_id?.startsWith('gen-') &&
          g0.messages[0].prompt_tokens === ref[0].prompt_ids.length &&
          (g0.messages[0].token_ids ?? []).length === 0, JSON.stringify(g0.messages[0]));
  t.equal('Generate(text): token ids = generate', ids(g0.messages), ref[0].output_ids);
  t.equal('Generate(text): text = generate', text(g0.messages), ref[0].text);
  const f0 = last(g0.messages).finished;
  t.equal('finished: LENGTH, usage', [f0?.reason, f0?.usage?.prompt_tokens,
                                      f0?.usage?.completion_tokens, f0?.usage?.total_tokens],
          ['FINISH_REASON_LENGTH', ref[0].prompt_ids.length, 12, ref[0].prompt_ids.length + 12]);
  t.check('finished: timings', f0?.timings?.end_to_end > 0 &&
          f0.timings.time_to_first_token > 0 &&
          f0.timings.time_to_first_token <= f0.timings.end_to_end, JSON.stringify(f0?.timings));

  // Token ids input, sampled with a seed and top_k; prompt ids echoed.
  const g1 = await collect({token_ids: {ids: lines[1].prompt_ids}, return_prompt_ids: true,
                            sampling: {temperature: 0.7, seed: '42', top_k: 50},
                            stopping: {max_tokens: 9, ignore_eos: true}});
  t.equal('Generate(token_ids, seed): ids = generate', ids(g1.messages), ref[1].output_ids);
  t.equal('return_prompt_ids', (g1.messages[0].prompt_ids ?? []).map(Number), lines[1].prompt_ids);

  // Chat input.
  const g2 = await collect({chat: {messages}, sampling: {temperature: 0},
                            stopping: {max_tokens: 7, ignore_eos: true}});
  t.equal('Generate(chat): ids = generate --chat', ids(g2.messages), chatRef.output_ids);

  // Logprobs: ids and values of the top alternatives.
  const g3 = await collect({text: lines[0].prompt, sampling: {temperature: 0, logprobs: 5},
                            stopping: {max_tokens: 2, ignore_eos: true}});
  const lp = g3.messages.flatMap((m) => m.logprobs ?? []);
  const ls = logSoftmax(ref[0].last_logits.slice(0, vocab));
  const want = topK(ls, 5);
  t.equal('logprobs: one per token', lp.length, 2);
  t.equal('logprobs[0].top ids = top 5 of log_softmax(logits)', lp[0]?.top.map((e) => e.token_id),
          want);
  t.check('logprobs[0] values', lp[0] && Math.abs(lp[0].logprob - ls[ref[0].output_ids[0]]) < 1e-3 &&
          lp[0].top.every((e, i) => Math.abs(e.logprob - ls[want[i]]) < 1e-3),
          JSON.stringify(lp[0]));

  // Stop string and stop token.
  const full = ref[2].text;
  const stop = full.slice(Math.floor(full.length / 2), Math.floor(full.length / 2) + 2);
  const g4 = await collect({text: lines[2].prompt, sampling: {temperature: 0},
                            stopping: {max_tokens: 40, ignore_eos: true, stop: [stop]}});
  t.equal('stop string: text cut before it', text(g4.messages), full.slice(0, full.indexOf(stop)));
  t.equal('stop string: reason and match', [last(g4.messages).finished?.reason,
                                            last(g4.messages).finished?.stop_string],
          ['FINISH_REASON_STOP_STRING', stop]);
  const stopId = ref[2].output_ids[5];
  const g5 = await collect({text: lines[2].prompt, sampling: {temperature: 0},
                            stopping: {max_tokens: 40, ignore_eos: true, stop_token_ids: [stopId]}});
  const upTo = ref[2].output_ids.slice(0, ref[2].output_ids.indexOf(stopId) + 1);
  t.equal('stop token: ids up to and including it', ids(g5.messages), upTo);
  t.equal('stop token: reason and id', [last(g5.messages).finished?.reason,
                                        last(g5.messages).finished?.stop_token_id],
          ['FINISH_REASON_STOP_TOKEN', stopId]);

  // Abort by request id mid-stream; a second call with the same id is refused while it runs.
  let blocksDuring = 0, duplicate = null, abortReply = null;
  const before = await metrics(server.url);
  const g6 = await collect({request_id: 'abort-me', text: 'A long story', sampling: {temperature: 0},
                            stopping: {max_tokens: 1500, ignore_eos: true}},
                           (m, call, all) => {
    if (ids(all).length >= 3 && abortReply === null) {
      abortReply = 'pending';
      (async () => {
        blocksDuring = (await metrics(server.url)).sparkstack_kv_blocks_used;
        duplicate = (await collect({request_id: 'abort-me', text: 'x'})).error;
        abortReply = await unary('Abort', {request_id: 'abort-me'});
      })();
    }
  });
  t.equal('Abort: found', abortReply?.found, true);
  t.equal('duplicate request_id while running: ALREADY_EXISTS', duplicate?.code,
          grpc.status.ALREADY_EXISTS);
  t.equal('aborted stream: FINISH_REASON_ABORT', last(g6.messages).finished?.reason,
          'FINISH_REASON_ABORT');
  t.check('aborted early', ids(g6.messages).length < 1500, `${ids(g6.messages).length} tokens`);
  t.check('KV blocks in use while it ran', blocksDuring > 0, `${blocksDuring}`);
  let after = await waitForMetrics(server.url, (m) => m.sparkstack_kv_blocks_used === 0 &&
                                   m.sparkstack_num_requests_running === 0);
  t.equal('after Abort: KV blocks freed, nothing running',
          [after.sparkstack_kv_blocks_used, after.sparkstack_num_requests_running], [0, 0]);
  t.equal('Abort of an unknown id: found false', (await unary('Abort', {request_id: 'nope'})).found ?? false,
          false);

  // Cancel mid-stream: the server aborts the request and frees its blocks.
  const g7 = await collect({text: 'Another long story', sampling: {temperature: 0},
                            stopping: {max_tokens: 1500, ignore_eos: true}},
                           (m, call, all) => { if (ids(all).length >= 3) call.cancel(); });
  t.equal('cancelled call: CANCELLED on the client', g7.error?.code, grpc.status.CANCELLED);
  after = await waitForMetrics(server.url, (m) =>
      m['sparkstack_requests_total{outcome="aborted"}'] >=
          before['sparkstack_requests_total{outcome="aborted"}'] + 2 &&
      m.sparkstack_kv_blocks_used === 0 && m.sparkstack_num_requests_running === 0);
  t.equal('after cancel: request aborted, KV blocks freed',
          [after['sparkstack_requests_total{outcome="aborted"}'] -
               before['sparkstack_requests_total{outcome="aborted"}'],
           after.sparkstack_kv_blocks_used, after.sparkstack_num_requests_running], [2, 0, 0]);

  // The unary methods.
  const tok = await unary('Tokenize', {text: lines[0].prompt});
  t.equal('Tokenize = generate prompt_ids', tok.token_ids.map(Number), ref[0].prompt_ids);
  const chatTok = await unary('Tokenize', {chat: {messages}});
  t.equal('Tokenize(chat) = generate --chat prompt_ids', chatTok.token_ids.map(Number),
          chatRef.prompt_ids);
  const detok = await unary('Detokenize', {token_ids: ref[0].output_ids});
  t.equal('Detokenize = generate text', detok.text, ref[0].text);
  const info = await unary('GetModelInfo', {});
  t.equal('GetModelInfo', [info.served_model_name, info.architecture, info.vocab_size,
                           info.max_model_len, info.has_chat_template],
          ['tiny-qwen3', 'qwen3', 151936, 2048, true]);
  const serverInfo = await unary('GetServerInfo', {});
  t.equal('GetServerInfo', [serverInfo.tensor_parallel, serverInfo.pipeline_parallel ?? 1,
                            serverInfo.active_requests ?? 0, typeof serverInfo.version],
          [1, 1, 0, 'string']);
  const health = await unary('Health', {});
  t.equal('Health: SERVING', health.status, 'SERVING');

  // Errors are status codes.
  const noInput = await collect({sampling: {temperature: 0}});
  t.equal('no input: INVALID_ARGUMENT', noInput.error?.code, grpc.status.INVALID_ARGUMENT);
  const badTemp = await collect({text: 'x', sampling: {temperature: -1}});
  t.check('temperature -1: INVALID_ARGUMENT naming it',
          badTemp.error?.code === grpc.status.INVALID_ARGUMENT &&
          /temperature/.test(badTemp.error.details), badTemp.error?.details);
  const badId = await collect({token_ids: {ids: [1, 999999]}});
  t.equal('token id outside the vocabulary: INVALID_ARGUMENT', badId.error?.code,
          grpc.status.INVALID_ARGUMENT);
} catch (e) {
  t.check(`unexpected error: ${e.stack}`, false);
}
client.close();
t.equal('serve exits 0 on SIGTERM', await server.stop(), 0);
t.close(() => fs.rmSync(work, {recursive: true, force: true}));
