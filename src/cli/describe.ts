import type { ApiClient } from '../api/client';
import type {
  Condition,
  Container,
  ContainerState,
  Deployment,
  Event,
  KubeObject,
  List,
  Node,
  ResourceList,
  Pod,
  Service,
} from '../model/k8s-types';
import { ApiError } from '../errors';
import {
  formatAge,
  formatLabels,
  formatTimestamp,
  orNone,
  renderTable,
  type Table,
} from '../tables/format';
import { listPods } from './get';
import { buildTable, internalIP, podsOnNode, podStatus } from '../tables/printers';
import { objectPath, parseSingleTarget } from '../tables/kinds';
import { matchesSelector, type Requirement } from './selector';
import type { Output } from './context';

/** One `Key: value` line of a describe block. */
type Field = [key: string, value: string];

// Keys are padded so the values of a block line up; a value of several
// lines continues under its first line.
function block(fields: Field[], indent = ''): string {
  const width = Math.max(...fields.map(([key]) => key.length)) + 2;
  const continuation = '\n' + ' '.repeat(indent.length + width);
  return fields
    .map(([key, value]) => {
      const aligned = value.split('\n').join(continuation);
      return `${indent}${(key + ':').padEnd(width)}${aligned}\n`;
    })
    .join('');
}

/** One `k=v` (or `k: v`) per line, continued under the first by `block`. */
function mapLines(map: Record<string, string> | undefined, separator = '='): string {
  const entries = Object.entries(map ?? {}).sort(([a], [b]) => a.localeCompare(b));
  if (entries.length === 0) return '<none>';
  return entries.map(([k, v]) => `${k}${separator}${v}`).join('\n');
}

function indentTable(table: Table, indent: string): string {
  return renderTable(table)
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => indent + line + '\n')
    .join('');
}

function conditionsSection(conditions: Condition[] | undefined, withReason = true): string {
  if (!conditions?.length) return 'Conditions:  <none>\n';
  const headers = withReason ? ['Type', 'Status', 'Reason'] : ['Type', 'Status'];
  const rows = conditions.map((c) => {
    const cells = [c.type, c.status];
    return withReason ? [...cells, c.reason ?? ''] : cells;
  });
  const rule = headers.map((h) => '-'.repeat(h.length));
  return 'Conditions:\n' + indentTable({ headers, rows: [rule, ...rows] }, '  ');
}

function metaFields(obj: KubeObject, withNamespace = true): Field[] {
  const meta = obj.metadata ?? {};
  const fields: Field[] = [['Name', meta.name ?? '']];
  if (withNamespace) fields.push(['Namespace', 'default']);
  fields.push(['CreationTimestamp', formatTimestamp(meta.creationTimestamp)]);
  fields.push(['Labels', mapLines(meta.labels)]);
  fields.push(['Annotations', mapLines(meta.annotations, ': ')]);
  return fields;
}

/** Runs `flotilla describe KIND NAME`. */
export async function runDescribe(client: ApiClient, words: string[], output: Output) {
  const { type, name } = parseSingleTarget(words);
  const obj = await client.request<KubeObject>('GET', objectPath(type, name));
  const now = Date.now();
  // Every kind ends with the events about it, as kubectl's describe does.
  const events = async () =>
    eventsSection(await fetchEvents(client, type.kind, obj.metadata?.name ?? name), now);
  switch (type.kind) {
    case 'Deployment':
      return output.out(
        (await describeDeployment(client, obj as Deployment, now)) + (await events()),
      );
    case 'Pod':
      return output.out(await describePod(client, obj as Pod, now));
    case 'Service':
      return output.out((await describeService(client, obj as Service)) + (await events()));
    case 'Node':
      return output.out((await describeNode(client, obj as Node, now)) + (await events()));
  }
}

async function describeDeployment(client: ApiClient, d: Deployment, now: number) {
  const spec = d.spec ?? {};
  const st = d.status ?? {};
  const desired = spec.replicas ?? 1;
  const replicas =
    `${desired} desired | ${st.updatedReplicas ?? 0} updated | ${st.replicas ?? 0} total | ` +
    `${st.availableReplicas ?? 0} available | ${st.unavailableReplicas ?? 0} unavailable`;
  const strategy = spec.strategy?.type ?? 'RollingUpdate';
  const fields: Field[] = [
    ...metaFields(d),
    ['Selector', formatLabels(spec.selector?.matchLabels)],
    ['Replicas', replicas],
    ['StrategyType', strategy],
    ['MinReadySeconds', String(spec.minReadySeconds ?? 0)],
  ];
  if (strategy === 'RollingUpdate') {
    const ru = spec.strategy?.rollingUpdate ?? {};
    const unavailable = `${ru.maxUnavailable ?? '25%'} max unavailable`;
    fields.push(['RollingUpdateStrategy', `${unavailable}, ${ru.maxSurge ?? '25%'} max surge`]);
  }

  const selector = spec.selector?.matchLabels ?? {};
  const pods = (await listPods(client)).filter((p) => labelsMatch(p, selector));
  return (
    block(fields) +
    'Pod Template:\n' +
    block([['Labels', formatLabels(spec.template?.metadata?.labels)]], '  ') +
    containersSection(spec.template?.spec?.containers ?? [], '  ') +
    conditionsSection(st.conditions) +
    podsSection(pods, now)
  );
}

