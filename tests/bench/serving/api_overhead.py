#!/usr/bin/env python3
"""The cost of the API path against the offline engine on the same load.

Runs the same load (same prompts, lengths and seeds, from --seed) through the offline
`sparkstack bench` (engine in this process) and through `sparkstack bench --url` against
`sparkstack serve` (OpenAI HTTP, streaming SSE, loopback), in ABBA order, and prints for each mode
the median output throughput and latencies, and the CPU time per output token: the offline
process (its start-up, measured by a one-token run, subtracted), the server during the run, and
the client. The client shares the machine with the server. Usage:
  tests/bench/serving/api_overhead.py BINARY MODEL_DIR [--repeat N] [bench load flags...]
"""
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time

ENGINE = ['--threads', '2', '--kv-cache-bytes', '268435456']
LOAD = ['--num-prompts', '128', '--concurrency', '64', '--input-len', '64', '--output-len', '64',
        '--range-ratio', '0.5', '--seed', '7']


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def process_cpu(pid):
    fields = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def run_json(args):
    before = children_cpu()
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return json.loads(out), children_cpu() - before


def offline(bin, model, load, startup_cpu):
    report, cpu = run_json([bin, 'bench', '--model', model, *ENGINE, *load, '--json'])
    report['cpu_ms_per_token'] = {'engine': 1000 * (cpu - startup_cpu) / report['output_tokens']}
    return report


def online(bin, model, load):
    server = subprocess.Popen([bin, 'serve', '--model', model, '--port', '0', '--grpc-port', '-1',
                               *ENGINE], stderr=subprocess.PIPE, text=True)
    try:
        line = ''
        while 'ready' not in line:
            line = server.stderr.readline()
            if not line:
                raise RuntimeError('serve exited before it was ready')
        port = re.search(r'http [^ ]+:(\d+),', line).group(1)
        server_before = process_cpu(server.pid)
        report, client_cpu = run_json([bin, 'bench', '--url', f'http://127.0.0.1:{port}', *load,
                                       '--json'])
        server_cpu = process_cpu(server.pid) - server_before
        tokens = report['output_tokens']
        report['cpu_ms_per_token'] = {'server': 1000 * server_cpu / tokens,
                                      'client': 1000 * client_cpu / tokens}
        return report
    finally:
        server.terminate()
        server.wait(timeout=60)


def main():
    bin, model, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
    repeat = 2
    if rest[:1] == ['--repeat']:
        repeat, rest = int(rest[1]), rest[2:]
    load = LOAD + rest
    _, startup_cpu = run_json([bin, 'bench', '--model', model, *ENGINE, '--num-prompts', '1',
                               '--input-len', '1', '--output-len', '1', '--json'])
    runs = {'offline': [], 'api': []}
    for i in range(repeat):  # ABBA: drift in the machine's load hits both modes alike
        order = ('offline', 'api') if i % 2 == 0 else ('api', 'offline')
        for mode in order:
            runs[mode].append(offline(bin, model, load, startup_cpu) if mode == 'offline'
                              else online(bin, model, load))
    print(f'load: {" ".join(load)}; {repeat} runs each, medians; loadavg {os.getloadavg()[0]:.1f}')
    print('mode     out tok/s  TTFT p50/p99 ms     ITL p50/p99 ms    E2E p50/p99 ms     '
          'CPU ms/token')
    med = lambda mode, f: statistics.median(f(r) for r in runs[mode])
    for mode in ('offline', 'api'):
        cpu = {k: med(mode, lambda r, k=k: r['cpu_ms_per_token'][k])
               for k in runs[mode][0]['cpu_ms_per_token']}
        print(f'{mode:8} {med(mode, lambda r: r["output_tokens_per_s"]):9.1f} '
              f'{med(mode, lambda r: r["ttft_ms"]["p50"]):8.1f}/'
              f'{med(mode, lambda r: r["ttft_ms"]["p99"]):<8.1f} '
              f'{med(mode, lambda r: r["itl_ms"]["p50"]):7.2f}/'
              f'{med(mode, lambda r: r["itl_ms"]["p99"]):<8.2f} '
              f'{med(mode, lambda r: r["e2e_ms"]["p50"]):8.1f}/'
              f'{med(mode, lambda r: r["e2e_ms"]["p99"]):<8.1f} '
              + ' '.join(f'{k} {v:.3f}' for k, v in cpu.items()))
    ratio = med('api', lambda r: r['output_tokens_per_s']) / med(
        'offline', lambda r: r['output_tokens_per_s'])
    print(f'api / offline output throughput: {ratio:.3f} ({100 * (1 - ratio):+.1f}% cost)')


if __name__ == '__main__':
    main()
