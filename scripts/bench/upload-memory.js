#!/usr/bin/env node
'use strict';
/**
 * Measures how much memory the balancer takes to stream one large upload:
 *
 *   node scripts/bench/upload-memory.js [--gib N]
 *
 * Each proxy runs alone in a child process that samples its own RSS every
 * 10 ms. The same client sends N GiB (1 by default) of zeros in one POST
 * through it to the same backend, which counts the bytes. Two proxies run
 * in the same run: the baseline, Node's http module piping each request
 * to the backend (the least a streaming Node proxy can do), and Flotilla's
 * balancer in HTTP mode. Prints the peak RSS growth of each over an 8 MiB
 * warm-up upload, and the ratio. Needs a build (npx tsc). Bounded: two
 * uploads of N GiB, each refused after 120 s.
 */
const { fork } = require('node:child_process');
const { once } = require('node:events');
const http = require('node:http');
const path = require('node:path');
const { Readable } = require('node:stream');

const ROOT = path.resolve(__dirname, '..', '..');
const HOST = '127.0.0.1';
const MIB = 1024 ** 2;

function fail(message) {
  process.stderr.write(`upload-memory: error: ${message}\n`);
  process.exit(1);
}

/** The child: one proxy in front of BACKEND_PORT, answering "rss" with { rss, peak }. */
async function runProxy(kind, backendPort) {
  let port;
  if (kind === 'flotilla') {
    const pino = require('pino');
    const { Balancer } = require(path.join(ROOT, 'build', 'src', 'lb', 'balancer'));
    const lb = new Balancer({ logger: pino({ level: 'silent' }) });
    const endpoint = { id: 'sink', host: HOST, port: backendPort, nodeName: 'bench' };
    const listen = [{ host: HOST, port: 0 }];
    const report = await lb.sync([
      {
        key: 'default/upload',
        ports: [{ name: 'http', mode: 'http', listen, endpoints: [endpoint] }],
      },
    ]);
    port = report.listeners[0].boundPort;
  } else {
    const server = http.createServer((req, res) => {
      const upstream = http.request(
        { host: HOST, port: backendPort, method: req.method, path: req.url, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    });
    server.listen(0, HOST);
    await once(server, 'listening');
    port = server.address().port;
  }
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 10);
  process.on('message', () => {
    const rss = process.memoryUsage().rss;
    process.send({ rss, peak: Math.max(peak, rss) });
    peak = rss;
  });
  process.on('disconnect', () => {
    clearInterval(sampler);
    process.exit(0);
  });
  process.send({ port });
}

/** Sends `bytes` of zeros as one POST; resolves with the response body. */
function upload(port, bytes) {
  const chunk = Buffer.alloc(256 * 1024);
  let left = bytes;
  const source = new Readable({
    read() {
      const n = Math.min(left, chunk.length);
      left -= n;
      this.push(n > 0 ? chunk.subarray(0, n) : null);
    },
  });
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: HOST, port, method: 'POST', path: '/', agent: false },
      (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve(body));
      },
    );
    req.setTimeout(120_000, () => req.destroy(new Error('upload took over 120 s')));
    req.on('error', reject);
    source.pipe(req);
  });
}

async function ask(child) {
  const reply = once(child, 'message');
  child.send('rss');
  const [message] = await reply;
  return message;
}

async function measure(kind, backendPort, bytes) {
  const child = fork(__filename, ['--child', kind, String(backendPort)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  try {
    const [{ port }] = await once(child, 'message');
    // A first small upload loads every code path, so the baseline includes them.
    if ((await upload(port, 8 * MIB)) !== String(8 * MIB)) fail(`${kind}: warm-up lost bytes`);
    const before = await ask(child);
    const started = performance.now();
    if ((await upload(port, bytes)) !== String(bytes)) fail(`${kind}: upload lost bytes`);
    const seconds = (performance.now() - started) / 1000;
    const { peak } = await ask(child);
    return { kind, seconds, rss: before.rss, growth: peak - before.rss };
  } finally {
    child.kill();
  }
}

async function main() {
  const args = process.argv.slice(2);
  if (args[0] === '--child') return runProxy(args[1], Number(args[2]));
  let gib = 1;
  if (args[0] === '--gib') gib = Number(args[1]);
  else if (args.length > 0) fail('usage: upload-memory.js [--gib N]');
  if (!(gib > 0 && gib <= 16)) fail('--gib wants a number from 0 to 16');

  const backend = http.createServer((req, res) => {
    let received = 0;
    req.on('data', (c) => (received += c.length));
    req.on('end', () => res.end(String(received)));
  });
  backend.listen(0, HOST);
  await once(backend, 'listening');
  const backendPort = backend.address().port;
  const bytes = Math.round(gib * 1024 ** 3);
  const results = [];
  for (const kind of ['node-pipe', 'flotilla'])
    results.push(await measure(kind, backendPort, bytes));
  backend.close();

  for (const r of results) {
    console.log(
      `${r.kind.padEnd(10)} ${(bytes / MIB / r.seconds).toFixed(0).padStart(6)} MiB/s` +
        `  rss ${(r.rss / MIB).toFixed(0)} MiB, peak growth ${(r.growth / MIB).toFixed(1)} MiB`,
    );
  }
  const [base, ours] = results;
  const ratio = ours.growth / Math.max(base.growth, MIB);
  console.log(`flotilla/node-pipe peak growth ratio: ${ratio.toFixed(2)}`);
}

main().catch((err) => fail(err.message));
