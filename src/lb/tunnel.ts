/**
 * The mutual-TLS tunnel that carries balancer traffic to pods on other
 * nodes. The balancer of one node dials the agent listener of the pod's
 * node (`TunnelDialer`), proves itself with the cluster certificate and
 * asks with HTTP CONNECT for the pod's address; that agent (`serveTunnel`)
 * checks the certificate and that the address is one of its own pods, then
 * pipes bytes to the container. Endpoints on the balancer's own node are
 * never tunnelled.
 */
import type http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { connectTimeoutError, limitConnect, tunnel, type CodedError } from './socket-pipes';
import type { Endpoint, TunnelPort } from './types';

/** The response header naming why the tunnel could not reach its target. */
export const TUNNEL_ERROR_HEADER = 'x-flotilla-tunnel-error';

/** How long the agent waits for a pod to accept, unless told otherwise. */
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

// A CONNECT answer is a status line and a few headers; more is not one.
const MAX_ANSWER_BYTES = 8 * 1024;

const ESTABLISHED = 'HTTP/1.1 200 Connection Established\r\n\r\n';

// Only causes worth naming to the dialer: they are what the balancer's
// retry logic keys on; anything else is reported as a generic failure.
const NAMED_CAUSE = /^E[A-Z0-9_]{1,40}$/;

/** How long a tunnel must carry nothing after an answer before a stopping agent closes it. */
const QUIET_MS = 300;

/** What `serveTunnel` needs from the agent. */
export interface TunnelServerOptions {
  /** True if `host:port` is a pod of this node that peers may reach. */
  authorize(host: string, port: number): boolean;
  /** True if the member named by the client certificate may still use the tunnel. */
  admitPeer?(commonName: string): boolean;
  logger: Logger;
  /** How long a pod has to accept; 5 s by default. */
  connectTimeoutMs?: number;
}

/**
 * Answers CONNECT requests on the agent's TLS listener: only clients with
 * a certificate from the cluster CA, only to addresses `authorize` accepts.
 * Every other request of the server is left to its other handlers.
 */
export function serveTunnel(server: http.Server, opts: TunnelServerOptions): TunnelServer {
  const logger = opts.logger.child({ component: 'tunnel' });
  const tunnels = new TunnelServer();
  const settings = {
    ...opts,
    logger,
    connectTimeoutMs: opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
  };
  server.on('connect', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    // The HTTP server has let go of the socket: without this a peer that
    // resets would become an uncaught exception.
    socket.on('error', () => socket.destroy());
    try {
      acceptTunnel(req, socket as net.Socket, head, settings, tunnels);
    } catch (err) {
      logger.error({ err }, 'tunnel request failed');
      socket.destroy();
    }
  });
  return tunnels;
}

/**
 * The open tunnels of one agent, so that a stopping agent can close them
 * between requests instead of cutting requests in flight: peers then open
 * new connections, which are refused, and their balancers pick another
 * endpoint (a refused connect is always safe to retry).
 */
export class TunnelServer {
  private readonly open = new Map<net.Socket, TunnelActivity>();
  private draining = false;

  /** True once drain() was called: new tunnels are refused. */
  get refusing(): boolean {
    return this.draining;
  }

  track(socket: net.Socket, up: net.Socket): void {
    const entry: TunnelActivity = { up, lastSpeaker: 'none', lastActive: Date.now() };
    this.open.set(socket, entry);
    const heard = (speaker: TunnelActivity['lastSpeaker']) => () => {
      entry.lastSpeaker = speaker;
      entry.lastActive = Date.now();
    };
    socket.on('data', heard('client'));
    up.on('data', heard('pod'));
    socket.once('close', () => this.open.delete(socket));
  }

