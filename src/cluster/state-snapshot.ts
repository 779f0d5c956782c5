/**
 * The application side of Raft snapshots: a dump of the object tables and
 * the replicated meta keys at an applied index, and its installation on a
 * server that replaces its tables with it and tells listeners what changed.
 */
import { isTokenKey } from '../auth/tokens';
import { REMOVED_NODE_PREFIX } from '../store/apply-nodes';
import { PKI_META_KEYS } from './certificates';
import type { Change, Kind, Store, StoredObject } from '../store/store';

/** Meta keys every server holds alike; the others (node name, applied index) are local. */
const REPLICATED_META = ['cluster_id', 'max_voters', ...PKI_META_KEYS];
const PEER_PREFIX = 'peer/';

interface ObjectRow {
  kind: string;
  namespace: string;
  name: string;
  uid: string;
  resource_version: number;
  body: string;
}

interface StateDump {
  objects: ObjectRow[];
  meta: Record<string, string>;
}

/** True for a meta key that is part of the replicated state. */
export function isReplicatedMeta(key: string): boolean {
  const prefixed =
    key.startsWith(PEER_PREFIX) || key.startsWith(REMOVED_NODE_PREFIX) || isTokenKey(key);
  return REPLICATED_META.includes(key) || prefixed;
}

/** The meta key holding a member's address. */
export function peerKey(id: string): string {
  return `${PEER_PREFIX}${id}`;
}

/** Every member address recorded in meta. */
export function readPeers(store: Store): Map<string, string> {
  const rows = store.db
    .prepare('SELECT key, value FROM meta WHERE key LIKE ?')
    .all(`${PEER_PREFIX}%`) as { key: string; value: string }[];
  return new Map(rows.map((r) => [r.key.slice(PEER_PREFIX.length), r.value]));
}

/** Serialises the replicated state as it is now. */
export function dumpState(store: Store): Uint8Array {
  const objects = store.db
    .prepare('SELECT kind, namespace, name, uid, resource_version, body FROM objects')
    .all() as ObjectRow[];
  const meta: Record<string, string> = {};
  const rows = store.db.prepare('SELECT key, value FROM meta').all() as {
    key: string;
    value: string;
  }[];
  for (const r of rows) if (isReplicatedMeta(r.key)) meta[r.key] = r.value;
  const dump: StateDump = { objects, meta };
  return new TextEncoder().encode(JSON.stringify(dump));
}

/**
 * Replaces the replicated state with a dump taken at `index`, in one
 * transaction, then emits the differences as change events.
 */
export function installState(store: Store, data: Uint8Array, index: number): void {
  const dump = JSON.parse(new TextDecoder().decode(data)) as StateDump;
  const db = store.db;
  const before = listObjects(store);
  db.transaction(() => {
    db.prepare('DELETE FROM objects').run();
    const insert = db.prepare(
      `INSERT INTO objects (kind, namespace, name, uid, resource_version, body)
       VALUES (@kind, @namespace, @name, @uid, @resource_version, @body)`,
    );
    for (const row of dump.objects) insert.run(row);
    const keys = db.prepare('SELECT key FROM meta').all() as { key: string }[];
    for (const { key } of keys) {
      if (isReplicatedMeta(key)) db.prepare('DELETE FROM meta WHERE key = ?').run(key);
    }
    for (const [key, value] of Object.entries(dump.meta)) store.setMeta(key, value);
    store.setMeta('applied_index', String(index));
  })();
  store.discardPending();
  const changes = diffObjects(before, listObjects(store));
  if (changes.length > 0) store.emit('change', changes, index);
}

/** Empties the replicated state: a server about to receive a cluster's log. */
export function clearState(store: Store): void {
  installState(store, new TextEncoder().encode('{"objects":[],"meta":{}}'), 0);
}

function listObjects(store: Store): Map<string, { kind: Kind; body: string }> {
  const rows = store.db.prepare('SELECT kind, namespace, name, body FROM objects').all() as {
    kind: Kind;
    namespace: string;
    name: string;
    body: string;
  }[];
  return new Map(rows.map((r) => [`${r.kind}/${r.namespace}/${r.name}`, r]));
}

function diffObjects(
  before: Map<string, { kind: Kind; body: string }>,
  after: Map<string, { kind: Kind; body: string }>,
): Change[] {
  const changes: Change[] = [];
  const change = (type: Change['type'], row: { kind: Kind; body: string }) => {
    const object = JSON.parse(row.body) as StoredObject;
    changes.push({ type, kind: row.kind, name: object.metadata.name, object });
  };
  for (const [key, row] of before) if (!after.has(key)) change('DELETED', row);
  for (const [key, row] of after) {
    const old = before.get(key);
    if (!old) change('ADDED', row);
    else if (old.body !== row.body) change('MODIFIED', row);
  }
  return changes;
}
