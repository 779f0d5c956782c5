import net, { type Socket } from 'node:net';
import { normalizeAddress } from './forwarding-headers';
import type { ListenerState, PortRoute } from './port-route';
import { connectWithHeader, connectionEnds, proxyHeader } from './proxy-protocol';
import {
  REFUSED_RETRIES,
  isConnectFailure,
  limitConnect,
  tunnel,
  type CodedError,
} from './socket-pipes';
import { dialThrough } from './tunnel';
import type { Endpoint } from './types';

/** Creates the byte-pipe server for one `tcp` listener. */
export function createTcpServer(listener: ListenerState): net.Server {
  // Paused until the backend accepts, so early client bytes wait in the
  // kernel and a retry on another endpoint loses nothing.
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true });
  server.on('connection', (socket: Socket) => new TcpPipe(listener, socket).start());
  return server;
}

/** One client connection piped to one endpoint, retried elsewhere on refusal. */
class TcpPipe {
  private readonly route: PortRoute;
  private readonly peer: string;
  private retries = 0;

  constructor(
    private readonly listener: ListenerState,
    private readonly socket: Socket,
  ) {
    this.route = listener.route;
    this.peer = normalizeAddress(socket.remoteAddress);
  }

  start(): void {
    const metrics = this.route.service.metrics;
    metrics.countRequest();
    this.socket.once('close', metrics.openConnection());
    this.socket.on('error', () => this.socket.destroy());

    const endpoint = this.route.pick(this.peer);
    if (!endpoint) {
      this.refuse();
      return;
    }
    this.connect(endpoint);
  }

  private connect(endpoint: Endpoint): void {
    if (endpoint.via) {
      this.connectVia({ ...endpoint, via: endpoint.via });
      return;
    }
    const release = this.route.shared.inflight.begin(endpoint.id);
    const up = this.openUpstream(endpoint);
    up.once('close', release);

    const abandon = (): void => {
      up.destroy();
    };
    const failed = (err: CodedError): void => {
      this.socket.off('close', abandon);
      this.fail(endpoint, err);
    };
    this.socket.once('close', abandon);
    up.once('error', failed);
    up.once('connect', () => {
      this.socket.off('close', abandon);
      up.off('error', failed);
      this.open(endpoint, up);
    });
  }

  /** As `connect`, for an endpoint on another node: through its agent's tunnel. */
  private connectVia(endpoint: Endpoint & { via: string }): void {
    const release = this.route.shared.inflight.begin(endpoint.id);
    const { tunnel, timeouts } = this.route.shared;
    const version = this.route.proxyProtocol;
    const header = version ? proxyHeader(version, connectionEnds(this.socket)) : undefined;
    // The dial has its own deadline; a client leaving meanwhile only means
    // the tunnel is closed as soon as it opens.
    let gone = false;
    const abandon = (): void => {
      gone = true;
    };
    this.socket.once('close', abandon);
    dialThrough(tunnel, endpoint, timeouts.connectMs, header).then(
      (up) => {
        this.socket.off('close', abandon);
        up.once('close', release);
        if (gone) {
          up.destroy();
          return;
        }
        this.open(endpoint, up);
      },
      (err: CodedError) => {
        this.socket.off('close', abandon);
        release();
        this.fail(endpoint, err);
      },
    );
  }

  private openUpstream(endpoint: Endpoint): Socket {
    const { connectMs } = this.route.shared.timeouts;
    const version = this.route.proxyProtocol;
    if (version) {
      const header = proxyHeader(version, connectionEnds(this.socket));
      return connectWithHeader(endpoint, header, connectMs);
    }
    const up = net.connect({ host: endpoint.host, port: endpoint.port, allowHalfOpen: true });
    limitConnect(up, connectMs, (err) => up.destroy(err));
    return up;
  }

  private open(endpoint: Endpoint, up: Socket): void {
    this.route.reportHealthy(endpoint);
    const sockets = this.listener.sockets;
    sockets.add(this.socket).add(up);
    tunnel(this.socket, up, () => {
      sockets.delete(this.socket);
      sockets.delete(up);
    });
  }

  private fail(endpoint: Endpoint, err: CodedError): void {
    if (this.socket.destroyed) return;
    const refused = isConnectFailure(err);
    this.route.reportFailure(endpoint, err, refused);
    // As in HTTP mode: each refusing endpoint is ejected, so each retry picks another.
    if (refused && this.retries < REFUSED_RETRIES) {
      this.retries += 1;
      const other = this.route.pick(this.peer, endpoint);
      if (other) {
        this.connect(other);
        return;
      }
    }
    this.refuse();
  }

  /** No endpoint can take the connection: accept it and close at once. */
  private refuse(): void {
    this.route.service.metrics.countError();
    this.socket.destroy();
  }
}
