/**
 * Applies one committed command of the log to the object tables. Everything
 * here is deterministic: the same command on the same tables gives the same
 * result on every server. A command that breaks a rule (a conflict, a taken
 * nodePort) throws a typed error; the caller rolls the transaction back.
 */
import { ConflictError, FlotillaError, InvalidError, NotFoundError } from '../errors';
import type { Deployment, Manifest, Service, ServicePort } from '../manifest/types';
import { canonicalJson, cloneJson, contentHash, sameContent } from '../model/canonical';
import type { Node, Pod, ReplicaSet } from '../model/types';
import type {
  ApplyOutcome,
  Command,
  CommandResult,
  DeploymentStatusCommand,
  NodeConditionCommand,
  RegisterNodeCommand,
} from './commands';
import type { Kind, Store, StoredObject } from './store';
import { recordEvents } from './apply-events';
import { admitNode, refuseRemovedNode, removeNode, setUnschedulable } from './apply-nodes';

/** Annotation that numbers a Deployment's revisions, as Kubernetes does. */
export const REVISION_ANNOTATION = 'deployment.kubernetes.io/revision';
/** Label that ties pods and ReplicaSets to one pod template. */
export const TEMPLATE_HASH_LABEL = 'pod-template-hash';
/** The range NodePorts are allocated from, as in Kubernetes. */
export const NODE_PORT_RANGE = { min: 30000, max: 32767 } as const;

/** Annotations the server owns; they never make an apply "configured". */
const SERVER_ANNOTATIONS = new Set([REVISION_ANNOTATION]);

/** Applies `command`, committed at log position `index`. */
export function applyCommand(store: Store, index: number, command: Command): CommandResult {
  switch (command.op) {
    case 'apply':
      return {
        index,
        applied: applyObjects(store, index, command.objects, command.uids, command.now),
      };
    case 'create':
      return {
        index,
        object: createObject(store, index, command.object, command.uid, command.now),
      };
    case 'update':
      return { index, object: updateObject(store, index, command.object, command.now) };
    case 'delete':
      return { index, object: deleteObject(store, index, command.kind, command.name, command.now) };
    case 'createPods':
      for (const pod of command.pods) createPod(store, index, pod);
      return { index };
    case 'bindPods':
      for (const b of command.bindings) bindPod(store, index, b.name, b.uid, b.nodeName);
      return { index };
    case 'terminatePods':
      for (const p of command.pods) terminatePod(store, index, p.name, p.uid, command.now);
      return { index };
    case 'removePod':
      removePod(store, index, command.name, command.uid);
      return { index };
    case 'podStatus':
      setPodStatus(store, index, command.name, command.uid, command.status);
      return { index };
    case 'deploymentStatus':
      setDeploymentStatus(store, index, command);
      return { index };
    case 'registerNode':
      registerNode(store, index, command);
      return { index };
    case 'nodeCondition':
      setNodeCondition(store, index, command);
      return { index };
    case 'recordEvents':
      recordEvents(store, index, command);
      return { index };
    case 'setUnschedulable':
      return { index, object: setUnschedulable(store, index, command) };
    case 'removeNode':
      removeNode(store, index, command);
      return { index };
    case 'admitNode':
      admitNode(store, command);
      return { index };
  }
}

function applyObjects(
  store: Store,
  index: number,
  objects: Manifest[],
  uids: string[],
  now: string,
): ApplyOutcome[] {
  return objects.map((object, i) => {
    const result = putUserObject(store, index, object, uids[i], now);
    return { kind: object.kind, name: object.metadata.name, result: result.outcome };
  });
}

function createObject(store: Store, index: number, object: Manifest, uid: string, now: string) {
  if (store.get(object.kind, object.metadata.name)) {
    throw new FlotillaError(
      'AlreadyExists',
      `${object.kind.toLowerCase()} "${object.metadata.name}" already exists`,
      409,
    );
  }
  return putUserObject(store, index, object, uid, now).stored;
}

function updateObject(store: Store, index: number, object: Manifest, now: string) {
  const existing = store.get(object.kind, object.metadata.name);
  if (!existing) throw new NotFoundError(object.kind, object.metadata.name);
  const expected = object.metadata.resourceVersion;
  if (expected !== undefined && expected !== existing.metadata.resourceVersion) {
    throw new ConflictError(
      `the object has been modified; please apply your changes to the latest version ` +
        `and try again (${object.kind.toLowerCase()} "${object.metadata.name}": ` +
        `resourceVersion ${expected} is not the current ${existing.metadata.resourceVersion})`,
    );
  }
  return putUserObject(store, index, object, existing.metadata.uid, now).stored;
}

