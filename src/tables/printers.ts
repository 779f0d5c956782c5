/**
 * kubectl's tables for each kind (the columns of `get` and `get -o wide`),
 * shared by the CLI and by the API's server-side Table answers.
 */
import type {
  ContainerStatus,
  Deployment,
  Event,
  KubeObject,
  Node,
  Pod,
  Service,
} from '../model/k8s-types';
import { formatAge, formatDuration, formatLabels, orNone, type Table } from './format';
import type { KindName } from './kinds';

/** What a table printer may need beyond the objects themselves. */
export interface PrintContext {
  now: number;
  wide: boolean;
  /** Prefix for the NAME column, e.g. `deployment.apps/` when several kinds print. */
  namePrefix?: string;
  /** All pods, for columns that count pods per node. */
  pods?: Pod[];
}

type RowPrinter<T> = (obj: T, ctx: PrintContext) => string[];

interface Columns<T> {
  headers: string[];
  wideHeaders: string[];
  row: RowPrinter<T>;
  wideRow: RowPrinter<T>;
}

/** Builds the `get` table for objects of one kind. */
export function buildTable(kind: KindName, objects: KubeObject[], ctx: PrintContext): Table {
  const columns = COLUMNS[kind] as Columns<KubeObject>;
  const headers = ctx.wide ? [...columns.headers, ...columns.wideHeaders] : columns.headers;
  const rows = objects.map((obj) => {
    const name = (ctx.namePrefix ?? '') + (obj.metadata?.name ?? '');
    const cells = [name, ...columns.row(obj, ctx)];
    return ctx.wide ? [...cells, ...columns.wideRow(obj, ctx)] : cells;
  });
  return { headers, rows };
}

const nodeColumns: Columns<Node> = {
  headers: ['NAME', 'STATUS', 'ROLES', 'AGE', 'VERSION'],
  wideHeaders: ['INTERNAL-IP', 'PODS'],
  row: (node, ctx) => [
    nodeStatus(node),
    orNone(node.metadata?.annotations?.['flotilla.io/role']),
    formatAge(node.metadata?.creationTimestamp, ctx.now),
    orNone(node.status?.nodeInfo?.kubeletVersion),
  ],
  wideRow: (node, ctx) => [
    orNone(internalIP(node)),
    String(podsOnNode(ctx.pods ?? [], node.metadata?.name).length),
  ],
};

/** kubectl's node STATUS: the Ready condition, plus SchedulingDisabled when cordoned. */
export function nodeStatus(node: Node): string {
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
  let status = 'Unknown';
  if (ready?.status === 'True') status = 'Ready';
  else if (ready?.status === 'False') status = 'NotReady';
  return node.spec?.unschedulable ? `${status},SchedulingDisabled` : status;
}

/** The node's InternalIP address, if it reports one. */
export function internalIP(node: Node): string | undefined {
  return node.status?.addresses?.find((a) => a.type === 'InternalIP')?.address;
}

/** The pods placed on a node that have not finished. */
export function podsOnNode(pods: Pod[], nodeName: string | undefined): Pod[] {
  return pods.filter(
    (pod) =>
      pod.spec?.nodeName === nodeName &&
      pod.status?.phase !== 'Succeeded' &&
      pod.status?.phase !== 'Failed',
  );
}

const podColumns: Columns<Pod> = {
  headers: ['NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE'],
  wideHeaders: ['IP', 'NODE'],
  row: (pod, ctx) => [
    podReady(pod),
    podStatus(pod),
    podRestarts(pod, ctx.now),
    formatAge(pod.metadata?.creationTimestamp, ctx.now),
  ],
  wideRow: (pod) => [orNone(pod.status?.podIP), orNone(pod.spec?.nodeName)],
};

/** Ready containers over all containers, as `1/2`. */
export function podReady(pod: Pod): string {
  const statuses = pod.status?.containerStatuses ?? [];
  const total = Math.max(statuses.length, pod.spec?.containers?.length ?? 0);
  const ready = statuses.filter((s) => s.ready).length;
  return `${ready}/${total}`;
}

/**
 * kubectl's pod STATUS: the phase, overridden by the pod's reason, then by
 * the most telling container state (ErrImagePull, CrashLoopBackOff,
 * Completed), and by Terminating while the pod is being deleted.
 */
export function podStatus(pod: Pod): string {
  let status = pod.status?.reason || pod.status?.phase || 'Unknown';
  // The first container with something to say wins, as in kubectl.
  for (const cs of pod.status?.containerStatuses ?? []) {
    const told = containerReason(cs);
    if (told) {
      status = told;
      break;
    }
  }
  return pod.metadata?.deletionTimestamp ? 'Terminating' : status;
}

