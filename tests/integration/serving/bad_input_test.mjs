// Hostile and broken requests against `sparkstack serve` (with an API key and small limits): each
// gets a clear 4xx in OpenAI's error shape (or a gRPC status), naming the problem, and the server
// stays healthy and serves correct requests afterwards.
// Usage: node bad_input_test.mjs SPARKSTACK_BINARY NODE_MODULES_DIR SOURCE_DIR
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {makeTinyModel, metrics, requireFrom, startServer, Tally, waitForMetrics,
        workDir} from './serving_lib.mjs';

const [bin, nodeModules, sourceDir] = process.argv.slice(2);
const require = requireFrom(nodeModules);
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const t = new Tally();
const work = workDir('bad-input');
const model = makeTinyModel(bin, nodeModules, work);
const keyFile = path.join(work, 'api-key');
fs.writeFileSync(keyFile, 'sk-test-0123456789\n');
const server = await startServer(bin, model, ['--api-key-file', keyFile,
                                              '--max-concurrent-requests', '2',
                                              '--max-tokens-limit', '100']);
const auth = {authorization: 'Bearer sk-test-0123456789'};

async function post(route, body, headers = auth) {
  const response = await fetch(`${server.url}${route}`, {
    method: 'POST', headers: {'content-type': 'application/json', ...headers}, body});
  const text = await response.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* reported below */ }
  return {status: response.status, json, text};
}

// Expects `status` and an OpenAI error whose message matches `pattern`.
async function expectError(name, route, body, status, pattern, headers = auth) {
  const r = await post(route, body, headers);
  const message = r.json?.error?.message ?? '';
  t.check(`${name}: ${status}`, r.status === status && typeof r.json?.error?.type === 'string' &&
          pattern.test(message), `${r.status} ${r.text.slice(0, 300)}`);
}

// Raw bytes on a fresh connection; resolves with what the server answered.
function raw(bytes) {
  return new Promise((resolve) => {
    const socket = net.connect(server.port, server.host);
    let answer = '';
    socket.on('data', (d) => { answer += d.toString('latin1'); });
    socket.on('error', () => {});
    socket.on('close', () => resolve(answer));
    socket.end(bytes);
  });
}
const statusOf = (answer) => Number(answer.split(' ')[1]);

