import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import type { BalancedService, Endpoint } from '../../src/lb/types';
import {
  HOST,
  cleanups,
  closeServer,
  closedPort,
  fetchText,
  keepAliveRequest,
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

describe('http mode', () => {
  test('spreads requests round robin over several backends', async () => {
    const backends = await Promise.all(['p1', 'p2', 'p3'].map((id) => startBackend(id)));
    const lb = startBalancer();
    const report = await lb.sync([service('default/rr', backends.map((b) => b.endpoint()))]);
    const port = portOf(report, 'default/rr');

    const bodies: string[] = [];
    for (let i = 0; i < 6; i++) bodies.push((await fetchText(port)).body);
    assert.deepEqual(bodies, ['p1', 'p2', 'p3', 'p1', 'p2', 'p3']);
  });

  test('replaces a client X-Forwarded-For unless the peer is a trusted proxy', async () => {
    const backend = await startBackend('p1');
    const plain = startBalancer();
    const trusting = startBalancer({ trusted: ['127.0.0.0/8'] });
    const svc = service('default/xff', [backend.endpoint()]);
    const plainPort = portOf(await plain.sync([svc]), 'default/xff');
    const trustingPort = portOf(await trusting.sync([svc]), 'default/xff');
    const headers = { 'x-forwarded-for': '6.6.6.6', host: 'shop.example' };

    await fetchText(plainPort, { headers });
    await fetchText(trustingPort, { headers });
    assert.equal(backend.seen[0]['x-forwarded-for'], '127.0.0.1');
    assert.equal(backend.seen[0]['x-forwarded-proto'], 'http');
    assert.equal(backend.seen[0]['x-forwarded-host'], 'shop.example');
    assert.equal(backend.seen[1]['x-forwarded-for'], '6.6.6.6, 127.0.0.1');
  });

  test('answers 503 naming the service when no endpoint is ready', async () => {
    const lb = startBalancer();
    const backend = await startBackend('p1');
    const report = await lb.sync([
      service('default/empty', []),
      service('default/draining', [backend.endpoint(true)]),
    ]);

    const empty = await fetchText(portOf(report, 'default/empty'));
    const draining = await fetchText(portOf(report, 'default/draining'));
    assert.equal(empty.status, 503);
    assert.match(empty.body, /default\/empty/);
    assert.equal(draining.status, 503);
    assert.equal(backend.seen.length, 0);
    assert.equal(lb.metrics()['default/empty'].errors, 1);
  });

  test('retries a refused connection once on another endpoint', async () => {
    const live = await startBackend('live');
    const dead: Endpoint = { id: 'dead', host: HOST, port: await closedPort(), nodeName: 'n' };
    const lb = startBalancer();
    const report = await lb.sync([service('default/retry', [dead, live.endpoint()])]);
    const port = portOf(report, 'default/retry');

    const replies = [await fetchText(port), await fetchText(port, { method: 'POST' })];
    replies.push(await fetchText(port), await fetchText(port));
    assert.deepEqual(replies.map((r) => r.status), [200, 200, 200, 200]);
    assert.deepEqual(replies.map((r) => r.body), ['live', 'live', 'live', 'live']);
    assert.equal(lb.metrics()['default/retry'].errors, 0);
  });

  test('answers 502 when the only endpoint refuses', async () => {
    const dead: Endpoint = { id: 'dead', host: HOST, port: await closedPort(), nodeName: 'n' };
    const lb = startBalancer();
    const port = await listenPort(lb, service('default/dead', [dead]));
    const reply = await fetchText(port);
    assert.equal(reply.status, 502);
    assert.match(reply.body, /default\/dead/);
  });

  test('rejects a request with both Content-Length and Transfer-Encoding', async () => {
    const backend = await startBackend('p1');
    const lb = startBalancer();
    const port = await listenPort(lb, service('default/smuggle', [backend.endpoint()]));

    const reply = await rawExchange(
      port,
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n' +
        'Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n',
    );
    assert.match(reply, /^HTTP\/1\.1 400 /);
    assert.equal(backend.seen.length, 0);
  });

  test('answers 431 to a request head over the size limit', async () => {
    const backend = await startBackend('p1');
    const lb = startBalancer();
    const port = await listenPort(lb, service('default/big', [backend.endpoint()]));
    const reply = await rawExchange(
      port,
      `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
    );
    assert.match(reply, /^HTTP\/1\.1 431 /);
  });

  test('closes a connection whose request head arrives too slowly', async () => {
    const backend = await startBackend('p1');
    const lb = startBalancer({ timeouts: { headersMs: 300 } });
    const port = await listenPort(lb, service('default/slow', [backend.endpoint()]));

    const started = Date.now();
    const reply = await rawExchange(port, 'GET / HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n');
    assert.match(reply, /^HTTP\/1\.1 408 /);
    assert.ok(Date.now() - started < 3000, 'closed within the headers timeout');
    assert.equal(backend.seen.length, 0);
  });
});

describe('draining', () => {
  test('gives a terminating endpoint no new requests but finishes its slow response', async () => {
    let finishSlow: () => void = () => undefined;
    const old = await startBackend('old', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('part one, ');
      finishSlow = () => res.end('part two');
    });
    cleanups.push(() => finishSlow());
    const fresh = await startBackend('new');
    const lb = startBalancer();
    const svc = (endpoints: Endpoint[]) => service('default/drain', endpoints);
    const port = portOf(await lb.sync([svc([old.endpoint()])]), 'default/drain');

    const arrived = once(old.server, 'request');
    const inflight = fetchText(port);
    await arrived;
    await lb.sync([svc([old.endpoint(true), fresh.endpoint()])]);
    const idle = lb.waitIdle('old', 5000);
    const during = [await fetchText(port), await fetchText(port)];
    assert.deepEqual(during.map((r) => r.body), ['new', 'new']);

    finishSlow();
    assert.equal((await inflight).body, 'part one, part two');
    assert.equal(await idle, true);
    assert.equal(old.seen.length, 1);
  });

  test('closes idle keep-alive connections to an endpoint once it terminates', async () => {
    const old = await startBackend('old');
    const lb = startBalancer();
    const svc = (endpoints: Endpoint[]) => service('default/idle', endpoints);
    const port = portOf(await lb.sync([svc([old.endpoint()])]), 'default/idle');
    const pooled = once(old.server, 'connection') as Promise<[net.Socket]>;
    await fetchText(port);
    const [socket] = await pooled;
    assert.equal(socket.destroyed, false, 'the balancer keeps the connection pooled');

    const closed = once(socket, 'close');
    await lb.sync([svc([old.endpoint(true)])]);
    await closed;
  });

  test('waitIdle answers at once with nothing in flight and false on timeout', async () => {
    let release: () => void = () => undefined;
    const hang = await startBackend('hang', (_req, res) => {
      release = () => res.end('late');
    });
    cleanups.push(() => release());
    const lb = startBalancer();
    const port = await listenPort(lb, service('default/hang', [hang.endpoint()]));
    assert.equal(await lb.waitIdle('hang', 1000), true);

    const arrived = once(hang.server, 'request');
    const pending = fetchText(port);
    await arrived;
    assert.equal(await lb.waitIdle('hang', 50), false);
    release();
    await pending;
    assert.equal(await lb.waitIdle('hang', 1000), true);
  });
});

describe('upgrade and streaming', () => {
  test('tunnels an upgraded connection both ways', async () => {
    const backend = await startBackend('ws');
    backend.server.on('upgrade', (_req, socket: net.Socket) => {
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n',
      );
      socket.pipe(socket);
    });
    const lb = startBalancer();
    const port = await listenPort(lb, service('default/ws', [backend.endpoint()]));

    const socket = net.connect(port, HOST);
    cleanups.push(() => void socket.destroy());
    socket.write('GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
    const [head] = (await once(socket, 'data')) as [Buffer];
    assert.match(head.toString(), /^HTTP\/1\.1 101 /);
    socket.write('ping');
    const [echo] = (await once(socket, 'data')) as [Buffer];
    assert.equal(echo.toString(), 'ping');
    assert.equal(await lb.waitIdle('ws', 10), false, 'the tunnel counts as in flight');
    socket.end();
    assert.equal(await lb.waitIdle('ws', 2000), true);
  });

  test('passes a refused upgrade answer on at once', async () => {
    const backend = await startBackend('plain', (_req, res) => {
      res.writeHead(403, { 'content-type': 'text/plain' }).end('no upgrades here');
    });
    const lb = startBalancer();
    const port = await listenPort(lb, service('default/noup', [backend.endpoint()]));
    const reply = await rawExchange(
      port,
      'GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
    );
    assert.match(reply, /^HTTP\/1\.1 403 /);
    assert.match(reply, /no upgrades here$/);
  });
});

describe('sync', { timeout: 10_000 }, () => {
  test('adds, replaces and removes listeners without disturbing open ones', async () => {
    const backend = await startBackend('p1');
    const lb = startBalancer();
    const a = service('default/a', [backend.endpoint()]);
    const b = service('default/b', [backend.endpoint()]);
    const portA = portOf(await lb.sync([a]), 'default/a');

    const socket = net.connect(portA, HOST);
    cleanups.push(() => void socket.destroy());
    await once(socket, 'connect');
    assert.match(await keepAliveRequest(socket), /p1$/);

    const added = await lb.sync([a, b]);
    assert.equal(portOf(added, 'default/a'), portA);
    const portB = portOf(added, 'default/b');
    assert.match(await keepAliveRequest(socket), /p1$/);
    assert.equal((await fetchText(portB)).body, 'p1');

    const bTcp = service('default/b', [backend.endpoint()], { mode: 'tcp' });
    const replaced = await lb.sync([a, bTcp]);
    assert.equal(replaced.listeners.find((l) => l.key === 'default/b')?.mode, 'tcp');
    assert.match(await keepAliveRequest(socket), /p1$/);

    const removed = await lb.sync([a]);
    assert.deepEqual(removed.listeners.map((l) => l.key), ['default/a']);
    assert.match(await keepAliveRequest(socket), /p1$/);
    assert.equal(backend.server.listening, true);
    await assert.rejects(fetchText(portOf(replaced, 'default/b')), { code: 'ECONNREFUSED' });
  });

  test('reports a port it cannot bind instead of throwing', async () => {
    const squatter = net.createServer().listen(0, HOST);
    await once(squatter, 'listening');
    cleanups.push(() => closeServer(squatter));
    const taken = (squatter.address() as net.AddressInfo).port;
    const lb = startBalancer();

    const report = await lb.sync([
      service('default/taken', [], { port: taken }),
      service('default/free', []),
    ]);
    const failed = report.failed.map(({ key, host, port, code }) => ({ key, host, port, code }));
    assert.deepEqual(failed, [
      { key: 'default/taken', host: HOST, port: taken, code: 'EADDRINUSE' },
    ]);
    assert.equal(report.listeners.length, 1);
    assert.equal(report.listeners[0].key, 'default/free');
  });
});

describe('tcp mode', { timeout: 10_000 }, () => {
  async function startEchoCounter(): Promise<{ port: number; endpoint: Endpoint }> {
    // Answers only after the client half-closes, then closes its side.
    const server = net.createServer({ allowHalfOpen: true }, (socket) => {
      let received = 0;
      socket.on('data', (c: Buffer) => (received += c.length));
      socket.on('end', () => socket.end(`got ${received}`));
    });
    server.listen(0, HOST);
    await once(server, 'listening');
    cleanups.push(() => closeServer(server));
    const port = (server.address() as net.AddressInfo).port;
    return { port, endpoint: { id: 'tcp-1', host: HOST, port, nodeName: 'n' } };
  }

  test('passes a half-close through and still delivers the reply', async () => {
    const backend = await startEchoCounter();
    const lb = startBalancer();
    const report = await lb.sync([service('default/tcp', [backend.endpoint], { mode: 'tcp' })]);
    const port = portOf(report, 'default/tcp');
    const socket = net.connect({ port, host: HOST, allowHalfOpen: true });
    let reply = '';
    socket.on('data', (c: Buffer) => (reply += c.toString()));
    socket.end('x'.repeat(100_000));
    await once(socket, 'end');
    assert.equal(reply, 'got 100000');
    assert.equal(lb.metrics()['default/tcp'].requests, 1);
  });

  test('accepts and closes at once when no endpoint is ready', async () => {
    const lb = startBalancer();
    const report = await lb.sync([service('default/none', [], { mode: 'tcp' })]);
    const reply = await rawExchange(portOf(report, 'default/none'), 'hello');
    assert.equal(reply, '');
    assert.equal(lb.metrics()['default/none'].errors, 1);
  });

  test('retries a refused connection on another endpoint', async () => {
    const backend = await startEchoCounter();
    const dead: Endpoint = { id: 'dead', host: HOST, port: await closedPort(), nodeName: 'n' };
    const lb = startBalancer();
    const svc = service('default/tcp-retry', [dead, backend.endpoint], { mode: 'tcp' });
    const port = portOf(await lb.sync([svc]), 'default/tcp-retry');
    const socket = net.connect({ port, host: HOST, allowHalfOpen: true });
    let reply = '';
    socket.on('data', (c: Buffer) => (reply += c.toString()));
    socket.end('abc');
    await once(socket, 'end');
    assert.equal(reply, 'got 3');
  });
});
