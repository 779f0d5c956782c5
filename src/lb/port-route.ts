import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { Client, Pool, type Dispatcher, type buildConnector } from 'undici';
import { EndpointPicker, endpointAddress, type Clock } from './endpoint-picker';
import type { InflightTracker } from './inflight';
import { connectWithHeader, connectionEnds, proxyHeader } from './proxy-protocol';
import type { MetricsRecorder } from './service-metrics';
import type {
  BalancedMode,
  BalancedPort,
  BalancerLimits,
  BalancerTimeouts,
  ClientIpAffinity,
  Endpoint,
  ProxyProtocolVersion,
  TunnelPort,
} from './types';
import type { TrustedProxies } from './forwarding-headers';
import { dialThrough } from './tunnel';
import { WarnOnce } from './warn-once';

/** What every route of one balancer shares. */
export interface RouteShared {
  clock: Clock;
  inflight: InflightTracker;
  timeouts: BalancerTimeouts;
  limits: BalancerLimits;
  trusted: TrustedProxies;
  /** Reaches endpoints on other nodes; see Endpoint.via. */
  tunnel?: TunnelPort;
}

/** What a route shares with the other ports of its service. */
export interface ServiceShared {
  key: string;
  logger: Logger;
  warnings: WarnOnce;
  metrics: MetricsRecorder;
}

/**
 * The forwarding state of one service port: its endpoints, how the next
 * one is chosen, and the keep-alive pool to each. Listeners look it up per
 * request, so a sync that replaces endpoints never touches a socket.
 */
export class PortRoute {
  readonly picker: EndpointPicker;
  /** The PROXY protocol version sent to endpoints, if any. */
  proxyProtocol?: ProxyProtocolVersion;
  private readonly pools = new Map<string, Pool>();
  // With the PROXY protocol a backend connection belongs to one client
  // connection, whose address its header names: one client per pair.
  private readonly clientOwned = new Map<string, Set<Client>>();
  private readonly byClientSocket = new WeakMap<Socket, Map<string, Client>>();

  constructor(
    readonly service: ServiceShared,
    readonly portName: string,
    readonly mode: BalancedMode,
    readonly shared: RouteShared,
  ) {
    this.picker = new EndpointPicker(shared.clock, shared.timeouts.ejectMs);
  }

  /** Applies a new endpoint set; pools of endpoints leaving it drain. */
  update(port: BalancedPort, affinity?: ClientIpAffinity): void {
    this.picker.update(port.endpoints, affinity);
    const changed = this.proxyProtocol !== port.proxyProtocol;
    this.proxyProtocol = port.proxyProtocol;

    const ready = new Set(port.endpoints.filter((e) => !e.terminating).map(connectionKey));
    for (const [address, pool] of this.pools) {
      if (ready.has(address) && !changed) continue;
      this.pools.delete(address);
      // close() lets in-flight requests finish and shuts idle connections.
      pool.close().catch(() => undefined);
    }
    for (const [address, clients] of this.clientOwned) {
      if (ready.has(address) && !changed) continue;
      this.clientOwned.delete(address);
      for (const client of clients) client.close().catch(() => undefined);
    }
    this.noteReadiness();
  }

  /**
   * Where a request from `client` to `endpoint` is sent: the shared pool,
   * or with the PROXY protocol a backend connection of that client's own.
   */
  dispatcherFor(endpoint: Endpoint, client: Socket): Dispatcher {
    if (!this.proxyProtocol) return this.poolFor(endpoint);
    const address = connectionKey(endpoint);
    let owned = this.byClientSocket.get(client);
    if (!owned) {
      owned = new Map();
      this.byClientSocket.set(client, owned);
    }
    const existing = owned.get(address);
    if (existing && !existing.closed && !existing.destroyed) return existing;

    const opened = this.openProxiedClient(endpoint, client, this.proxyProtocol);
    owned.set(address, opened);
    const set = this.clientOwned.get(address) ?? new Set();
    this.clientOwned.set(address, set.add(opened));
    client.once('close', () => {
      set.delete(opened);
      opened.close().catch(() => undefined);
    });
    return opened;
  }

  /** The endpoint for a new request, or undefined when none is ready. */
  pick(clientIp: string, exclude?: Endpoint): Endpoint | undefined {
    return this.picker.pick(clientIp, exclude);
  }

  /** The keep-alive pool to `endpoint`, opened on first use. */
  poolFor(endpoint: Endpoint): Pool {
    const address = connectionKey(endpoint);
    let pool = this.pools.get(address);
    if (!pool) {
      pool = this.openPool(endpoint);
      this.pools.set(address, pool);
    }
    return pool;
  }

