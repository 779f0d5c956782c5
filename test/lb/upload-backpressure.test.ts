import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type net from 'node:net';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import {
  HOST,
  cleanups,
  closeServer,
  listenPort,
  runCleanups,
  service,
  startBalancer,
} from './helpers';

const MIB = 1024 ** 2;

after(runCleanups);

/**
 * The balancer must stream a request body: when the backend stops reading,
 * the client must stop being able to send. A balancer that buffered bodies
 * would accept the whole upload while the backend reads nothing. What may
 * sit between the two ends is kernel socket buffers on two hops and the
 * streams' own small buffers, a few MiB each on loopback; 64 MiB leaves
 * room for large socket buffers and is still a small part of the upload.
 * (The balancer's memory during a 1 GiB upload is measured by
 * scripts/bench/upload-memory.js.)
 */
test('a 1 GiB upload streams: a stalled backend stalls the client', async (t) => {
  const total = 1024 * MIB;
  const stallAfter = 8 * MIB;
  let received = 0;
  let backendRequest: http.IncomingMessage | undefined;
  const backend = http.createServer((req, res) => {
    backendRequest = req;
    req.on('data', (c: Buffer) => {
      received += c.length;
      if (received >= stallAfter && received - c.length < stallAfter) req.pause();
    });
    req.on('end', () => res.end(String(received)));
  });
  backend.listen(0, HOST);
  await once(backend, 'listening');
  cleanups.push(() => closeServer(backend));
  const backendPort = (backend.address() as net.AddressInfo).port;
  const sink = { id: 'sink', host: HOST, port: backendPort, nodeName: 'n' };
  const port = await listenPort(startBalancer(), service('default/upload', [sink]));

  let sent = 0;
  const chunk = Buffer.alloc(256 * 1024);
  const source = new Readable({
    read() {
      const n = Math.min(total - sent, chunk.length);
      sent += n;
      this.push(n > 0 ? chunk.subarray(0, n) : null);
    },
  });
  const response = new Promise<string>((resolve, reject) => {
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

  // Waits until the client has sent nothing new for half a second, which is
  // where backpressure holds it; a buffering balancer would let it finish.
  let last = -1;
  let stillFor = 0;
  for (let i = 0; i < 600 && stillFor < 500 && sent < total; i += 1) {
    await sleep(50);
    stillFor = sent === last ? stillFor + 50 : 0;
    last = sent;
  }
  const inFlight = sent - received;
  t.diagnostic(`stalled with ${(inFlight / MIB).toFixed(1)} MiB between client and backend`);
  assert.ok(sent < total, `the client sent the whole ${total / MIB} MiB to a stalled backend`);
  assert.ok(
    inFlight < 64 * MIB,
    `${(inFlight / MIB).toFixed(1)} MiB sent but not received while the backend was stalled`,
  );

  backendRequest!.resume();
  assert.equal(await response, String(total));
});
