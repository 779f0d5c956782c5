import http, { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { buildRequestHeaders, describeClient, type ClientSide } from './forwarding-headers';
import type { ListenerState, PortRoute } from './port-route';
import { connectWithHeader, connectionEnds, proxyHeader } from './proxy-protocol';
import type { Release } from './inflight';
import { answerRaw, isConnectFailure, limitConnect, tunnel, type CodedError } from './socket-pipes';
import { dialThrough } from './tunnel';
import type { Endpoint } from './types';

// Dropped from a refused upgrade's answer, which is sent with connection: close.
const REFUSAL_DROPPED = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
  'proxy-connection',
]);

/** Tunnels an Upgrade request (WebSocket and the like) to an endpoint. */
export function proxyUpgrade(
  listener: ListenerState,
  req: http.IncomingMessage,
  socket: Socket,
  head: Buffer,
): void {
  socket.on('error', () => socket.destroy());
  listener.route.service.metrics.countRequest();
  new UpgradeExchange(listener, req, socket, head).start();
}

/** One upgrade: a fresh backend connection that becomes a byte tunnel. */
class UpgradeExchange {
  private readonly route: PortRoute;
  private readonly client: ClientSide;
  private retried = false;

  constructor(
    private readonly listener: ListenerState,
    private readonly req: http.IncomingMessage,
    private readonly socket: Socket,
    private readonly head: Buffer,
  ) {
    this.route = listener.route;
    this.client = describeClient(this.route.shared.trusted, req.socket.remoteAddress);
  }

  start(): void {
    const endpoint = this.route.pick(this.client.peer);
    if (!endpoint) {
      this.answer(503, `no ready endpoints for service ${this.route.service.key}\n`);
      return;
    }
    this.connect(endpoint);
  }

  private connect(endpoint: Endpoint): void {
    const release = this.route.shared.inflight.begin(endpoint.id);
    const upgrade = this.req.headers.upgrade ?? '';
    const version = this.route.proxyProtocol;
    const header = version ? proxyHeader(version, connectionEnds(this.req.socket)) : undefined;
    const upReq = http.request({
      host: endpoint.host,
      port: endpoint.port,
      method: this.req.method,
      path: this.req.url,
      headers: buildRequestHeaders(this.req.rawHeaders, this.client, upgrade),
      // The connection becomes the tunnel, so it never goes back to a pool.
      agent: this.agentFor(endpoint, header),
    });
    upReq.on('socket', (s: Socket) => {
      limitConnect(s, this.route.shared.timeouts.connectMs, (err) => upReq.destroy(err));
    });
    const abandon = (): void => {
      upReq.destroy();
      release();
    };
    this.socket.once('close', abandon);
    upReq.once('upgrade', (res: http.IncomingMessage, upSocket: Socket, upHead: Buffer) => {
      this.socket.off('close', abandon);
      this.open(endpoint, res, upSocket, upHead, release);
    });
    upReq.once('response', (res) => this.relayRefusal(res, release));
    upReq.once('error', (err: CodedError) => {
      release();
      this.fail(endpoint, err);
    });
    upReq.end();
  }

  /** How the backend connection is made: plain, with a PROXY header, or tunnelled. */
  private agentFor(endpoint: Endpoint, header: Buffer | undefined): http.Agent | false {
    const { tunnel, timeouts } = this.route.shared;
    const via = endpoint.via;
    if (via) {
      return oneConnectionAgent((done) => {
        dialThrough(tunnel, { ...endpoint, via }, timeouts.connectMs, header).then(
          (socket) => done(null, socket),
          (err: Error) => done(err),
        );
        return undefined;
      });
    }
    if (!header) return false;
    return oneConnectionAgent(() => connectWithHeader(endpoint, header, timeouts.connectMs));
  }

  private open(
    endpoint: Endpoint,
    res: http.IncomingMessage,
    upSocket: Socket,
    upHead: Buffer,
    release: Release,
  ): void {
    this.route.reportHealthy(endpoint);
    this.socket.write(formatHead(res, () => true));
    if (upHead.length > 0) this.socket.write(upHead);
    if (this.head.length > 0) upSocket.write(this.head);

    const sockets = this.listener.sockets;
    sockets.add(this.socket).add(upSocket);
    tunnel(this.socket, upSocket, () => {
      sockets.delete(this.socket);
      sockets.delete(upSocket);
      release();
    });
  }

  /** Passes the backend's non-101 answer on at once, then closes. */
  private relayRefusal(res: http.IncomingMessage, release: Release): void {
    res.once('close', release);
    const head = formatHead(res, (name) => !REFUSAL_DROPPED.has(name));
    this.socket.write(head.replace(/\r\n\r\n$/, '\r\nconnection: close\r\n\r\n'));
    this.socket.once('finish', () => this.socket.destroy());
    res.pipe(this.socket);
  }

  private fail(endpoint: Endpoint, err: CodedError): void {
    if (this.socket.destroyed) return;
    const refused = isConnectFailure(err);
    this.route.reportFailure(endpoint, err, refused);
    if (refused && !this.retried) {
      this.retried = true;
      const other = this.route.pick(this.client.peer, endpoint);
      if (other) {
        this.connect(other);
        return;
      }
    }
    this.answer(502, `bad gateway: service ${this.route.service.key} endpoint failed\n`);
  }

  private answer(status: number, text: string): void {
    this.route.service.metrics.countError();
    answerRaw(this.socket, status, STATUS_CODES[status] ?? '', text);
  }
}

/**
 * An agent whose connections come from `connect`: http.request ignores its
 * createConnection option whenever there is an agent, even agent: false.
 * `connect` returns the socket, or undefined and hands it to `done` later.
 */
function oneConnectionAgent(
  connect: (done: (err: Error | null, socket?: Socket) => void) => Socket | undefined,
): http.Agent {
  const agent = new http.Agent({ keepAlive: false });
  agent.createConnection = (_options, done) =>
    connect(done as (err: Error | null, socket?: Socket) => void) as Socket;
  return agent;
}

/** A response head as raw text, keeping the headers `keep` accepts. */
function formatHead(res: http.IncomingMessage, keep: (name: string) => boolean): string {
  let head = `HTTP/1.1 ${res.statusCode} ${res.statusMessage ?? ''}\r\n`;
  const raw = res.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (keep(raw[i].toLowerCase())) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  }
  return head + '\r\n';
}
