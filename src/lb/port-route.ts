import type { Logger } from 'pino';
import { Pool } from 'undici';
import { EndpointPicker, endpointAddress, type Clock } from './endpoint-picker';
import type { InflightTracker } from './inflight';
import type { MetricsRecorder } from './service-metrics';
import type {
  BalancedMode,
  BalancedPort,
  BalancerLimits,
  BalancerTimeouts,
  ClientIpAffinity,
  Endpoint,
} from './types';
import type { TrustedProxies } from './forwarding-headers';
import { WarnOnce } from './warn-once';

/** What every route of one balancer shares. */
export interface RouteShared {
  clock: Clock;
  inflight: InflightTracker;
  timeouts: BalancerTimeouts;
  limits: BalancerLimits;
  trusted: TrustedProxies;
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
  private readonly pools = new Map<string, Pool>();

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

    const ready = new Set(port.endpoints.filter((e) => !e.terminating).map(endpointAddress));
    for (const [address, pool] of this.pools) {
      if (ready.has(address)) continue;
      this.pools.delete(address);
      // close() lets in-flight requests finish and shuts idle connections.
      pool.close().catch(() => undefined);
    }
    this.noteReadiness();
  }

  /** The endpoint for a new request, or undefined when none is ready. */
  pick(clientIp: string, exclude?: Endpoint): Endpoint | undefined {
    return this.picker.pick(clientIp, exclude);
  }

  /** The keep-alive pool to `endpoint`, opened on first use. */
  poolFor(endpoint: Endpoint): Pool {
    const address = endpointAddress(endpoint);
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
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.destroy().catch(() => undefined)));
  }

  private openPool(endpoint: Endpoint): Pool {
    const { timeouts, limits } = this.shared;
    const host = endpoint.host.includes(':') ? `[${endpoint.host}]` : endpoint.host;
    return new Pool(`http://${host}:${endpoint.port}`, {
      connections: limits.maxConnectionsPerEndpoint,
      pipelining: 1,
      keepAliveTimeout: timeouts.backendIdleMs,
      keepAliveMaxTimeout: timeouts.backendIdleMs,
      connect: { timeout: timeouts.connectMs },
      headersTimeout: timeouts.responseHeadersMs,
      // A long or slow response is never cut by the balancer.
      bodyTimeout: 0,
    });
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
 * What a listening socket needs per connection. `route` is swapped by a
 * sync; `sockets` holds the pipes the balancer must destroy on close.
 */
export interface ListenerState {
  route: PortRoute;
  /** Set once the listener is being replaced or removed. */
  closing: boolean;
  sockets: Set<import('node:net').Socket>;
}
