import { EventEmitter } from 'node:events';
import type { Database } from '../db/open';

/** The kinds of object the store keeps. */
export type Kind = 'Deployment' | 'ReplicaSet' | 'Service' | 'Pod' | 'Node' | 'Event';

/** One object that a committed command added, changed or removed. */
export interface Change {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  kind: Kind;
  name: string;
  object: StoredObject;
}

/** The fields every stored object has. */
export interface StoredObject {
  kind: string;
  metadata: { name: string; uid: string; resourceVersion: string; [key: string]: unknown };
  [key: string]: unknown;
}

const NAMESPACE = 'default';
const CLUSTER_SCOPED: ReadonlySet<Kind> = new Set(['Node']);

/**
 * Reads and writes the object tables. Writes happen only while a command of
 * the log is applied (see apply.ts), inside that command's transaction;
 * listeners hear about them after the transaction commits.
 */
export class Store extends EventEmitter {
  readonly db: Database;
  private pending: Change[] = [];
  private readonly stmt;

  constructor(db: Database) {
    super();
    this.db = db;
    this.stmt = {
      get: db.prepare('SELECT body FROM objects WHERE kind = ? AND namespace = ? AND name = ?'),
      list: db.prepare('SELECT body FROM objects WHERE kind = ? ORDER BY name'),
      put: db.prepare(
        `INSERT INTO objects (kind, namespace, name, uid, resource_version, body)
         VALUES (@kind, @namespace, @name, @uid, @rv, @body)
         ON CONFLICT (kind, namespace, name) DO UPDATE SET
           uid = excluded.uid, resource_version = excluded.resource_version,
           body = excluded.body`,
      ),
      remove: db.prepare('DELETE FROM objects WHERE kind = ? AND namespace = ? AND name = ?'),
      getMeta: db.prepare('SELECT value FROM meta WHERE key = ?'),
      putMeta: db.prepare(
        'INSERT INTO meta (key, value) VALUES (?, ?) ' +
          'ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      ),
    };
  }

  /** One object, or undefined. */
  get<T = StoredObject>(kind: Kind, name: string): T | undefined {
    const row = this.stmt.get.get(kind, namespaceOf(kind), name) as { body: string } | undefined;
    return row ? (JSON.parse(row.body) as T) : undefined;
  }

  /** Every object of a kind, sorted by name. */
  list<T = StoredObject>(kind: Kind): T[] {
    const rows = this.stmt.list.all(kind) as { body: string }[];
    return rows.map((r) => JSON.parse(r.body) as T);
  }

  /** Writes an object with the given resourceVersion; only for apply.ts. */
  put(kind: Kind, object: StoredObject, index: number): void {
    const existed = this.get(kind, object.metadata.name) !== undefined;
    object.metadata.resourceVersion = String(index);
    this.stmt.put.run({
      kind,
      namespace: namespaceOf(kind),
      name: object.metadata.name,
      uid: object.metadata.uid,
      rv: index,
      body: JSON.stringify(object),
    });
    this.pending.push({
      type: existed ? 'MODIFIED' : 'ADDED',
      kind,
      name: object.metadata.name,
      object,
    });
  }

  /** Removes an object; only for apply.ts. */
  remove(kind: Kind, object: StoredObject, index: number): void {
    this.stmt.remove.run(kind, namespaceOf(kind), object.metadata.name);
    object.metadata.resourceVersion = String(index);
    this.pending.push({ type: 'DELETED', kind, name: object.metadata.name, object });
  }

  /** A value of the meta table. */
  getMeta(key: string): string | undefined {
    const row = this.stmt.getMeta.get(key) as { value: string } | undefined;
    return row?.value;
  }

  /** Sets a value of the meta table (inside the caller's transaction, if any). */
  setMeta(key: string, value: string): void {
    this.stmt.putMeta.run(key, value);
  }

  /** Removes a value of the meta table (inside the caller's transaction, if any). */
  deleteMeta(key: string): void {
    this.db.prepare('DELETE FROM meta WHERE key = ?').run(key);
  }

  /** Every meta value whose key starts with `prefix`, by key. */
  metaWithPrefix(prefix: string): Map<string, string> {
    const rows = this.db
      .prepare('SELECT key, value FROM meta WHERE substr(key, 1, length(?)) = ?')
      .all(prefix, prefix) as { key: string; value: string }[];
    return new Map(rows.map((r) => [r.key, r.value]));
  }

  /** Forgets the changes of a transaction that rolled back. */
  discardPending(): void {
    this.pending = [];
  }

  /** Tells listeners what the transaction that just committed changed. */
  publishPending(index: number): void {
    const changes = this.pending;
    this.pending = [];
    if (changes.length > 0) this.emit('change', changes, index);
  }
}

function namespaceOf(kind: Kind): string {
  return CLUSTER_SCOPED.has(kind) ? '' : NAMESPACE;
}
