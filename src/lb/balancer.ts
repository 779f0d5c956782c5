import http from 'node:http';
import type net from 'node:net';
import type { Logger } from 'pino';
import type { Clock } from './endpoint-picker';
import { TrustedProxies } from './forwarding-headers';
import { createHttpServer } from './http-proxy';
import { InflightTracker } from './inflight';
import { PortRoute, type ListenerState, type RouteShared } from './port-route';
import { MetricsRecorder } from './service-metrics';
import { createTcpServer } from './tcp-proxy';
import {
  DEFAULT_LIMITS,
  DEFAULT_TIMEOUTS,
  type BalancedPort,
  type BalancedService,
  type BalancerLimits,
  type BalancerTimeouts,
  type BoundListener,
  type ListenAddress,
  type ListenerFailure,
  type ServiceMetrics,
  type SyncReport,
  type TunnelPort,
} from './types';
import { WarnOnce } from './warn-once';

/** How a balancer is built; only `logger` is required. */
export interface BalancerOptions {
  logger: Logger;
  /** Addresses or CIDRs whose X-Forwarded-For is extended, not replaced. */
  trustedProxies?: string[];
  timeouts?: Partial<BalancerTimeouts>;
  limits?: Partial<BalancerLimits>;
  /** Milliseconds clock for affinity and ejection; tests inject their own. */
  clock?: Clock;
  /**
   * How endpoints with a `via` are reached. Without it such endpoints fail
   * as unreachable (and requests go to other endpoints) rather than being
   * dialled directly.
   */
  tunnel?: TunnelPort;
}

interface ServiceState {
  key: string;
  logger: Logger;
  warnings: WarnOnce;
  metrics: MetricsRecorder;
  routes: Map<string, PortRoute>;
}

interface OpenListener {
  id: string;
  state: ListenerState;
  server: net.Server;
  address: ListenAddress;
  boundPort: number;
  serviceKey: string;
  portName: string;
}

interface WantedListener {
  id: string;
  route: PortRoute;
  address: ListenAddress;
}

/**
 * The node's in-process load balancer for Services. The agent declares
 * which services, listeners and endpoints exist through `sync`; the
 * balancer owns the sockets and forwards HTTP or TCP to the endpoints.
 */
export class Balancer {
  private readonly shared: RouteShared;
  private readonly logger: Logger;
  private readonly warnings: WarnOnce;
  private readonly services = new Map<string, ServiceState>();
  private readonly listeners = new Map<string, OpenListener>();
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(opts: BalancerOptions) {
    this.logger = opts.logger.child({ component: 'lb' });
    this.warnings = new WarnOnce(this.logger);
    this.shared = {
      clock: opts.clock ?? (() => performance.now()),
      inflight: new InflightTracker(),
      timeouts: { ...DEFAULT_TIMEOUTS, ...opts.timeouts },
      limits: { ...DEFAULT_LIMITS, ...opts.limits },
      trusted: new TrustedProxies(opts.trustedProxies),
      tunnel: opts.tunnel,
    };
  }

