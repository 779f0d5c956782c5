/**
 * Computes, from the store, what every Service should serve on this node —
 * its listeners and its endpoints — and hands it to the balancer. Runs on
 * every node, leader or not. Changes are coalesced: while one sync runs, any
 * number of store changes lead to exactly one more.
 */
import type pino from 'pino';
import type { Service, ServicePort } from '../manifest/types';
import { matchesMap } from '../model/labels';
import type { Node, Pod } from '../model/types';
import type {
  BalancedPort,
  BalancedService,
  Endpoint,
  ListenerFailure,
  SyncReport,
} from '../lb/types';
import { PROXY_PROTOCOL_ANNOTATION, proxyProtocolFor } from '../lb/proxy-protocol';
import type { Change, Store } from '../store/store';
import type { EventRecorder } from './events';
import { isPodReady } from './pod-status';

/** The part of the balancer this publisher drives. */
export interface BalancerPort {
  sync(services: BalancedService[]): Promise<SyncReport>;
}

/** Which endpoints belong to other nodes and where their tunnels are. */
export interface EndpointLocality {
  /** This node's name: endpoints of pods elsewhere are reached through `viaFor`. */
  localNode?: string;
  /**
   * The agent address ("HOST:PORT") whose tunnel reaches pods of a node, or
   * undefined when the node has none (e.g. a cluster without --listen).
   */
  viaFor?: (nodeName: string) => string | undefined;
}

/** Options of the publisher. */
export interface EndpointsOptions extends EndpointLocality {
  store: Store;
  balancer: BalancerPort;
  logger: pino.Logger;
  /** Address the balancer listens on for NodePorts and LoadBalancer ports. */
  listenHost: string;
  /** Where containers reach every Service port (ClusterIP); none without it. */
  clusterHost?: string;
  /** How often to retry listeners that failed to bind. */
  retryMs?: number;
  /** Where a port that cannot be opened is reported, as an event on its Service. */
  events?: Pick<EventRecorder, 'record'>;
  /** This node's name, for those events' messages. */
  nodeName?: string;
}

/** Keeps the balancer in step with Services and ready pods. */
export class EndpointsPublisher {
  private readonly opts: EndpointsOptions;
  private syncing?: Promise<void>;
  private again = false;
  private retryTimer?: NodeJS.Timeout;
  private lastFailures = '';
  private generation = 0;
  private synced = 0;

  constructor(opts: EndpointsOptions) {
    this.opts = opts;
  }

  start(): Promise<void> {
    this.opts.store.on('change', this.onChange);
    return this.requestSync();
  }

  stop(): void {
    this.opts.store.off('change', this.onChange);
    if (this.retryTimer) clearTimeout(this.retryTimer);
  }

  private readonly onChange = (changes: Change[]): void => {
    const relevant = (c: Change) => c.kind === 'Service' || c.kind === 'Pod' || c.kind === 'Node';
    if (changes.some(relevant)) void this.requestSync();
  };

  /** Resolves once the balancer has seen every store change made before the call. */
  async flush(): Promise<void> {
    const wanted = ++this.generation;
    await this.requestSync();
    while (this.synced < wanted) await this.requestSync();
  }

  private requestSync(): Promise<void> {
    if (this.syncing) {
      this.again = true;
      return this.syncing;
    }
    this.syncing = this.runSyncs();
    return this.syncing;
  }

  private async runSyncs(): Promise<void> {
    do {
      this.again = false;
      const generation = this.generation;
      try {
        const { store, listenHost, clusterHost, localNode, viaFor } = this.opts;
        const services = desiredServices(store, listenHost, clusterHost, { localNode, viaFor });
        const report = await this.opts.balancer.sync(services);
        this.noteFailures(report);
      } catch (err) {
        this.opts.logger.error({ err }, 'balancer sync failed');
      }
      this.synced = Math.max(this.synced, generation);
    } while (this.again);
    // Cleared in the same turn as the last check of `again`: a change
    // arriving before a later callback ran would otherwise be dropped.
    this.syncing = undefined;
  }

  /**
   * The Service's events say which node cannot open which port and why, so
   * that `describe service` shows what the agent's log would.
   */
  private reportFailure(f: ListenerFailure): void {
    const name = f.key.slice(f.key.indexOf('/') + 1);
    const service = this.opts.store.get('Service', name);
    if (!service || !this.opts.events) return;
    const where = this.opts.nodeName ? `node ${this.opts.nodeName}` : 'this node';
    const portName = f.portName ? ` (port ${f.portName})` : '';
    this.opts.events.record({
      object: { kind: 'Service', name, uid: service.metadata.uid },
      type: 'Warning',
      reason: 'FailedToListen',
      message: `${where} cannot listen on ${f.host}:${f.port}${portName}: ${f.code}; retrying`,
    });
  }

  private noteFailures(report: SyncReport): void {
    const text = report.failed.map((f) => `${f.key}:${f.host}:${f.port}:${f.code}`).join(',');
    if (text && text !== this.lastFailures) {
      for (const f of report.failed) {
        this.opts.logger.warn(
          { service: f.key, host: f.host, port: f.port, code: f.code },
          'cannot listen for service; retrying',
        );
        this.reportFailure(f);
      }
    }
    this.lastFailures = text;
    if (report.failed.length > 0 && !this.retryTimer) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        void this.requestSync();
      }, this.opts.retryMs ?? 5000);
      this.retryTimer.unref();
    }
  }
}

