/**
 * Backends, balancers and raw clients shared by the balancer tests. Every
 * server and balancer made here is closed by `runCleanups`, which each test
 * file calls from after().
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import pino from 'pino';
import { Balancer } from '../../src/lb/balancer';
import type {
  BalancedMode,
  BalancedService,
  BalancerTimeouts,
  Endpoint,
  SyncReport,
} from '../../src/lb/types';

/** The address every backend and balancer of these tests listens on. */
export const HOST = '127.0.0.1';

/** Closers run in reverse order by `runCleanups`. */
export const cleanups: Array<() => Promise<unknown> | void> = [];

/** Runs and forgets every registered cleanup, last registered first. */
export async function runCleanups(): Promise<void> {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
}

/** A test HTTP server standing for one endpoint. */
export interface Backend {
  id: string;
  port: number;
  server: http.Server;
  /** Request headers in arrival order. */
  seen: http.IncomingHttpHeaders[];
  endpoint(terminating?: boolean): Endpoint;
}

/** How a backend answers. */
export type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** Answers every request with the backend's id as body and x-backend. */
export function answerWithId(id: string): Handler {
  return (req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'x-backend': id, 'content-length': Buffer.byteLength(id) });
      res.end(id);
    });
  };
}

/** Starts a backend on HOST and an ephemeral port. */
export async function startBackend(
  id: string,
  handler: Handler = answerWithId(id),
): Promise<Backend> {
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

/** Closes a server and every connection it holds. */
export function closeServer(server: net.Server): Promise<void> {
  if (server instanceof http.Server) server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** A balancer with silent logs, closed after the file's tests. */
export function startBalancer(
  opts: { timeouts?: Partial<BalancerTimeouts>; trusted?: string[] } = {},
): Balancer {
  const lb = new Balancer({
    logger: pino({ level: 'silent' }),
    timeouts: opts.timeouts,
    trustedProxies: opts.trusted,
  });
  cleanups.push(() => lb.close());
  return lb;
}

/** A one-port service listening on HOST. */
export function service(
  key: string,
  endpoints: Endpoint[],
  opts: { mode?: BalancedMode; port?: number; name?: string } = {},
): BalancedService {
  const listen = [{ host: HOST, port: opts.port ?? 0 }];
  const mode = opts.mode ?? 'http';
  return { key, ports: [{ name: opts.name ?? 'http', mode, listen, endpoints }] };
}

/** The port bound for `key` in a sync report. */
export function portOf(report: SyncReport, key: string): number {
  const listener = report.listeners.find((l) => l.key === key);
  assert.ok(listener, `no listener for ${key}: ${JSON.stringify(report)}`);
  return listener.boundPort;
}

/** Syncs one service and returns its bound port. */
export async function listenPort(lb: Balancer, svc: BalancedService): Promise<number> {
  return portOf(await lb.sync([svc]), svc.key);
}

/** A whole HTTP response. */
export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request on a new connection; resolves with the whole response. */
export function fetchText(port: number, options: http.RequestOptions = {}): Promise<Reply> {
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
export async function rawExchange(port: number, data: string): Promise<string> {
  const socket = net.connect(port, HOST);
  let text = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (text += chunk));
  socket.write(data);
  await once(socket, 'close');
  return text;
}

/** Reads one HTTP response with a content-length from a kept-open socket. */
export function readResponse(socket: net.Socket): Promise<string> {
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

/** Sends one GET on a kept-open socket and reads its response. */
export async function keepAliveRequest(socket: net.Socket): Promise<string> {
  const reply = readResponse(socket);
  socket.write(`GET / HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
  return reply;
}

/** A port on HOST that nothing listens on. */
export async function closedPort(): Promise<number> {
  const server = net.createServer().listen(0, HOST);
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  await closeServer(server);
  return port;
}