function putUserObject(
  store: Store,
  index: number,
  object: Manifest,
  uid: string,
  now: string,
): { outcome: ApplyOutcome['result']; stored: StoredObject } {
  if (object.kind === 'Deployment') return putDeployment(store, index, object, uid, now);
  return putService(store, index, object, uid, now);
}

/** The part of an object that the user owns: what makes an apply a change. */
function userPart(object: { metadata: Manifest['metadata']; spec: unknown }): unknown {
  const annotations = { ...(object.metadata.annotations ?? {}) };
  for (const key of SERVER_ANNOTATIONS) delete annotations[key];
  return { labels: object.metadata.labels ?? {}, annotations, spec: object.spec };
}

function newMeta(object: Manifest, existing: StoredObject | undefined, uid: string, now: string) {
  const meta = existing?.metadata as Deployment['metadata'] | undefined;
  return {
    name: object.metadata.name,
    namespace: 'default',
    labels: object.metadata.labels,
    annotations: { ...(object.metadata.annotations ?? {}) },
    uid: existing?.metadata.uid ?? uid,
    resourceVersion: '',
    generation: meta?.generation ?? 1,
    creationTimestamp: (meta?.creationTimestamp as string | undefined) ?? now,
  };
}

function putDeployment(
  store: Store,
  index: number,
  manifest: Deployment,
  uid: string,
  now: string,
) {
  const existing = store.get<Deployment & StoredObject>('Deployment', manifest.metadata.name);
  if (existing && sameContent(userPart(existing), userPart(manifest))) {
    return { outcome: 'unchanged' as const, stored: existing as StoredObject };
  }
  const metadata = newMeta(manifest, existing, uid, now);
  if (existing && !sameContent(existing.spec, manifest.spec)) metadata.generation += 1;
  const revision = existing?.metadata.annotations?.[REVISION_ANNOTATION];
  if (revision) metadata.annotations[REVISION_ANNOTATION] = revision;
  const deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata,
    spec: cloneJson(manifest.spec),
    status: existing?.status ?? {},
  } as unknown as Deployment & StoredObject;

  ensureRevision(store, index, deployment, now);
  store.put('Deployment', deployment, index);
  return { outcome: existing ? ('configured' as const) : ('created' as const), stored: deployment };
}

/**
 * Makes the ReplicaSet of the Deployment's current template the newest
 * revision: a new template gets the next number; a template that an older
 * ReplicaSet already has (an undo) moves that one to the next number, so a
 * second undo goes back to the version just undone, as kubectl does.
 */
function ensureRevision(
  store: Store,
  index: number,
  deployment: Deployment & StoredObject,
  now: string,
) {
  const hash = templateHash(deployment.spec.template);
  const name = `${deployment.metadata.name}-${hash}`;
  const owned = ownedReplicaSets(store, deployment.metadata.uid as string);
  const newest = Math.max(0, ...owned.map(revisionOf));
  let rs = owned.find((r) => r.metadata.name === name);

  if (!rs) {
    rs = newReplicaSet(deployment, name, hash, newest + 1, now);
  } else if (revisionOf(rs) !== newest) {
    rs.metadata.annotations = {
      ...rs.metadata.annotations,
      [REVISION_ANNOTATION]: String(newest + 1),
    };
  } else {
    deployment.metadata.annotations![REVISION_ANNOTATION] = String(newest);
    return;
  }
  store.put('ReplicaSet', rs as unknown as StoredObject, index);
  deployment.metadata.annotations![REVISION_ANNOTATION] =
    rs.metadata.annotations![REVISION_ANNOTATION];
}