  /**
   * Makes listeners and endpoints match `services`: opens, closes, updates
   * atomically. Listeners that stay are left untouched with their
   * connections; a port that cannot be bound is reported, never thrown.
   */
  sync(services: BalancedService[]): Promise<SyncReport> {
    const run = this.queue.then(() => this.apply(services));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Resolves when no request or connection is in flight to this endpoint id (or timeout). */
  waitIdle(endpointId: string, timeoutMs: number): Promise<boolean> {
    return this.shared.inflight.waitIdle(endpointId, timeoutMs);
  }

  /** Counters per service key, copied at the time of the call. */
  metrics(): Record<string, ServiceMetrics> {
    const out: Record<string, ServiceMetrics> = {};
    for (const [key, service] of this.services) out[key] = service.metrics.snapshot();
    return out;
  }

  /** Closes every listener, connection and backend pool. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue;

    const closing = [...this.listeners.values()].map((l) => this.destroyListener(l));
    const routes = [...this.services.values()].flatMap((s) => [...s.routes.values()]);
    this.listeners.clear();
    this.services.clear();
    await Promise.all([...closing, ...routes.map((r) => r.destroy())]);
  }

  private async apply(services: BalancedService[]): Promise<SyncReport> {
    if (this.closed) throw new Error('sync called on a closed balancer');
    const wanted = this.updateRoutes(services);

    for (const listener of [...this.listeners.values()]) {
      const want = wanted.get(listener.id);
      if (want && want.route.mode === listener.state.route.mode) {
        listener.state.route = want.route;
        wanted.delete(listener.id);
      } else {
        this.closeListener(listener);
      }
    }

    const opened = await Promise.all([...wanted.values()].map((w) => this.openListener(w)));
    return this.report(opened.filter((r): r is ListenerFailure => r !== undefined));
  }

  /** Applies endpoints to every route and lists the listeners wanted. */
  private updateRoutes(services: BalancedService[]): Map<string, WantedListener> {
    const wanted = new Map<string, WantedListener>();
    const keys = new Set(services.map((s) => s.key));
    for (const [key, state] of this.services) {
      if (!keys.has(key)) this.removeService(state);
    }

    for (const service of services) {
      const state = this.ensureService(service.key);
      const names = new Set(service.ports.map((p) => p.name));
      for (const [name, route] of state.routes) {
        if (!names.has(name)) this.retireRoute(state, name, route);
      }
      for (const port of service.ports) {
        const route = this.ensureRoute(state, port);
        route.update(port, service.affinity);
        for (const address of port.listen) {
          const id = listenerId(service.key, port.name, address);
          wanted.set(id, { id, route, address });
        }
      }
    }
    return wanted;
  }

  private ensureService(key: string): ServiceState {
    let state = this.services.get(key);
    if (!state) {
      const logger = this.logger.child({ service: key });
      state = {
        key,
        logger,
        warnings: new WarnOnce(logger),
        metrics: new MetricsRecorder(),
        routes: new Map(),
      };
      this.services.set(key, state);
    }
    return state;
  }

  private ensureRoute(state: ServiceState, port: BalancedPort): PortRoute {
    const existing = state.routes.get(port.name);
    if (existing && existing.mode === port.mode) return existing;
    if (existing) this.retireRoute(state, port.name, existing);

    const route = new PortRoute(state, port.name, port.mode, this.shared);
    state.routes.set(port.name, route);
    return route;
  }

  /** Drops a route; its pools let in-flight requests finish first. */
  private retireRoute(state: ServiceState, name: string, route: PortRoute): void {
    state.routes.delete(name);
    route.update({ name, mode: route.mode, listen: [], endpoints: [] });
  }

  private removeService(state: ServiceState): void {
    for (const [name, route] of state.routes) this.retireRoute(state, name, route);
    this.services.delete(state.key);
    state.logger.info('service removed');
  }

  private async openListener(want: WantedListener): Promise<ListenerFailure | undefined> {
    const { route, address } = want;
    const state: ListenerState = { route, closing: false, sockets: new Set() };
    const server = route.mode === 'http' ? createHttpServer(state) : createTcpServer(state);
    const fields = { portName: route.portName, host: address.host, port: address.port };
    const condition = `bind:${want.id}`;
    try {
      await listen(server, address);
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'UNKNOWN';
      route.service.warnings.warn(condition, { ...fields, code, err }, 'cannot open listener');
      return { key: route.service.key, ...fields, code, error: (err as Error).message };
    }

    const boundPort = (server.address() as net.AddressInfo).port;
    server.on('error', (err) => route.service.logger.error({ ...fields, err }, 'listener failed'));
    route.service.warnings.clear(condition);
    route.service.logger.info({ ...fields, boundPort, mode: route.mode }, 'listener opened');
    this.listeners.set(want.id, {
      id: want.id,
      state,
      server,
      address,
      boundPort,
      serviceKey: route.service.key,
      portName: route.portName,
    });
    return undefined;
  }

  /** Stops accepting; connections already open finish on their own. */
  private closeListener(listener: OpenListener): void {
    this.listeners.delete(listener.id);
    listener.state.closing = true;
    listener.server.close();
    if (listener.server instanceof http.Server) listener.server.closeIdleConnections();
    const { host, port } = listener.address;
    listener.state.route.service.logger.info(
      { portName: listener.portName, host, port, boundPort: listener.boundPort },
      'listener closed',
    );
  }

  private destroyListener(listener: OpenListener): Promise<void> {
    listener.state.closing = true;
    const closed = new Promise<void>((resolve) => listener.server.close(() => resolve()));
    if (listener.server instanceof http.Server) listener.server.closeAllConnections();
    for (const socket of listener.state.sockets) socket.destroy();
    return closed;
  }

  private report(failed: ListenerFailure[]): SyncReport {
    const listeners: BoundListener[] = [...this.listeners.values()].map((l) => ({
      key: l.serviceKey,
      portName: l.portName,
      mode: l.state.route.mode,
      host: l.address.host,
      port: l.address.port,
      boundPort: l.boundPort,
    }));
    return { listeners, failed };
  }
}

function listenerId(serviceKey: string, portName: string, address: ListenAddress): string {
  return `${serviceKey}|${portName}|${address.host}|${address.port}`;
}

function listen(server: net.Server, address: ListenAddress): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: address.host, port: address.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