function labelsMatch(pod: Pod, selector: Record<string, string>): boolean {
  const reqs: Requirement[] = Object.entries(selector).map(([key, value]) => ({
    key,
    op: '=',
    value,
  }));
  return reqs.length > 0 && matchesSelector(pod.metadata?.labels, reqs);
}

function containersSection(containers: Container[], indent: string): string {
  if (containers.length === 0) return `${indent}Containers:  <none>\n`;
  return (
    `${indent}Containers:\n` +
    containers.map((c) => `${indent} ${c.name}:\n` + containerBlock(c, indent + '  ')).join('')
  );
}

function containerBlock(c: Container, indent: string): string {
  const ports = (c.ports ?? []).map((p) => `${p.containerPort}/${p.protocol ?? 'TCP'}`);
  const env = (c.env ?? []).map((e) => `${e.name}=${e.value ?? ''}`);
  const fields: Field[] = [
    ['Image', orNone(c.image)],
    ['Port', orNone(ports.join(', '))],
  ];
  if (c.command?.length) fields.push(['Command', c.command.join(' ')]);
  if (c.args?.length) fields.push(['Args', c.args.join(' ')]);
  fields.push(['Environment', orNone(env.join(', '))]);
  return block(fields, indent);
}

function podsSection(pods: Pod[], now: number): string {
  if (pods.length === 0) return 'Pods:  <none>\n';
  return 'Pods:\n' + indentTable(buildTable('Pod', pods, { now, wide: true }), '  ');
}

async function describePod(client: ApiClient, pod: Pod, now: number) {
  const st = pod.status ?? {};
  const fields: Field[] = [
    ...metaFields(pod),
    ['Node', `${orNone(pod.spec?.nodeName)}${st.hostIP ? '/' + st.hostIP : ''}`],
    ['Start Time', formatTimestamp(st.startTime)],
    ['Status', podStatus(pod)],
  ];
  if (st.reason) fields.push(['Reason', st.reason]);
  if (st.message) fields.push(['Message', st.message]);
  fields.push(['IP', orNone(st.podIP)]);
  const owner =
    pod.metadata?.ownerReferences?.find((o) => o.controller) ?? pod.metadata?.ownerReferences?.[0];
  fields.push(['Controlled By', owner ? `${owner.kind}/${owner.name}` : '<none>']);

  const events = await fetchEvents(client, 'Pod', pod.metadata?.name ?? '');
  return (
    block(fields) +
    podContainersSection(pod) +
    conditionsSection(st.conditions, false) +
    eventsSection(events, now)
  );
}

function podContainersSection(pod: Pod): string {
  const containers = pod.spec?.containers ?? [];
  if (containers.length === 0) return 'Containers:  <none>\n';
  const statuses = pod.status?.containerStatuses ?? [];
  const parts = containers.map((c) => {
    const cs = statuses.find((s) => s.name === c.name);
    const fields: Field[] = [
      ['Container ID', orNone(cs?.containerID)],
      ['Image', orNone(c.image)],
      ['Image ID', orNone(cs?.imageID)],
      ...stateFields('State', cs?.state),
    ];
    if (cs?.lastState && Object.keys(cs.lastState).length > 0) {
      fields.push(...stateFields('Last State', cs.lastState));
    }
    fields.push(['Ready', cs?.ready ? 'True' : 'False']);
    fields.push(['Restart Count', String(cs?.restartCount ?? 0)]);
    return `  ${c.name}:\n` + block(fields, '    ');
  });
  return 'Containers:\n' + parts.join('');
}

