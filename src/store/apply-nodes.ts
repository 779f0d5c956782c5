/**
 * The node commands of the log: cordon and uncordon, removal from the
 * cluster and admission back. Deterministic like the rest of apply.ts.
 */
import { NodeRemovedError, NotFoundError } from '../errors';
import type { Node, Pod } from '../model/types';
import type {
  AdmitNodeCommand,
  RemoveNodeCommand,
  SetUnschedulableCommand,
} from './commands';
import type { Store, StoredObject } from './store';

/** Meta key prefix of removed nodes' tombstones (replicated, see state-snapshot.ts). */
export const REMOVED_NODE_PREFIX = 'removed/';

/** True when `name` was removed from the cluster and not admitted again. */
export function isRemovedNode(store: Store, name: string): boolean {
  return store.getMeta(REMOVED_NODE_PREFIX + name) === 'true';
}

/** Throws NodeRemovedError for a removed node, so it cannot register again. */
export function refuseRemovedNode(store: Store, name: string): void {
  if (isRemovedNode(store, name)) throw new NodeRemovedError(name);
}

/** Sets or clears `spec.unschedulable`; absent rather than false, as kubectl leaves it. */
export function setUnschedulable(store: Store, index: number, cmd: SetUnschedulableCommand) {
  const node = store.get<Node>('Node', cmd.name);
  if (!node) throw new NotFoundError('nodes', cmd.name);
  if (Boolean(node.spec.unschedulable) === cmd.unschedulable) return node;
  const spec = { ...node.spec };
  if (cmd.unschedulable) spec.unschedulable = true;
  else delete spec.unschedulable;
  node.spec = spec;
  store.put('Node', node as unknown as StoredObject, index);
  return node;
}

/**
 * Deletes the node's pods outright (its kubelet may be gone, so nobody
 * would confirm a graceful stop), then the node, its address and sets the
 * tombstone. Removing a node twice is harmless.
 */
export function removeNode(store: Store, index: number, cmd: RemoveNodeCommand): void {
  const pods = store.list<Pod>('Pod').filter((p) => p.spec.nodeName === cmd.name);
  for (const pod of pods) store.remove('Pod', pod as unknown as StoredObject, index);
  const node = store.get<Node>('Node', cmd.name);
  if (node) store.remove('Node', node as unknown as StoredObject, index);
  store.db.prepare('DELETE FROM meta WHERE key = ?').run(`peer/${cmd.name}`);
  store.setMeta(REMOVED_NODE_PREFIX + cmd.name, 'true');
}

/** Lifts a tombstone. */
export function admitNode(store: Store, cmd: AdmitNodeCommand): void {
  store.db.prepare('DELETE FROM meta WHERE key = ?').run(REMOVED_NODE_PREFIX + cmd.name);
}