function newReplicaSet(
  deployment: Deployment & StoredObject,
  name: string,
  hash: string,
  revision: number,
  now: string,
): ReplicaSet {
  const template = cloneJson(deployment.spec.template);
  template.metadata = template.metadata ?? {};
  template.metadata.labels = { ...(template.metadata.labels ?? {}), [TEMPLATE_HASH_LABEL]: hash };
  return {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: {
      name,
      namespace: 'default',
      uid: derivedUid(deployment.metadata.uid as string, hash),
      resourceVersion: '',
      creationTimestamp: now,
      labels: { ...(template.metadata.labels ?? {}) },
      annotations: { [REVISION_ANNOTATION]: String(revision) },
      ownerReferences: [ownerRef(deployment)],
    },
    spec: {
      replicas: 0,
      selector: {
        matchLabels: {
          ...(deployment.spec.selector.matchLabels ?? {}),
          [TEMPLATE_HASH_LABEL]: hash,
        },
      },
      template,
    },
    status: { replicas: 0, readyReplicas: 0, availableReplicas: 0 },
  };
}

/** The hash that names a pod template's ReplicaSet and labels its pods. */
export function templateHash(template: Deployment['spec']['template']): string {
  return contentHash(template, 10);
}

/** The revision number a ReplicaSet carries, 0 when it has none. */
export function revisionOf(rs: { metadata: { annotations?: Record<string, string> } }): number {
  return Number(rs.metadata.annotations?.[REVISION_ANNOTATION] ?? 0) || 0;
}

/** ReplicaSets whose controlling owner has `ownerUid`. */
export function ownedReplicaSets(store: Store, ownerUid: string): ReplicaSet[] {
  return store
    .list<ReplicaSet>('ReplicaSet')
    .filter((rs) => rs.metadata.ownerReferences?.some((o) => o.uid === ownerUid));
}

function ownerRef(owner: {
  apiVersion?: string;
  kind: string;
  metadata: { name: string; uid: unknown };
}) {
  return {
    apiVersion: owner.apiVersion ?? 'apps/v1',
    kind: owner.kind,
    name: owner.metadata.name,
    uid: owner.metadata.uid as string,
    controller: true,
  };
}

function derivedUid(base: string, salt: string): string {
  const h = contentHash({ base, salt }, 32).padEnd(32, '0');
  const parts = [h.slice(0, 8), h.slice(8, 12), h.slice(12, 16), h.slice(16, 20), h.slice(20, 32)];
  return parts.join('-');
}

function putService(store: Store, index: number, manifest: Service, uid: string, now: string) {
  const existing = store.get<Service & StoredObject>('Service', manifest.metadata.name);
  const spec = cloneJson(manifest.spec);
  assignNodePorts(store, manifest.metadata.name, spec, existing?.spec, uid);
  checkLoadBalancerPorts(store, manifest.metadata.name, spec);
  const candidate = { metadata: manifest.metadata, spec };
  if (existing && sameContent(userPart(existing), userPart(candidate))) {
    return { outcome: 'unchanged' as const, stored: existing as StoredObject };
  }
  const metadata = newMeta(manifest, existing, uid, now);
  if (existing && !sameContent(existing.spec, spec)) metadata.generation += 1;
  const service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata,
    spec,
    status: { loadBalancer: {} },
  } as unknown as StoredObject;
  store.put('Service', service, index);
  return { outcome: existing ? ('configured' as const) : ('created' as const), stored: service };
}

function exposesNodePorts(spec: Service['spec']): boolean {
  return spec.type === 'NodePort' || spec.type === 'LoadBalancer';
}

/**
 * Fills every NodePort a Service needs: the one the user asked for if free,
 * the one it already had for the same port, or a new one. The search starts
 * at a point derived from the Service's uid so that allocation is
 * deterministic yet spread over the range. Requested ports are reserved
 * before any is allocated, so an allocation never takes a port that a later
 * port of the same Service asks for.
 */
function assignNodePorts(
  store: Store,
  serviceName: string,
  spec: Service['spec'],
  previous: Service['spec'] | undefined,
  uid: string,
) {
  if (!exposesNodePorts(spec)) {
    for (const port of spec.ports) delete port.nodePort;
    return;
  }
  const taken = nodePortsInUse(store, serviceName);
  spec.ports.forEach((port, i) => {
    if (port.nodePort === undefined) return;
    const owner = taken.get(port.nodePort);
    if (owner) {
      throw new InvalidError(
        `provided port ${port.nodePort} is already allocated to service "${owner}"`,
        `spec.ports[${i}].nodePort`,
      );
    }
    taken.set(port.nodePort, serviceName);
  });
  spec.ports.forEach((port, i) => {
    if (port.nodePort !== undefined) return;
    const kept = previousNodePort(previous, port);
    port.nodePort =
      kept !== undefined && !taken.has(kept) ? kept : allocateNodePort(taken, `${uid}/${i}`);
    taken.set(port.nodePort, serviceName);
  });
}

