import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import type { BalancedService } from '../../src/lb/types';
import {
  HOST,
  cleanups,
  closeServer,
  fetchText,
  listenPort,
  portOf,
  rawExchange,
  runCleanups,
  service,
  startBackend,
  startBalancer,
  type Backend,
} from './helpers';

after(runCleanups);

/** Answers `METHOD URL BODY`, after `delayMs` for paths naming it. */
function echoRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk: string) => (body += chunk));
  req.on('end', () => {
    const text = `${req.method} ${req.url} ${body}`;
    const delay = Number(/delay=(\d+)/.exec(req.url ?? '')?.[1] ?? 0);
    setTimeout(() => {
      res.writeHead(200, { 'content-length': Buffer.byteLength(text) });
      res.end(text);
    }, delay);
  });
}

/** Splits a stream of content-length responses into their bodies. */
function bodiesOf(stream: string): string[] {
  const bodies: string[] = [];
  let rest = stream;
  while (rest.length > 0) {
    const end = rest.indexOf('\r\n\r\n');
    assert.ok(end >= 0, `incomplete head in ${JSON.stringify(rest)}`);
    const length = Number(/content-length: (\d+)/i.exec(rest.slice(0, end))?.[1]);
    bodies.push(rest.slice(end + 4, end + 4 + length));
    rest = rest.slice(end + 4 + length);
  }
  return bodies;
}

describe('pipelining', () => {
  test('answers pipelined requests in order without a body leaking into the next', async () => {
    const backend = await startBackend('echo', echoRequest);
    const lb = startBalancer();
    const port = await listenPort(lb, service('default/pipe', [backend.endpoint()]));

    // The first answer is the slowest: out-of-order relaying would show.
    const stream = await rawExchange(
      port,
      'GET /one?delay=150 HTTP/1.1\r\nHost: x\r\n\r\n' +
        'POST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world' +
        'POST /three HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n' +
        '4\r\nGET \r\n7\r\n/smuggl\r\n0\r\n\r\n' +
        'GET /four HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    assert.deepEqual(bodiesOf(stream), [
      'GET /one?delay=150 ',
      'POST /two hello world',
      'POST /three GET /smuggl',
      'GET /four ',
    ]);
    assert.equal(backend.seen.length, 4);
  });
});

describe('half-closing clients', () => {
  test('answers a client that half-closes right after its request', async () => {
    const backend = await startBackend('late', (req, res) => {
      req.resume();
      setTimeout(() => res.end('late answer'), 100);
    });
    const lb = startBalancer();
    const port = await listenPort(lb, service('default/half', [backend.endpoint()]));

    const socket = net.connect({ port, host: HOST, allowHalfOpen: true });
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString()));
    socket.end('GET / HTTP/1.0\r\nHost: x\r\n\r\n');
    await once(socket, 'close');
    assert.match(text, /^HTTP\/1\.1 200 [\s\S]*late answer$/);
  });
});

describe('failing backends', () => {
  test('retries on a fresh connection when a backend drops an idle one unannounced', async () => {
    // Like busybox httpd's CGI answers: no "connection: close", and the
    // connection closed a moment later, whatever arrived on it meanwhile.
    const backend = net.createServer((socket) => {
      socket.once('data', () => {
        socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
        setTimeout(() => socket.destroy(), 20);
      });
    });
    backend.listen(0, HOST);
    await once(backend, 'listening');
    cleanups.push(() => closeServer(backend));
    const endpoint = {
      id: 'closer',
      host: HOST,
      port: (backend.address() as net.AddressInfo).port,
      nodeName: 'n',
    };
    const lb = startBalancer();
    const port = await listenPort(lb, service('default/closer', [endpoint]));

    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push((await fetchText(port)).status);
    assert.deepEqual(new Set(statuses), new Set([200]));
    assert.equal(lb.metrics()['default/closer'].errors, 0);
  });

  test('ejects a backend killed under load and sends it nothing more', async () => {
    const survivor = await startBackend('survivor');
    const victim = await startBackend('victim');
    const lb = startBalancer({ timeouts: { ejectMs: 60_000 } });
    const svc = service('default/kill', [survivor.endpoint(), victim.endpoint()]);
    const port = portOf(await lb.sync([svc]), 'default/kill');
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    cleanups.push(() => agent.destroy());

    const fetchBatch = (n: number) =>
      Promise.all(Array.from({ length: n }, () => fetchText(port, { agent })));
    const before = await fetchBatch(20);
    assert.ok(before.some((r) => r.body === 'victim'));

    const killed = closeServer(victim.server);
    const during = await fetchBatch(40);
    await killed;
    // A server on the victim's port again: an ejected endpoint gets nothing.
    const revenant = http.createServer((_req, res) => res.end('revenant'));
    revenant.listen(victim.port, HOST);
    await once(revenant, 'listening');
    cleanups.push(() => closeServer(revenant));
    const after = await fetchBatch(40);

    for (const reply of [...during, ...after]) assert.equal(reply.status, 200, reply.body);
    assert.deepEqual(new Set(after.map((r) => r.body)), new Set(['survivor']));
    assert.equal(lb.metrics()['default/kill'].errors, 0);
  });
});

describe('affinity', () => {
  const sticky = (list: Backend[]): BalancedService => ({
    ...service('default/sticky', list.map((b) => b.endpoint())),
    affinity: { type: 'ClientIP', timeoutSeconds: 60 },
  });

  test('keeps a client on one endpoint for 50 requests whatever X-Forwarded-For says', async () => {
    const backends = await Promise.all(['a1', 'a2', 'a3'].map((id) => startBackend(id)));
    const lb = startBalancer();
    const port = portOf(await lb.sync([sticky(backends)]), 'default/sticky');

    const bodies = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const spoofed = { 'x-forwarded-for': `203.0.113.${i}`, 'x-real-ip': `198.51.100.${i}` };
      bodies.add((await fetchText(port, { headers: spoofed })).body);
    }
    assert.equal(bodies.size, 1, `answered by ${[...bodies]}`);
  });

  test('moves a sticky client when its endpoint is removed, then keeps it there', async () => {
    const backends = await Promise.all(['b1', 'b2', 'b3'].map((id) => startBackend(id)));
    const lb = startBalancer();
    const port = portOf(await lb.sync([sticky(backends)]), 'default/sticky');
    const stuck = (await fetchText(port)).body;

    await lb.sync([sticky(backends.filter((b) => b.id !== stuck))]);
    const moved = new Set<string>();
    for (let i = 0; i < 10; i++) moved.add((await fetchText(port)).body);
    assert.equal(moved.size, 1);
    assert.ok(!moved.has(stuck), `still on ${stuck}`);
  });
});