/**
 * What every Service should serve on a node listening on `host`, and with
 * `clusterHost` on each Service's own ports there too. With `locality`,
 * endpoints on other nodes carry the `via` of their node's tunnel.
 */
export function desiredServices(
  store: Store,
  host: string,
  clusterHost?: string,
  locality: EndpointLocality = {},
): BalancedService[] {
  // A node found unreachable cannot serve: its pods leave every balancer
  // at once, long before they are replaced.
  const unreachable = notReadyNodes(store);
  const pods = store.list<Pod>('Pod').filter((p) => !unreachable.has(p.spec.nodeName ?? ''));
  return store.list<Service>('Service').map((svc) => {
    const balanced = balancedService(svc, pods, host, locality);
    return withClusterListeners(balanced, svc, host, clusterHost);
  });
}

/** Adds the ClusterIP listener of each port: the Service port on `clusterHost`. */
function withClusterListeners(
  balanced: BalancedService,
  svc: Service,
  host: string,
  clusterHost: string | undefined,
): BalancedService {
  // A LoadBalancer on all addresses already listens on its ports there.
  const covered = svc.spec.type === 'LoadBalancer' && (host === '0.0.0.0' || host === '::');
  if (!clusterHost || covered) return balanced;
  balanced.ports.forEach((p, i) => {
    p.listen.push({ host: clusterHost, port: svc.spec.ports[i].port });
  });
  return balanced;
}

/** Names of nodes whose Ready condition is False (a node without one is not counted). */
function notReadyNodes(store: Store): Set<string> {
  const nodes = store.list<Node>('Node');
  const down = nodes.filter((n) =>
    n.status.conditions.some((c) => c.type === 'Ready' && c.status === 'False'),
  );
  return new Set(down.map((n) => n.metadata.name));
}

function balancedService(
  svc: Service,
  pods: Pod[],
  host: string,
  locality: EndpointLocality,
): BalancedService {
  const selected = pods.filter((p) => matchesMap(svc.spec.selector, p.metadata.labels));
  const affinity =
    svc.spec.sessionAffinity === 'ClientIP'
      ? {
          type: 'ClientIP' as const,
          timeoutSeconds: svc.spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? 10800,
        }
      : undefined;
  return {
    key: `default/${svc.metadata.name}`,
    ports: svc.spec.ports.map((port) => balancedPort(svc, port, selected, host, locality)),
    ...(affinity ? { affinity } : {}),
  };
}

function balancedPort(
  svc: Service,
  port: ServicePort,
  pods: Pod[],
  host: string,
  locality: EndpointLocality,
): BalancedPort {
  const listen = [];
  if (port.nodePort) listen.push({ host, port: port.nodePort });
  if (svc.spec.type === 'LoadBalancer') listen.push({ host, port: port.port });
  const annotation = svc.metadata.annotations?.[PROXY_PROTOCOL_ANNOTATION];
  const proxyProtocol = proxyProtocolFor(annotation, port.name ?? '');
  return {
    name: port.name ?? '',
    mode: isHttpPort(port) ? 'http' : 'tcp',
    listen,
    endpoints: pods.flatMap((pod) => endpointOf(pod, port, locality)),
    ...(proxyProtocol ? { proxyProtocol } : {}),
  };
}

/** Ports named http or http-*, or with appProtocol http, get the HTTP proxy. */
export function isHttpPort(port: ServicePort): boolean {
  const name = port.name ?? '';
  return name === 'http' || name.startsWith('http-') || port.appProtocol === 'http';
}

function endpointOf(pod: Pod, port: ServicePort, locality: EndpointLocality): Endpoint[] {
  const terminating = Boolean(pod.metadata.deletionTimestamp);
  if (!pod.status.podIP || !pod.spec.nodeName) return [];
  if (!terminating && !isPodReady(pod.status)) return [];
  const target = resolveTargetPort(pod, port.targetPort ?? port.port);
  if (target === undefined) return [];
  const via = viaOf(pod.spec.nodeName, locality);
  return [
    {
      id: pod.metadata.name,
      host: pod.status.podIP,
      port: target,
      nodeName: pod.spec.nodeName,
      ...(terminating ? { terminating: true } : {}),
      ...(via ? { via } : {}),
    },
  ];
}

/** The tunnel to a pod on `nodeName`; none for this node, or when unknown. */
function viaOf(nodeName: string, locality: EndpointLocality): string | undefined {
  const { localNode, viaFor } = locality;
  if (localNode === undefined || !viaFor || nodeName === localNode) return undefined;
  return viaFor(nodeName);
}

/**
 * A numeric targetPort is used as it is, whether or not the container
 * declares it (Kubernetes treats containerPort as informational); a named
 * one is looked up among the container's port names.
 */
export function resolveTargetPort(pod: Pod, target: number | string): number | undefined {
  if (typeof target === 'number') return target;
  for (const c of pod.spec.containers) {
    const match = c.ports?.find((p) => p.name === target);
    if (match) return match.containerPort;
  }
  return undefined;
}
