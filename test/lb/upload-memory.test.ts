import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import { HOST, closeServer } from './helpers';

const GIB = 1024 ** 3;
const MIB = 1024 ** 2;

let child: ChildProcess | undefined;
let backend: http.Server | undefined;
after(async () => {
  child?.kill();
  if (backend) await closeServer(backend);
});

/** Sends `bytes` of zeros as one POST; resolves with the response body. */
function upload(port: number, bytes: number): Promise<string> {
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
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve(body));
      },
    );
    req.on('error', reject);
    source.pipe(req);
  });
}

function ask(proc: ChildProcess): Promise<{ rss: number; peak: number }> {
  const reply = once(proc, 'message') as Promise<[{ rss: number; peak: number }]>;
  proc.send('rss');
  return reply.then(([m]) => m);
}

test('streams a 1 GiB upload with the balancer growing by tens of MiB at most', async (t) => {
  backend = http.createServer((req, res) => {
    let received = 0;
    req.on('data', (c: Buffer) => (received += c.length));
    req.on('end', () => res.end(String(received)));
  });
  backend.listen(0, HOST);
  await once(backend, 'listening');
  const backendPort = (backend.address() as net.AddressInfo).port;

  child = fork(path.join(__dirname, 'balancer-process.js'), [String(backendPort)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const [{ port }] = (await once(child, 'message')) as [{ port: number }];
  // A first small upload loads every code path, so the baseline includes them.
  assert.equal(await upload(port, 8 * MIB), String(8 * MIB));
  const before = await ask(child);

  const started = performance.now();
  assert.equal(await upload(port, GIB), String(GIB));
  const seconds = (performance.now() - started) / 1000;
  const { peak } = await ask(child);

  const growthMiB = (peak - before.rss) / MIB;
  t.diagnostic(
    `1 GiB in ${seconds.toFixed(1)} s; balancer rss ${(before.rss / MIB).toFixed(0)} MiB, ` +
      `peak growth ${growthMiB.toFixed(1)} MiB`,
  );
  assert.ok(growthMiB < 64, `balancer rss grew by ${growthMiB.toFixed(1)} MiB`);
});
