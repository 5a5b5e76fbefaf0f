// 2,000 SSE streams held open at once: the engine runs 4 sequences and the rest wait, so almost
// every connection is an idle stream. The server's thread count must not grow with them (one
// connection never costs a thread: /proc/PID/status Threads) and its memory stays bounded (VmRSS
// per connection). Closing the client sockets aborts every request (/metrics: nothing running or
// waiting, no KV blocks held) and the server still serves.
// Usage: node idle_sse_test.mjs SPARKSTACK_BINARY NODE_MODULES_DIR
import fs from 'node:fs';
import http from 'node:http';
import {makeTinyModel, metrics, procStatus, startServer, Tally, waitForMetrics,
        workDir} from './serving_lib.mjs';
import {streamCompletion} from './sse_client.mjs';

const [bin, nodeModules] = process.argv.slice(2);
const t = new Tally();
const work = workDir('idle-sse');
const model = makeTinyModel(bin, nodeModules, work);
const kStreams = 2000;
const server = await startServer(bin, model, ['--max-num-seqs', '4',
                                              '--max-concurrent-requests', '4096']);

function openStream(i) {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({prompt: [1 + (i % 1000), 2, 3], max_tokens: 2000,
                                 temperature: 0, ignore_eos: true, stream: true});
    const req = http.request({host: server.host, port: server.port, path: '/v1/completions',
                              method: 'POST', agent: false,
                              headers: {'content-type': 'application/json',
                                        'content-length': Buffer.byteLength(body)}});
    req.on('response', (res) => {
      res.on('data', () => {});
      res.on('error', () => {});
      resolve({req, status: res.statusCode, type: res.headers['content-type']});
    });
    req.on('error', reject);
    req.end(body);
  });
}

try {
  const warm = await streamCompletion(server.url, {prompt: 'warm up', max_tokens: 2});
  t.equal('warm-up request', warm.status, 200);
  const before = procStatus(server.pid);
  const streams = [];
  for (let i = 0; i < kStreams; i += 200) {  // open in waves so the listen backlog keeps up
    streams.push(...await Promise.all(Array.from({length: Math.min(200, kStreams - i)},
                                                  (_, j) => openStream(i + j))));
  }
  t.equal(`${kStreams} streams open: 200 text/event-stream`,
          streams.filter((s) => s.status === 200 && s.type.startsWith('text/event-stream')).length,
          kStreams);
  // A slow machine may open the streams more slowly than the first few run to max_tokens: those
  // count as finished (the warm-up is one more).
  const finished = (x) => x['sparkstack_requests_total{outcome="finished"}'] - 1;
  const m = await metrics(server.url);
  t.equal('all admitted: every stream active or finished, 4 running and the rest waiting',
          [m.sparkstack_active_requests + finished(m), m.sparkstack_num_requests_running,
           m.sparkstack_num_requests_waiting], [kStreams, 4, m.sparkstack_active_requests - 4]);
  const during = procStatus(server.pid);
  const perStreamKiB = (during.rssMiB - before.rssMiB) * 1024 / kStreams;
  console.log(`threads ${before.threads} -> ${during.threads}; RSS ${before.rssMiB.toFixed(1)} -> ` +
              `${during.rssMiB.toFixed(1)} MiB (${perStreamKiB.toFixed(1)} KiB per stream)`);
  t.check('threads do not grow with connections', during.threads <= before.threads + 2,
          `${before.threads} -> ${during.threads}`);
  t.check('memory per idle stream < 64 KiB', perStreamKiB < 64, `${perStreamKiB} KiB`);

  for (const s of streams) s.req.destroy();
  const after = await waitForMetrics(server.url, (x) => x.sparkstack_active_requests === 0 &&
      x.sparkstack_num_requests_running === 0 && x.sparkstack_num_requests_waiting === 0 &&
      x.sparkstack_kv_blocks_used === 0, 30000);
  t.equal('clients gone: every request aborted, KV blocks freed',
          [after.sparkstack_active_requests, after.sparkstack_num_requests_running,
           after.sparkstack_num_requests_waiting, after.sparkstack_kv_blocks_used,
           after['sparkstack_requests_total{outcome="aborted"}'] + finished(after)],
          [0, 0, 0, 0, kStreams]);
  const health = await fetch(`${server.url}/health`);
  t.equal('healthy afterwards', health.status, 200);
  const again = await streamCompletion(server.url, {prompt: 'still here', max_tokens: 3});
  t.equal('serves afterwards', [again.status, again.framed], [200, true]);
  t.check('threads back to where they were', procStatus(server.pid).threads <= before.threads + 2);
} catch (e) {
  t.check(`unexpected error: ${e.stack}`, false);
}
t.equal('serve exits 0 on SIGTERM', await server.stop(), 0);
t.close(() => fs.rmSync(work, {recursive: true, force: true}));