function nodePortsInUse(store: Store, except: string): Map<number, string> {
  const taken = new Map<number, string>();
  for (const svc of store.list<Service>('Service')) {
    if (svc.metadata.name === except) continue;
    for (const p of svc.spec.ports) if (p.nodePort) taken.set(p.nodePort, svc.metadata.name);
  }
  return taken;
}

function previousNodePort(previous: Service['spec'] | undefined, port: ServicePort) {
  const match = previous?.ports.find(
    (p) => (p.name ?? '') === (port.name ?? '') && p.port === port.port,
  );
  return match?.nodePort;
}

function allocateNodePort(taken: Map<number, string>, seed: string): number {
  const size = NODE_PORT_RANGE.max - NODE_PORT_RANGE.min + 1;
  const start = parseInt(contentHash(seed, 8), 36) % size;
  for (let i = 0; i < size; i++) {
    const port = NODE_PORT_RANGE.min + ((start + i) % size);
    if (!taken.has(port)) return port;
  }
  throw new FlotillaError('NodePortsExhausted', 'no free NodePort left in 30000-32767', 503);
}

/** Two LoadBalancer Services cannot listen on the same port of the nodes. */
function checkLoadBalancerPorts(store: Store, serviceName: string, spec: Service['spec']) {
  if (spec.type !== 'LoadBalancer') return;
  for (const svc of store.list<Service>('Service')) {
    if (svc.metadata.name === serviceName || svc.spec.type !== 'LoadBalancer') continue;
    spec.ports.forEach((port, i) => {
      if (svc.spec.ports.some((p) => p.port === port.port)) {
        throw new InvalidError(
          `port ${port.port} is already used by LoadBalancer service "${svc.metadata.name}"`,
          `spec.ports[${i}].port`,
        );
      }
    });
  }
}

function deleteObject(
  store: Store,
  index: number,
  kind: 'Deployment' | 'Service',
  name: string,
  now: string,
) {
  const existing = store.get(kind, name);
  if (!existing) throw new NotFoundError(kind, name);
  store.remove(kind, existing, index);
  if (kind === 'Deployment') {
    const uid = existing.metadata.uid;
    for (const rs of ownedReplicaSets(store, uid)) {
      store.remove('ReplicaSet', rs as unknown as StoredObject, index);
      for (const pod of podsOwnedBy(store, rs.metadata.uid)) {
        terminatePod(store, index, pod.metadata.name, pod.metadata.uid, now);
      }
    }
  }
  return existing;
}

/** Pods whose controlling owner has `ownerUid`. */
export function podsOwnedBy(store: Store, ownerUid: string): Pod[] {
  return store
    .list<Pod>('Pod')
    .filter((p) => p.metadata.ownerReferences?.some((o) => o.uid === ownerUid));
}

function createPod(store: Store, index: number, pod: Pod) {
  if (store.get('Pod', pod.metadata.name)) {
    throw new FlotillaError('AlreadyExists', `pod "${pod.metadata.name}" already exists`, 409);
  }
  store.put('Pod', pod as unknown as StoredObject, index);
}

function livePod(store: Store, name: string, uid: string): Pod | undefined {
  const pod = store.get<Pod>('Pod', name);
  return pod && pod.metadata.uid === uid ? pod : undefined;
}

function bindPod(store: Store, index: number, name: string, uid: string, nodeName: string) {
  const pod = livePod(store, name, uid);
  if (!pod || pod.spec.nodeName || pod.metadata.deletionTimestamp) return;
  pod.spec.nodeName = nodeName;
  pod.status = { ...pod.status, reason: undefined, message: undefined };
  pod.status.conditions = upsertCondition(pod.status.conditions, {
    type: 'PodScheduled',
    status: 'True',
  });
  store.put('Pod', pod as unknown as StoredObject, index);
}

function terminatePod(store: Store, index: number, name: string, uid: string, now: string) {
  const pod = livePod(store, name, uid);
  if (!pod || pod.metadata.deletionTimestamp) return;
  if (!pod.spec.nodeName) {
    // Never placed, so no node has a container to stop: nobody else would
    // ever finish its termination.
    store.remove('Pod', pod as unknown as StoredObject, index);
    return;
  }
  pod.metadata.deletionTimestamp = now;
  store.put('Pod', pod as unknown as StoredObject, index);
}

