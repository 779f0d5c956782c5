import type { Database } from '../db/open';

/**
 * Keeps the persisted snapshot of every long-lived actor, so that an agent
 * that restarts resumes each pod, deployment and service where it was.
 * A snapshot written by another version of a machine is ignored: the actor
 * then starts fresh and finds its way from what it observes.
 */
export class SnapshotStore {
  private readonly stmt;

  constructor(db: Database) {
    this.stmt = {
      load: db.prepare('SELECT machine, version, snapshot FROM actor_snapshots WHERE actor_id = ?'),
      save: db.prepare(
        `INSERT INTO actor_snapshots (actor_id, machine, version, snapshot, updated_at)
         VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (actor_id) DO UPDATE SET machine = excluded.machine,
           version = excluded.version, snapshot = excluded.snapshot,
           updated_at = excluded.updated_at`,
      ),
      remove: db.prepare('DELETE FROM actor_snapshots WHERE actor_id = ?'),
      ids: db.prepare('SELECT actor_id FROM actor_snapshots WHERE machine = ?'),
    };
  }

  /** The snapshot saved for `actorId` by this machine and version, if any. */
  load(actorId: string, machine: string, version: number): unknown {
    const row = this.stmt.load.get(actorId) as
      | { machine: string; version: number; snapshot: string }
      | undefined;
    if (!row || row.machine !== machine || row.version !== version) return undefined;
    return JSON.parse(row.snapshot);
  }

  save(actorId: string, machine: string, version: number, snapshot: unknown): void {
    this.stmt.save.run(actorId, machine, version, JSON.stringify(snapshot), new Date().toISOString());
  }

  remove(actorId: string): void {
    this.stmt.remove.run(actorId);
  }

  /** Ids of every saved actor of one machine. */
  ids(machine: string): string[] {
    return (this.stmt.ids.all(machine) as { actor_id: string }[]).map((r) => r.actor_id);
  }
}