function stateFields(label: string, state: ContainerState | undefined): Field[] {
  if (state?.running) {
    return [
      [label, 'Running'],
      ['  Started', formatTimestamp(state.running.startedAt)],
    ];
  }
  if (state?.waiting) {
    const fields: Field[] = [[label, 'Waiting']];
    if (state.waiting.reason) fields.push(['  Reason', state.waiting.reason]);
    if (state.waiting.message) fields.push(['  Message', state.waiting.message]);
    return fields;
  }
  if (state?.terminated) {
    const t = state.terminated;
    const fields: Field[] = [[label, 'Terminated']];
    if (t.reason) fields.push(['  Reason', t.reason]);
    fields.push(['  Exit Code', String(t.exitCode ?? 0)]);
    fields.push(['  Started', formatTimestamp(t.startedAt)]);
    fields.push(['  Finished', formatTimestamp(t.finishedAt)]);
    return fields;
  }
  return [[label, '<unknown>']];
}

/** Events about one object; an API without events yields none rather than an error. */
async function fetchEvents(client: ApiClient, kind: string, name: string): Promise<Event[]> {
  try {
    const list = await client.request<List<Event>>('GET', '/api/v1/namespaces/default/events');
    return (list?.items ?? []).filter(
      (e) => e.involvedObject?.kind === kind && e.involvedObject?.name === name,
    );
  } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || err.status === 405)) return [];
    throw err;
  }
}

function eventsSection(events: Event[], now: number): string {
  if (events.length === 0) return 'Events:  <none>\n';
  const rows = events.map((e) => [
    e.type ?? 'Normal',
    e.reason ?? '',
    formatAge(e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp, now),
    e.source?.component ?? '',
    e.message ?? '',
  ]);
  const headers = ['Type', 'Reason', 'Age', 'From', 'Message'];
  const rule = headers.map((h) => '-'.repeat(h.length));
  return 'Events:\n' + indentTable({ headers, rows: [rule, ...rows] }, '  ');
}

async function describeService(client: ApiClient, svc: Service) {
  const spec = svc.spec ?? {};
  const ports = spec.ports ?? [];
  const endpoints = await serviceEndpoints(client, svc);
  const fields: Field[] = [
    ...metaFields(svc),
    ['Selector', formatLabels(spec.selector)],
    ['Type', spec.type ?? 'ClusterIP'],
    ['IP', orNone(spec.clusterIP)],
  ];
  const ingress = svc.status?.loadBalancer?.ingress ?? [];
  if (ingress.length) {
    fields.push(['LoadBalancer Ingress', ingress.map((i) => i.ip ?? i.hostname).join(', ')]);
  }
  for (const p of ports) {
    const name = p.name ?? '<unset>';
    const proto = p.protocol ?? 'TCP';
    fields.push(['Port', `${name}  ${p.port}/${proto}`]);
    fields.push(['TargetPort', `${p.targetPort ?? p.port}/${proto}`]);
    if (p.nodePort) fields.push(['NodePort', `${name}  ${p.nodePort}/${proto}`]);
    const targets = endpoints.map((ip) => `${ip}:${p.targetPort ?? p.port}`);
    fields.push(['Endpoints', orNone(targets.join(','))]);
  }
  return block(fields);
}

/** The IPs of ready pods the service's selector matches. */
async function serviceEndpoints(client: ApiClient, svc: Service): Promise<string[]> {
  const selector = svc.spec?.selector ?? {};
  if (Object.keys(selector).length === 0) return [];
  const pods = await listPods(client);
  return pods
    .filter((p) => labelsMatch(p, selector) && !p.metadata?.deletionTimestamp)
    .filter((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
    .map((p) => p.status?.podIP ?? '')
    .filter((ip) => ip !== '');
}

async function describeNode(client: ApiClient, node: Node, now: number) {
  const st = node.status ?? {};
  const role = node.metadata?.annotations?.['flotilla.io/role'];
  const fields: Field[] = [
    ...metaFields(node, false),
    ['Roles', orNone(role)],
    ['Unschedulable', node.spec?.unschedulable ? 'true' : 'false'],
    ['InternalIP', orNone(internalIP(node))],
    ['Version', orNone(st.nodeInfo?.kubeletVersion)],
  ];
  const pods = podsOnNode(await listPods(client), node.metadata?.name);
  return (
    block(fields) +
    conditionsSection(st.conditions) +
    resourceSection('Capacity', st.capacity) +
    resourceSection('Allocatable', st.allocatable) +
    podsSection(pods, now)
  );
}

function resourceSection(title: string, res: ResourceList | undefined) {
  const entries = Object.entries(res ?? {}).filter(([, v]) => v !== undefined);
  if (entries.length === 0) return `${title}:  <none>\n`;
  return `${title}:\n` + block(entries as Field[], '  ');
}