function removePod(store: Store, index: number, name: string, uid: string) {
  const pod = livePod(store, name, uid);
  if (pod) store.remove('Pod', pod as unknown as StoredObject, index);
}

function setPodStatus(
  store: Store,
  index: number,
  name: string,
  uid: string,
  status: Pod['status'],
) {
  const pod = livePod(store, name, uid);
  if (!pod || sameContent(pod.status, status)) return;
  pod.status = status;
  store.put('Pod', pod as unknown as StoredObject, index);
}

function setDeploymentStatus(store: Store, index: number, cmd: DeploymentStatusCommand) {
  const deployment = store.get<Deployment & StoredObject>('Deployment', cmd.name);
  if (!deployment || deployment.metadata.uid !== cmd.uid) return;
  if (!sameContent(deployment.status, cmd.status)) {
    deployment.status = cmd.status;
    store.put('Deployment', deployment, index);
  }
  for (const counts of cmd.replicaSets) {
    const rs = store.get<ReplicaSet>('ReplicaSet', counts.name);
    if (!rs) continue;
    const next = { replicas: counts.replicas, readyReplicas: counts.readyReplicas };
    if (rs.spec.replicas === next.replicas && rs.status.readyReplicas === next.readyReplicas)
      continue;
    rs.spec.replicas = next.replicas;
    rs.status = {
      replicas: next.replicas,
      readyReplicas: next.readyReplicas,
      availableReplicas: next.readyReplicas,
    };
    store.put('ReplicaSet', rs as unknown as StoredObject, index);
  }
  markCompleted(store, index, cmd.completedReplicaSet);
  for (const name of cmd.pruneReplicaSets) {
    const rs = store.get<ReplicaSet>('ReplicaSet', name);
    if (rs && podsOwnedBy(store, rs.metadata.uid).length === 0) {
      store.remove('ReplicaSet', rs as unknown as StoredObject, index);
    }
  }
}

/** Annotation on a ReplicaSet whose rollout completed once. */
const COMPLETE_ANNOTATION = 'flotilla.io/rollout-complete';

function markCompleted(store: Store, index: number, name: string | undefined) {
  const rs = name ? store.get<ReplicaSet>('ReplicaSet', name) : undefined;
  if (!rs || rs.metadata.annotations?.[COMPLETE_ANNOTATION]) return;
  rs.metadata.annotations = { ...rs.metadata.annotations, [COMPLETE_ANNOTATION]: 'true' };
  store.put('ReplicaSet', rs as unknown as StoredObject, index);
}

function registerNode(store: Store, index: number, cmd: RegisterNodeCommand) {
  refuseRemovedNode(store, cmd.node.metadata.name);
  const existing = store.get<Node>('Node', cmd.node.metadata.name);
  const node: Node = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      ...cmd.node.metadata,
      uid: existing?.metadata.uid ?? cmd.uid,
      resourceVersion: '',
      creationTimestamp: existing?.metadata.creationTimestamp ?? cmd.now,
    },
    spec: existing?.spec ?? {},
    status: cmd.node.status,
  };
  if (
    existing &&
    canonicalJson({ ...existing, metadata: { ...existing.metadata, resourceVersion: '' } }) ===
      canonicalJson(node)
  ) {
    return;
  }
  store.put('Node', node as unknown as StoredObject, index);
}

function setNodeCondition(store: Store, index: number, cmd: NodeConditionCommand) {
  const node = store.get<Node>('Node', cmd.name);
  if (!node) return;
  const old = node.status.conditions.find((c) => c.type === cmd.condition.type);
  if (old && old.status === cmd.condition.status && old.reason === cmd.condition.reason) return;
  const changed = !old || old.status !== cmd.condition.status;
  const since = changed ? cmd.now : old.lastTransitionTime;
  const condition = { ...cmd.condition, ...(since ? { lastTransitionTime: since } : {}) };
  node.status.conditions = upsertCondition(node.status.conditions, condition);
  store.put('Node', node as unknown as StoredObject, index);
}

/** Replaces the condition of the same type, or adds it. */
export function upsertCondition<T extends { type: string }>(
  list: T[] | undefined,
  condition: T,
): T[] {
  const rest = (list ?? []).filter((c) => c.type !== condition.type);
  return [...rest, condition];
}

export type { Kind };
