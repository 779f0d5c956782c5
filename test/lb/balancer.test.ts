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
    req.on('end', () => res.writeHead(200, { 'x-backend': id }).end(id));
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
  return { key, ports: [{ name: opts.name ?? 'http', mode: opts.mode ?? 'http', listen, endpoints }] };
}

function portOf(report: SyncReport, key: string): number {
  const listener = report.listeners.find((l) => l.key === key);
  assert.ok(listener, `no listener for ${key}: ${JSON.stringify(report)}`);
  return listener.boundPort;
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
    const port = portOf(await lb.sync([service('default/dead', [dead])]), 'default/dead');
    const reply = await fetchText(port);
    assert.equal(reply.status, 502);
    assert.match(reply.body, /default\/dead/);
  });

  test('rejects a request with both Content-Length and Transfer-Encoding', async () => {
    const backend = await startBackend('p1');
    const lb = startBalancer();
    const port = portOf(await lb.sync([service('default/smuggle', [backend.endpoint()])]), 'default/smuggle');

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
    const port = portOf(await lb.sync([service('default/big', [backend.endpoint()])]), 'default/big');
    const reply = await rawExchange(
      port,
      `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
    );
    assert.match(reply, /^HTTP\/1\.1 431 /);
  });

  test('closes a connection whose request head arrives too slowly', async () => {
    const backend = await startBackend('p1');
    const lb = startBalancer({ timeouts: { headersMs: 300 } });
    const port = portOf(await lb.sync([service('default/slow', [backend.endpoint()])]), 'default/slow');

    const started = Date.now();
    const reply = await rawExchange(port, 'GET / HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n');
    assert.match(reply, /^HTTP\/1\.1 408 /);
    assert.ok(Date.now() - started < 3000, 'closed within the headers timeout');
    assert.equal(backend.seen.length, 0);
  });
});