  /**
   * Records a failed exchange with `endpoint`; one that refused the
   * connection is kept out of the rotation for a while.
   */
  reportFailure(endpoint: Endpoint, err: Error & { code?: string }, refused: boolean): void {
    const address = endpointAddress(endpoint);
    if (refused) this.picker.eject(endpoint);
    this.service.warnings.warn(
      `backend:${this.portName}:${address}`,
      { portName: this.portName, podName: endpoint.id, address, code: err.code, err },
      refused ? 'endpoint refused connection, ejected' : 'endpoint failed',
    );
  }

  /** Records that `endpoint` answered, ending any failure warning. */
  reportHealthy(endpoint: Endpoint): void {
    this.service.warnings.clear(`backend:${this.portName}:${endpointAddress(endpoint)}`);
  }

  /** Destroys every backend connection; used when the balancer closes. */
  async destroy(): Promise<void> {
    const dispatchers: Dispatcher[] = [...this.pools.values()];
    for (const clients of this.clientOwned.values()) dispatchers.push(...clients);
    this.pools.clear();
    this.clientOwned.clear();
    await Promise.all(dispatchers.map((d) => d.destroy().catch(() => undefined)));
  }

  private openPool(endpoint: Endpoint): Pool {
    const { limits, timeouts } = this.shared;
    return new Pool(originOf(endpoint), {
      ...this.backendOptions(),
      connections: limits.maxConnectionsPerEndpoint,
      connect: endpoint.via
        ? this.tunnelConnector({ ...endpoint, via: endpoint.via })
        : { timeout: timeouts.connectMs },
    });
  }

  /** Connections of an undici dispatcher that go through the tunnel. */
  private tunnelConnector(
    endpoint: Endpoint & { via: string },
    header?: Buffer,
  ): buildConnector.connector {
    const { tunnel, timeouts } = this.shared;
    return (_options, callback) => {
      dialThrough(tunnel, endpoint, timeouts.connectMs, header).then(
        (socket) => callback(null, socket),
        (err: Error) => callback(err, null),
      );
    };
  }

  private openProxiedClient(
    endpoint: Endpoint,
    client: Socket,
    version: ProxyProtocolVersion,
  ): Client {
    const header = proxyHeader(version, connectionEnds(client));
    const connectMs = this.shared.timeouts.connectMs;
    if (endpoint.via) {
      return new Client(originOf(endpoint), {
        ...this.backendOptions(),
        connect: this.tunnelConnector({ ...endpoint, via: endpoint.via }, header),
      });
    }
    return new Client(originOf(endpoint), {
      ...this.backendOptions(),
      connect: (_options, callback) => {
        const socket = connectWithHeader(endpoint, header, connectMs);
        const failed = (err: Error): void => callback(err, null);
        socket.once('error', failed);
        socket.once('connect', () => {
          socket.off('error', failed);
          callback(null, socket);
        });
        return socket;
      },
    });
  }

  private backendOptions(): Pool.Options {
    const { timeouts } = this.shared;
    return {
      pipelining: 1,
      keepAliveTimeout: timeouts.backendIdleMs,
      keepAliveMaxTimeout: timeouts.backendIdleMs,
      headersTimeout: timeouts.responseHeadersMs,
      // A long or slow response is never cut by the balancer.
      bodyTimeout: 0,
    };
  }

  private noteReadiness(): void {
    const condition = `no-endpoints:${this.portName}`;
    const fields = { portName: this.portName };
    if (this.picker.readyCount === 0) {
      this.service.warnings.warn(condition, fields, 'no ready endpoints');
    } else if (this.service.warnings.clear(condition)) {
      this.service.logger.info(fields, 'endpoints ready');
    }
  }
}

/**
 * What pools and clients are keyed on: the address, and the node agent it
 * is reached through, since pods on different nodes may share an address
 * (each node has its own bridge network) and a changed `via` needs new
 * connections.
 */
function connectionKey(endpoint: Endpoint): string {
  const address = endpointAddress(endpoint);
  return endpoint.via ? `${address} via ${endpoint.via}` : address;
}

function originOf(endpoint: Endpoint): string {
  const host = endpoint.host.includes(':') ? `[${endpoint.host}]` : endpoint.host;
  return `http://${host}:${endpoint.port}`;
}

/**
 * What a listening socket needs per connection. `route` is swapped by a
 * sync; `sockets` holds the pipes the balancer must destroy on close.
 */
export interface ListenerState {
  route: PortRoute;
  /** Set once the listener is being replaced or removed. */
  closing: boolean;
  sockets: Set<import('node:net').Socket>;
}