  /**
   * Refuses new tunnels, then closes each open one once it looks between
   * two requests: the pod spoke last and nothing moved for a moment. A
   * request still waiting for its answer keeps its tunnel; whatever is
   * still open after `timeoutMs` is cut.
   */
  async drain(timeoutMs: number): Promise<void> {
    this.draining = true;
    const deadline = Date.now() + timeoutMs;
    while (this.open.size > 0 && Date.now() < deadline) {
      const quietSince = Date.now() - QUIET_MS;
      for (const [socket, entry] of this.open) {
        if (entry.lastSpeaker === 'client' || entry.lastActive > quietSince) continue;
        this.open.delete(socket);
        socket.end();
        entry.up.end();
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    for (const [socket, { up }] of this.open) {
      socket.destroy();
      up.destroy();
    }
    this.open.clear();
  }
}

/** Which side of a tunnel sent bytes last, and when. */
interface TunnelActivity {
  up: net.Socket;
  lastSpeaker: 'none' | 'client' | 'pod';
  lastActive: number;
}

function acceptTunnel(
  req: http.IncomingMessage,
  socket: net.Socket,
  head: Buffer,
  opts: TunnelServerOptions & { connectTimeoutMs: number },
  tunnels: TunnelServer,
): void {
  const peer = socket.remoteAddress;
  if (tunnels.refusing) {
    // Named like a refused connect, so that the peer's balancer retries elsewhere.
    answer(socket, 503, 'Service Unavailable', 'ECONNREFUSED');
    return;
  }
  if (!(socket as tls.TLSSocket).authorized) {
    opts.logger.debug({ peer }, 'tunnel refused: no cluster certificate');
    answer(socket, 403, 'Forbidden');
    return;
  }
  const member = (socket as tls.TLSSocket).getPeerCertificate().subject?.CN;
  if (opts.admitPeer && !(typeof member === 'string' && opts.admitPeer(member))) {
    opts.logger.debug({ peer, member }, 'tunnel refused: not a member any more');
    answer(socket, 403, 'Forbidden');
    return;
  }
  const target = req.httpVersion === '1.1' ? parseAuthority(req.url ?? '') : undefined;
  if (!target) {
    opts.logger.debug({ peer, target: req.url }, 'tunnel refused: malformed CONNECT');
    answer(socket, 400, 'Bad Request');
    return;
  }
  const { host, port } = target;
  if (!opts.authorize(host, port)) {
    opts.logger.debug({ peer, host, port }, 'tunnel refused: not a pod of this node');
    answer(socket, 403, 'Forbidden');
    return;
  }

  // Pods may hold connections open for hours: no idle limit here. A
  // client's half-close must reach the pod as one; an https server's
  // sockets would otherwise answer it by closing their side too.
  socket.setTimeout(0);
  socket.allowHalfOpen = true;
  const up = net.connect({ host, port, allowHalfOpen: true });
  limitConnect(up, opts.connectTimeoutMs, (err) => up.destroy(err));
  const abandon = (): void => {
    up.destroy();
  };
  socket.once('close', abandon);
  const failed = (err: CodedError): void => {
    socket.off('close', abandon);
    const cause = err.code ?? 'EUNKNOWN';
    opts.logger.debug({ peer, host, port, code: cause }, 'tunnel target failed');
    const timedOut = cause === 'ETIMEDOUT';
    answer(socket, timedOut ? 504 : 502, timedOut ? 'Gateway Timeout' : 'Bad Gateway', cause);
  };
  up.once('error', failed);
  up.once('connect', () => {
    socket.off('close', abandon);
    up.off('error', failed);
    if (socket.destroyed) {
      up.destroy();
      return;
    }
    socket.write(ESTABLISHED);
    if (head.length > 0) up.write(head);
    tunnel(socket, up, () => undefined);
    tunnels.track(socket, up);
  });
}

/**
 * The target of a CONNECT: an IPv4 literal or a bracketed IPv6 literal and
 * a port from 1 to 65535, nothing else (no names, no leading zeros).
 */
export function parseAuthority(text: string): { host: string; port: number } | undefined {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):([1-9]\d{0,4})$/.exec(text);
  if (!match) return undefined;
  const host = match[1] ?? match[2];
  const port = Number(match[3]);
  const family = match[1] !== undefined ? 6 : 4;
  if (net.isIP(host) !== family || port > 65535) return undefined;
  return { host, port };
}

/** Writes a bodiless answer and closes the connection once it is out. */
function answer(socket: net.Socket, status: number, text: string, cause?: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const named = cause ? `${TUNNEL_ERROR_HEADER}: ${cause}\r\n` : '';
  const head =
    `HTTP/1.1 ${status} ${text}\r\n${named}` + 'content-length: 0\r\nconnection: close\r\n\r\n';
  socket.end(head, () => socket.destroy());
}

/** The certificate material a dialer presents and trusts, all PEM. */
export interface TunnelMaterial {
  ca: string;
  cert: string;
  key: string;
}

/** How a dialer is built. */
export interface TunnelDialerOptions {
  /** Called per dial, so that renewed certificates serve new connections. */
  tls: () => TunnelMaterial;
  /** The local address to dial from, e.g. the node's --listen host. */
  localAddress?: string;
}

/**
 * Opens tunnels to peer agents. The socket a dial resolves with is the TLS
 * connection itself, ready for the application protocol.
 */
export class TunnelDialer implements TunnelPort {
  private readonly material: () => TunnelMaterial;
  private readonly localAddress?: string;
  // Building a context parses PEM and keys: once per material object,
  // released with it when a renewal replaces it.
  private readonly contexts = new WeakMap<TunnelMaterial, tls.SecureContext>();

  constructor(opts: TunnelDialerOptions) {
    this.material = opts.tls;
    this.localAddress = opts.localAddress;
  }

