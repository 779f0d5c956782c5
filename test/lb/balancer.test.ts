import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { Readable } from 'node:stream';
import { after, describe, test } from 'node:test';
import pino from 'pino';
import { Balancer } from '../../src/lb/balancer';
import type {
  BalancedMode,
  BalancedService,
  BalancerTimeouts,
  Endpoint,
  SyncReport,
} from '../../src/lb/types';

const HOST = '127.0.0.1';
const cleanups: Array<() => Promise<unknown> | void> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

interface Backend {
  id: string;
  port: number;
  server: http.Server;
  /** Request headers in arrival order. */
  seen: http.IncomingHttpHeaders[];
  endpoint(terminating?: boolean): Endpoint;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

function answerWithId(id: string): Handler {
  return (req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'x-backend': id, 'content-length': Buffer.byteLength(id) });
      res.end(id);
    });
  };
}

async function startBackend(id: string, handler: Handler = answerWithId(id)): Promise<Backend> {
  const server = http.createServer();
  const seen: http.IncomingHttpHeaders[] = [];
  server.on('request', (req, res) => {
    seen.push(req.headers);
    handler(req, res);
  });
  server.listen(0, HOST);
  await once(server, 'listening');
  cleanups.push(() => closeServer(server));
  const port = (server.address() as net.AddressInfo).port;
  const endpoint = (terminating = false): Endpoint => ({
    id,
    host: HOST,
    port,
    nodeName: 'node-1',
    terminating,
  });
  return { id, port, server, seen, endpoint };
}

function closeServer(server: net.Server): Promise<void> {
  if (server instanceof http.Server) server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

function startBalancer(opts: { timeouts?: Partial<BalancerTimeouts>; trusted?: string[] } = {}) {
  const lb = new Balancer({
    logger: pino({ level: 'silent' }),
    timeouts: opts.timeouts,
    trustedProxies: opts.trusted,
  });
  cleanups.push(() => lb.close());
  return lb;
}

function service(
  key: string,
  endpoints: Endpoint[],
  opts: { mode?: BalancedMode; port?: number; name?: string } = {},
): BalancedService {
  const listen = [{ host: HOST, port: opts.port ?? 0 }];
  const mode = opts.mode ?? 'http';
  return { key, ports: [{ name: opts.name ?? 'http', mode, listen, endpoints }] };
}

function portOf(report: SyncReport, key: string): number {
  const listener = report.listeners.find((l) => l.key === key);
  assert.ok(listener, `no listener for ${key}: ${JSON.stringify(report)}`);
  return listener.boundPort;
}

async function listenPort(lb: Balancer, svc: BalancedService): Promise<number> {
  return portOf(await lb.sync([svc]), svc.key);
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function fetchText(port: number, options: http.RequestOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: HOST, port, agent: false, ...options }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Sends raw bytes and collects everything until the server closes. */
async function rawExchange(port: number, data: string): Promise<string> {
  const socket = net.connect(port, HOST);
  let text = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (text += chunk));
  socket.write(data);
  await once(socket, 'close');
  return text;
}

/** Reads one HTTP response with a content-length from a kept-open socket. */
function readResponse(socket: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(text);
      if (end >= 0 && length && text.length >= end + 4 + Number(length[1])) {
        socket.off('data', onData);
        resolve(text);
      }
    };
    socket.on('data', onData);
  });
}

async function keepAliveRequest(socket: net.Socket): Promise<string> {
  const reply = readResponse(socket);
  socket.write(`GET / HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
  return reply;
}

async function closedPort(): Promise<number> {
  const server = net.createServer().listen(0, HOST);
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  await closeServer(server);
  return port;
}

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

  test('streams a large upload without buffering it', async (t) => {
    const total = 384 * 1024 * 1024;
    const backend = await startBackend('sink', (req, res) => {
      let received = 0;
      req.on('data', (chunk: Buffer) => (received += chunk.length));
      req.on('end', () => res.end(String(received)));
    });
    const lb = startBalancer();
    const port = await listenPort(lb, service('default/upload', [backend.endpoint()]));

    const chunk = Buffer.alloc(64 * 1024, 7);
    let sent = 0;
    const source = new Readable({
      read() {
        sent += chunk.length;
        this.push(sent <= total ? chunk : null);
      },
    });
    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    let rssPeak = rssBefore;
    const sampler = setInterval(() => {
      rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
    }, 20);
    const started = performance.now();
    const reply = await new Promise<string>((resolve, reject) => {
      const req = http.request({ host: HOST, port, method: 'POST', agent: false }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve(body));
      });
      req.on('error', reject);
      source.pipe(req);
    });
    clearInterval(sampler);
    const seconds = (performance.now() - started) / 1000;

    assert.equal(Number(reply), total);
    const growthMiB = (rssPeak - rssBefore) / 1024 / 1024;
    t.diagnostic(
      `upload ${total / 2 ** 20} MiB in ${seconds.toFixed(2)} s, ` +
        `rss growth ${growthMiB.toFixed(1)} MiB`,
    );
    assert.ok(growthMiB < 64, `rss grew by ${growthMiB.toFixed(1)} MiB`);
  });
});

describe('affinity', () => {
  test('keeps a client on one endpoint and moves it when that endpoint is removed', async () => {
    const backends = await Promise.all(['a1', 'a2', 'a3'].map((id) => startBackend(id)));
    const lb = startBalancer();
    const svc = (list: Backend[]): BalancedService => ({
      ...service('default/sticky', list.map((b) => b.endpoint())),
      affinity: { type: 'ClientIP', timeoutSeconds: 60 },
    });
    const port = portOf(await lb.sync([svc(backends)]), 'default/sticky');
    const headers = { 'x-forwarded-for': '203.0.113.1' };

    const first = new Set<string>();
    for (let i = 0; i < 4; i++) first.add((await fetchText(port, { headers })).body);
    assert.equal(first.size, 1);
    const [stuck] = first;

    await lb.sync([svc(backends.filter((b) => b.id !== stuck))]);
    const second = new Set<string>();
    for (let i = 0; i < 4; i++) second.add((await fetchText(port)).body);
    assert.equal(second.size, 1);
    assert.ok(!second.has(stuck));
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
