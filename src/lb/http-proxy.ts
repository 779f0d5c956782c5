import http, { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import {
  buildRequestHeaders,
  buildResponseHeaders,
  describeClient,
  type ClientSide,
} from './forwarding-headers';
import type { ListenerState, PortRoute } from './port-route';
import {
  REFUSED_RETRIES,
  isConnectFailure,
  isStaleConnection,
  type CodedError,
} from './socket-pipes';
import { proxyUpgrade } from './upgrade-proxy';
import type { Endpoint } from './types';

// Safe to send twice: RFC 9110 9.2.2.
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** Creates the HTTP/1.1 reverse proxy server for one listener. */
export function createHttpServer(listener: ListenerState): http.Server {
  const { timeouts, limits } = listener.route.shared;
  const server = http.createServer({
    // Whole-request deadlines would cut slow uploads; only the head is timed.
    requestTimeout: 0,
    headersTimeout: timeouts.headersMs,
    keepAliveTimeout: timeouts.keepAliveMs,
    maxHeaderSize: limits.maxHeaderBytes,
    // Node only checks head deadlines this often, so keep it below them.
    connectionsCheckingInterval: Math.max(25, Math.min(1000, timeouts.headersMs / 4)),
    insecureHTTPParser: false,
    noDelay: true,
  });
  server.keepAliveTimeout = timeouts.keepAliveMs;
  // Node's default aborts a request in flight when the client half-closes
  // after sending it (nc, some HTTP/1.0 clients); this lets it finish and
  // closes once the response is out.
  (server as http.Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;

  server.on('connection', (socket: Socket) => {
    socket.once('close', listener.route.service.metrics.openConnection());
  });
  server.on('request', (req, res) => {
    new HttpExchange(listener, req, res).start();
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
    proxyUpgrade(listener, req, socket, head);
  });
  server.on('clientError', (err: CodedError, socket: Duplex) => {
    answerClientError(listener.route, err, socket);
  });
  return server;
}

/** Answers a request the parser rejected, then closes the connection. */
function answerClientError(route: PortRoute, err: CodedError, socket: Duplex): void {
  route.service.logger.debug({ code: err.code }, 'client request rejected');
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const status = clientErrorStatus(err.code);
  const head =
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
    'connection: close\r\ncontent-length: 0\r\n\r\n';
  socket.end(head, () => socket.destroy());
}

function clientErrorStatus(code: string | undefined): number {
  if (code === 'HPE_HEADER_OVERFLOW') return 431;
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return 408;
  return 400;
}

/** One proxied request: picks an endpoint, relays, retries once if safe. */
class HttpExchange {
  private readonly route: PortRoute;
  private readonly client: ClientSide;
  private readonly headers: string[];
  private readonly hasBody: boolean;
  /** Resends so far. */
  private resends = 0;

  constructor(
    private readonly listener: ListenerState,
    private readonly req: http.IncomingMessage,
    private readonly res: http.ServerResponse,
  ) {
    const route = listener.route;
    this.route = route;
    this.client = describeClient(route.shared.trusted, req.socket.remoteAddress);
    this.headers = buildRequestHeaders(req.rawHeaders, this.client);
    const length = req.headers['content-length'];
    this.hasBody =
      req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');

    const startedAt = performance.now();
    const metrics = route.service.metrics;
    metrics.countRequest();
    res.once('close', () => metrics.observeLatency(performance.now() - startedAt));
    req.on('error', () => undefined);
    res.on('error', () => undefined);
  }

  start(): void {
    const endpoint = this.route.pick(this.client.peer);
    if (!endpoint) {
      this.answer(503, `no ready endpoints for service ${this.route.service.key}\n`);
      return;
    }
    this.send(endpoint);
  }

  private send(endpoint: Endpoint): void {
    const release = this.route.shared.inflight.begin(endpoint.id);
    const relay = new ResponseRelay(this.res, {
      started: () => this.route.reportHealthy(endpoint),
      // A listener being removed lets the connection go after this response.
      keepAlive: () => !this.listener.closing,
      finished: release,
      failed: (err, responded) => {
        release();
        this.fail(endpoint, err, responded);
      },
    });
    const options: Dispatcher.DispatchOptions = {
      method: this.req.method ?? 'GET',
      path: this.req.url ?? '/',
      headers: this.headers,
      body: this.hasBody ? this.req : null,
      headersTimeout: this.route.shared.timeouts.responseHeadersMs,
      bodyTimeout: 0,
    };
    try {
      this.route.dispatcherFor(endpoint, this.req.socket).dispatch(options, relay);
    } catch (err) {
      relay.onResponseError(undefined, err as Error);
    }
  }

  private fail(endpoint: Endpoint, err: CodedError, responded: boolean): void {
    if (this.res.destroyed) return;
    if (responded) {
      // The head is out; a truncated body is the only honest signal left.
      this.res.destroy();
      return;
    }
    const refused = isConnectFailure(err);
    this.route.reportFailure(endpoint, err, refused);
    // A refused connect is retried elsewhere: nothing reached the backend,
    // and the refusing endpoint is ejected, so each try picks another (a
    // dead server can hold several endpoints). A pooled connection the
    // backend closed while idle may be followed by others it closed too
    // (busybox httpd closes every CGI connection silently), so those get a
    // few tries; each failed one leaves the pool.
    const limit = refused ? REFUSED_RETRIES : STALE_RESENDS;
    if (this.resends < limit && this.mayResend(err, refused)) {
      this.resends += 1;
      // A connection the backend closed while idle says nothing about the
      // backend itself, so with no other endpoint the same one gets a
      // second try on a fresh connection.
      const other =
        this.route.pick(this.client.peer, endpoint) ??
        (refused ? undefined : this.route.pick(this.client.peer));
      if (other) {
        this.send(other);
        return;
      }
    }
    this.answer(502, `bad gateway: service ${this.route.service.key} endpoint failed\n`);
  }

  private mayResend(err: CodedError, refused: boolean): boolean {
    // After a refused connect nothing reached the backend and the body is
    // still unread, whatever the method; a dropped reused connection may
    // have delivered the request, so only idempotent ones without a body.
    if (refused) return !this.req.readableDidRead;
    const method = this.req.method ?? '';
    return isStaleConnection(err) && IDEMPOTENT.has(method) && !this.hasBody;
  }

  private answer(status: number, text: string): void {
    this.route.service.metrics.countError();
    if (this.res.headersSent) {
      this.res.destroy();
      return;
    }
    // An unread body would otherwise be drained to keep the connection.
    const unread = this.hasBody && !this.req.complete;
    if (unread || this.listener.closing) this.res.setHeader('connection', 'close');
    this.res.writeHead(status, {
      'content-type': 'text/plain; charset=utf-8',
      'content-length': Buffer.byteLength(text),
    });
    this.res.end(text);
  }
}

/** Tries after a reused connection turned out closed. */
const STALE_RESENDS = 3;

/** Callbacks a relay reports to; each runs at most once per outcome. */
interface RelayEvents {
  started(): void;
  keepAlive(): boolean;
  finished(): void;
  failed(err: CodedError, responded: boolean): void;
}

/**
 * Streams one backend response to the client, pausing the backend while
 * the client is slow to read and aborting it if the client goes away.
 */
class ResponseRelay implements Dispatcher.DispatchHandler {
  private controller?: Dispatcher.DispatchController;
  private responded = false;
  private done = false;
  private clientGone = false;

  constructor(
    private readonly res: http.ServerResponse,
    private readonly events: RelayEvents,
  ) {
    res.once('close', () => {
      if (this.done) return;
      this.clientGone = true;
      this.controller?.abort(new Error('client closed the connection'));
    });
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.clientGone) controller.abort(new Error('client closed the connection'));
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
    statusMessage?: string,
  ): void {
    try {
      if (!this.events.keepAlive()) this.res.setHeader('connection', 'close');
      this.res.writeHead(statusCode, statusMessage || undefined, buildResponseHeaders(headers));
    } catch (err) {
      controller.abort(err as Error);
      return;
    }
    this.responded = true;
    this.events.started();
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.res.write(chunk)) return;
    controller.pause();
    this.res.once('drain', () => controller.resume());
  }

  onResponseEnd(): void {
    if (this.done) return;
    this.done = true;
    this.res.end();
    this.events.finished();
  }

  onResponseError(_controller: unknown, err: Error): void {
    if (this.done) return;
    this.done = true;
    this.events.failed(err as CodedError, this.responded);
  }
}