  /**
   * Reaches `host:port` through the agent at `via` ("HOST:PORT", an IPv6
   * host in brackets). Rejects with an Error whose `code` is the cause:
   * the remote one the agent named (ECONNREFUSED, ETIMEDOUT, ...) or a
   * local one (connection, TLS, timeout, or a refusal by the agent).
   */
  dial(via: string, host: string, port: number, timeoutMs: number): Promise<net.Socket> {
    const peer = parseAuthority(via) ?? parseNamedAuthority(via);
    if (!peer) return Promise.reject(coded(`tunnel address "${via}" is not HOST:PORT`, 'EINVAL'));
    const target = net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
    return new Promise((resolve, reject) => {
      const options: tls.ConnectionOptions & { allowHalfOpen: boolean } = {
        host: peer.host,
        port: peer.port,
        secureContext: this.contextFor(this.material()),
        rejectUnauthorized: true,
        // A pod's half-close must reach the client as one, as on a direct
        // connection (tls.connect honours this; its types omit it).
        allowHalfOpen: true,
        ...(this.localAddress ? { localAddress: this.localAddress } : {}),
      };
      const socket = tls.connect(options);
      let settled = false;
      const fail = (err: CodedError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      };
      const expire = (): void => fail(connectTimeoutError(timeoutMs));
      const timer = timeoutMs > 0 ? setTimeout(expire, timeoutMs) : undefined;
      const closed = (): void => {
        fail(coded(`tunnel via ${via} closed before answering`, 'ECONNRESET'));
      };
      socket.on('error', fail);
      socket.once('close', closed);
      socket.once('secureConnect', () => {
        socket.write(`CONNECT ${target} HTTP/1.1\r\nhost: ${target}\r\n\r\n`);
        readAnswer(socket, (err) => {
          if (err) {
            fail(err);
            return;
          }
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          socket.off('error', fail);
          socket.off('close', closed);
          resolve(socket);
        });
      });
    });
  }

  private contextFor(material: TunnelMaterial): tls.SecureContext {
    let context = this.contexts.get(material);
    if (!context) {
      const { ca, cert, key } = material;
      context = tls.createSecureContext({ ca, cert, key });
      this.contexts.set(material, context);
    }
    return context;
  }
}

/**
 * Reads the CONNECT answer up to its blank line, leaving any byte after it
 * in the socket for the application protocol. Calls `done` once, with an
 * error unless the status was 200.
 */
function readAnswer(socket: tls.TLSSocket, done: (err?: CodedError) => void): void {
  let text = '';
  const onReadable = (): void => {
    let chunk: Buffer | null;
    while ((chunk = socket.read() as Buffer | null) !== null) {
      const before = text.length;
      text += chunk.toString('latin1');
      const end = text.indexOf('\r\n\r\n', Math.max(0, before - 3));
      if (end >= 0) {
        socket.off('readable', onReadable);
        const rest = chunk.subarray(end + 4 - before);
        if (rest.length > 0) socket.unshift(rest);
        done(answerError(text.slice(0, end)));
        return;
      }
      if (text.length > MAX_ANSWER_BYTES) {
        socket.off('readable', onReadable);
        done(coded('tunnel answer too long', 'ERR_TUNNEL_BAD_ANSWER'));
        return;
      }
    }
  };
  socket.on('readable', onReadable);
}

/** Undefined for "200", else the error the answer's status and cause describe. */
function answerError(head: string): CodedError | undefined {
  const lines = head.split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0]);
  if (!status) return coded('tunnel answer is not HTTP', 'ERR_TUNNEL_BAD_ANSWER');
  if (status[1] === '200') return undefined;
  let cause: string | undefined;
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === TUNNEL_ERROR_HEADER) {
      cause = line.slice(colon + 1).trim();
    }
  }
  if (cause && NAMED_CAUSE.test(cause)) {
    return coded(`tunnel target failed: ${cause}`, cause);
  }
  return coded(`tunnel refused with ${lines[0].slice(9)}`, `ERR_TUNNEL_${status[1]}`);
}

/** A "name:port" peer (e.g. localhost:7946); the TLS check then uses the name. */
function parseNamedAuthority(text: string): { host: string; port: number } | undefined {
  const match = /^([A-Za-z0-9.-]{1,253}):([1-9]\d{0,4})$/.exec(text);
  if (!match || Number(match[2]) > 65535) return undefined;
  return { host: match[1], port: Number(match[2]) };
}

function coded(message: string, code: string): CodedError {
  const err: CodedError = new Error(message);
  err.code = code;
  return err;
}

/**
 * Opens a connection to an endpoint on another node through `port`; with
 * `header`, the PROXY header is the first thing the pod receives.
 */
export async function dialThrough(
  port: TunnelPort | undefined,
  endpoint: Endpoint & { via: string },
  timeoutMs: number,
  header?: Buffer,
): Promise<net.Socket> {
  if (!port) {
    // Never fall back to a direct connection: it would cross servers in
    // plain text, and the pod address means nothing on this node.
    throw coded(
      `endpoint ${endpoint.id} is on node ${endpoint.nodeName} but this balancer has no tunnel`,
      'EHOSTUNREACH',
    );
  }
  const socket = await port.dial(endpoint.via, endpoint.host, endpoint.port, timeoutMs);
  if (header) socket.write(header);
  return socket;
}