function containerReason(cs: ContainerStatus): string | undefined {
  const { waiting, terminated } = cs.state ?? {};
  if (waiting?.reason) return waiting.reason;
  if (!terminated) return undefined;
  if (terminated.reason) return terminated.reason;
  if (terminated.signal) return `Signal:${terminated.signal}`;
  return `ExitCode:${terminated.exitCode ?? 0}`;
}

/** Total restarts, with how long ago the last one ended: `3 (2m ago)`. */
export function podRestarts(pod: Pod, now: number): string {
  const statuses = pod.status?.containerStatuses ?? [];
  const restarts = statuses.reduce((sum, s) => sum + (s.restartCount ?? 0), 0);
  const finished = statuses
    .map((s) => Date.parse(s.lastState?.terminated?.finishedAt ?? ''))
    .filter((t) => !Number.isNaN(t));
  if (restarts === 0 || finished.length === 0) return String(restarts);
  return `${restarts} (${formatDuration(now - Math.max(...finished))} ago)`;
}

const deploymentColumns: Columns<Deployment> = {
  headers: ['NAME', 'READY', 'UP-TO-DATE', 'AVAILABLE', 'AGE'],
  wideHeaders: ['CONTAINERS', 'IMAGES', 'SELECTOR'],
  row: (d, ctx) => [
    `${d.status?.readyReplicas ?? 0}/${d.spec?.replicas ?? 1}`,
    String(d.status?.updatedReplicas ?? 0),
    String(d.status?.availableReplicas ?? 0),
    formatAge(d.metadata?.creationTimestamp, ctx.now),
  ],
  wideRow: (d) => {
    const containers = d.spec?.template?.spec?.containers ?? [];
    return [
      orNone(containers.map((c) => c.name).join(',')),
      orNone(containers.map((c) => c.image ?? '').join(',')),
      formatLabels(d.spec?.selector?.matchLabels),
    ];
  },
};

const serviceColumns: Columns<Service> = {
  headers: ['NAME', 'TYPE', 'CLUSTER-IP', 'EXTERNAL-IP', 'PORT(S)', 'AGE'],
  wideHeaders: ['SELECTOR'],
  row: (svc, ctx) => [
    svc.spec?.type ?? 'ClusterIP',
    orNone(svc.spec?.clusterIP),
    externalIPs(svc),
    servicePorts(svc),
    formatAge(svc.metadata?.creationTimestamp, ctx.now),
  ],
  wideRow: (svc) => [formatLabels(svc.spec?.selector)],
};

/** Load-balancer ingress addresses, then external IPs, as kubectl shows them. */
export function externalIPs(svc: Service): string {
  const ingress = (svc.status?.loadBalancer?.ingress ?? [])
    .map((i) => i.ip ?? i.hostname ?? '')
    .filter((a) => a !== '');
  const all = [...ingress, ...(svc.spec?.externalIPs ?? [])];
  if (all.length > 0) return all.join(',');
  return svc.spec?.type === 'LoadBalancer' ? '<pending>' : '<none>';
}

/** Ports as `80:31234/TCP,443/TCP`. */
export function servicePorts(svc: Service): string {
  const ports = (svc.spec?.ports ?? []).map((p) => {
    const node = p.nodePort ? `:${p.nodePort}` : '';
    return `${p.port}${node}/${p.protocol ?? 'TCP'}`;
  });
  return orNone(ports.join(','));
}

const COLUMNS: Record<KindName, Columns<never>> = {
  Node: nodeColumns,
  Pod: podColumns,
  Deployment: deploymentColumns,
  Service: serviceColumns,
};

/** kubectl's `get events` table: LAST SEEN, TYPE, REASON, OBJECT, MESSAGE. */
export function buildEventTable(events: Event[], now: number): Table {
  const rows = events.map((e) => {
    const seen = e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp;
    const count = (e.count ?? 1) > 1 ? ` (x${e.count} over ${firstSeen(e, now)})` : '';
    const kind = (e.involvedObject?.kind ?? '').toLowerCase();
    return [
      formatAge(seen, now) + count,
      e.type ?? 'Normal',
      e.reason ?? '',
      `${kind}/${e.involvedObject?.name ?? ''}`,
      e.message ?? '',
    ];
  });
  return { headers: ['LAST SEEN', 'TYPE', 'REASON', 'OBJECT', 'MESSAGE'], rows };
}

function firstSeen(e: Event, now: number): string {
  return formatAge(e.firstTimestamp ?? e.eventTime, now);
}