const C = '/v1/completions', CHAT = '/v1/chat/completions';
try {
  // Authentication.
  await expectError('no API key', C, '{"prompt":"x"}', 401, /missing API key/, {});
  await expectError('wrong API key', C, '{"prompt":"x"}', 401, /invalid API key/,
                    {authorization: 'Bearer sk-wrong'});
  await expectError('not a Bearer header', C, '{"prompt":"x"}', 401, /Bearer/,
                    {authorization: 'Basic abc'});
  const ok = await post(C, '{"prompt":"x","max_tokens":2}');
  t.equal('right API key: 200', ok.status, 200);
  t.equal('/health needs no key', (await fetch(`${server.url}/health`)).status, 200);

  // Bodies that are not the JSON object we want.
  await expectError('truncated JSON', C, '{"prompt": "x", "max_tok', 400, /not valid JSON/);
  await expectError('not JSON', C, 'hello world', 400, /not valid JSON/);
  await expectError('empty body', C, '', 400, /not valid JSON/);
  await expectError('a JSON array', C, '[1,2]', 400, /must be a JSON object/);
  await expectError('invalid UTF-8', C, Buffer.from([0x7b, 0x22, 0x70, 0x72, 0x6f, 0x6d, 0x70,
    0x74, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]), 400, /not valid JSON|UTF-8/);

  // Wrong types and values, each naming its field.
  const wrong = [
    ['temperature as a string', C, {prompt: 'x', temperature: 'hot'}, /temperature/],
    ['max_tokens as a string', C, {prompt: 'x', max_tokens: '10'}, /max_tokens/],
    ['n as a float', C, {prompt: 'x', n: 1.5}, /n: /],
    ['n = 0', C, {prompt: 'x', n: 0}, /n: /],
    ['stream as a string', C, {prompt: 'x', stream: 'yes'}, /stream/],
    ['stop as a number', C, {prompt: 'x', stop: 5}, /stop/],
    ['prompt as an object', C, {prompt: {}}, /prompt/],
    ['no prompt', C, {max_tokens: 3}, /prompt: required/],
    ['mixed prompt list', C, {prompt: ['a', 1]}, /prompt\[1\]/],
    ['negative token id', C, {prompt: [1, -2]}, /prompt\[1\]/],
    ['token id past the vocabulary', C, {prompt: [1, 99999999]}, /vocabulary/],
    ['top_p 0', C, {prompt: 'x', top_p: 0}, /top_p/],
    ['logprobs 21', C, {prompt: 'x', logprobs: 21}, /logprobs/],
    ['echo', C, {prompt: 'x', echo: true}, /echo/],
    ['messages as a string', CHAT, {messages: 'hi'}, /messages/],
    ['empty messages', CHAT, {messages: []}, /messages/],
    ['message without a role', CHAT, {messages: [{content: 'hi'}]}, /messages\[0\]\.role/],
    ['image content part', CHAT, {messages: [{role: 'user', content: [{type: 'image_url'}]}]},
     /not supported/],
    ['top_logprobs without logprobs', CHAT, {messages: [{role: 'user', content: 'x'}],
                                             top_logprobs: 2}, /top_logprobs/],
    ['tools', CHAT, {messages: [{role: 'user', content: 'x'}], tools: [{type: 'function'}]},
     /tools/],
  ];
  for (const [name, route, body, pattern] of wrong) {
    await expectError(name, route, JSON.stringify(body), 400, pattern);
  }
  // Huge numbers.
  await expectError('max_tokens 1e30', C, '{"prompt":"x","max_tokens":1e30}', 400, /max_tokens/);
  await expectError('n 2^70', C, '{"prompt":"x","n":1180591620717411303424}', 400, /n: /);
  await expectError('top_k 2^40', C, '{"prompt":"x","top_k":1099511627776}', 400, /top_k/);
  await expectError('temperature 1e308', C, '{"prompt":"x","temperature":1e308}', 400,
                    /temperature/);
  await expectError('seed 1e400 (overflows a double)', C, '{"prompt":"x","seed":1e400}', 400,
                    /not valid JSON/);
  // Limits.
  await expectError('unknown model', C, '{"prompt":"x","model":"gpt-9"}', 404, /does not exist/);
  await expectError('max_tokens above --max-tokens-limit', C, '{"prompt":"x","max_tokens":101}',
                    400, /limit of 100/);
  await expectError('prompt longer than the context', C,
                    JSON.stringify({prompt: Array(2048).fill(17), max_tokens: 1}), 400,
                    /maximum context length is 2048/);
  await expectError('10 MB body', C, JSON.stringify({prompt: 'a'.repeat(10 << 20)}), 413,
                    /exceeds this server's limit/);
  // Concurrency: two long streams fill the limit; the third request is refused with 429.
  const controllers = [new AbortController(), new AbortController()];
  const long = controllers.map((c) => fetch(`${server.url}${C}`, {
    method: 'POST', signal: c.signal, headers: {'content-type': 'application/json', ...auth},
    body: JSON.stringify({prompt: 'long', max_tokens: 100, ignore_eos: true, temperature: 0,
                          stream: true})}));
  const opened = await Promise.all(long);
  t.equal('two streams admitted', opened.map((r) => r.status), [200, 200]);
  await expectError('third concurrent request', C, '{"prompt":"x","max_tokens":1}', 429,
                    /too many concurrent requests/);
  for (const c of controllers) c.abort();
  await waitForMetrics(server.url, (m) => m.sparkstack_active_requests === 0);

  // HTTP-level garbage.
  t.equal('malformed request line: 400', statusOf(await raw('GARBAGE\r\n\r\n')), 400);
  t.equal('20 KB header: 431', statusOf(await raw(
      `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20000)}\r\n\r\n`)), 431);
  t.equal('bad Content-Length: 400', statusOf(await raw(
      'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n')), 400);
  t.equal('GET on completions: 405', (await fetch(`${server.url}${C}`, {headers: auth})).status,
          405);
  t.equal('unknown route: 404', (await post('/v2/nothing', '{}')).status, 404);

  // gRPC: authentication and the message size limit.
  const definition = protoLoader.loadSync(
      path.join(sourceDir, 'proto/sparkstack/v1/inference.proto'),
      {keepCase: true, longs: String, enums: String, oneofs: true});
  const {Inference} = grpc.loadPackageDefinition(definition).sparkstack.v1;
  const client = new Inference(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
  const call = (method, request, key) => new Promise((resolve) => {
    const md = new grpc.Metadata();
    if (key) md.set('authorization', `Bearer ${key}`);
    client[method](request, md, (error, response) => resolve({error, response}));
  });
  t.equal('gRPC without a key: UNAUTHENTICATED', (await call('Tokenize', {text: 'x'})).error?.code,
          grpc.status.UNAUTHENTICATED);
  t.equal('gRPC with a wrong key: UNAUTHENTICATED',
          (await call('Tokenize', {text: 'x'}, 'nope')).error?.code, grpc.status.UNAUTHENTICATED);
  const tok = await call('Tokenize', {text: 'x'}, 'sk-test-0123456789');
  t.check('gRPC with the key: OK', !tok.error && tok.response.token_ids.length > 0);
  t.equal('gRPC Health needs no key', (await call('Health', {})).response?.status, 'SERVING');
  const big = await call('Tokenize', {text: 'a'.repeat(3 << 20)}, 'sk-test-0123456789');
  t.equal('gRPC message over the limit: RESOURCE_EXHAUSTED', big.error?.code,
          grpc.status.RESOURCE_EXHAUSTED);
  const stream = await new Promise((resolve) => {
    const s = client.Generate({text: 'x'});  // no key
    s.on('data', () => {});
    s.on('error', (e) => resolve(e.code));
    s.on('end', () => resolve('end'));
  });
  t.equal('gRPC Generate without a key: UNAUTHENTICATED', stream, grpc.status.UNAUTHENTICATED);
  client.close();

  // Still healthy, still correct.
  t.equal('healthy afterwards', (await fetch(`${server.url}/health`)).status, 200);
  const after = await post(C, '{"prompt":"Hello","max_tokens":4,"temperature":0}');
  t.equal('serves afterwards', [after.status, after.json?.usage?.completion_tokens], [200, 4]);
  const m = await metrics(server.url);
  t.check('refusals counted by outcome', m['sparkstack_requests_total{outcome="unauthenticated"}'] >= 3 &&
          m['sparkstack_requests_total{outcome="invalid"}'] >= 20 &&
          m['sparkstack_requests_total{outcome="rejected"}'] >= 1, JSON.stringify(m));
} catch (e) {
  t.check(`unexpected error: ${e.stack}`, false);
}
t.equal('serve exits 0 on SIGTERM', await server.stop(), 0);
t.close(() => fs.rmSync(work, {recursive: true, force: true}));
