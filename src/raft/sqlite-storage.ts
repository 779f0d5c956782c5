import type Database from 'better-sqlite3';
import { RaftStorageError } from '../errors';
import { assertAppendable, type PersistBatch, type RaftStorage } from './storage';
import type { ConfState, Entry, EntryType, HardState, Snapshot } from './types';

/** The Raft tables, created in order; each statement is idempotent. */
const MIGRATIONS = [
  `CREATE TABLE IF NOT EXISTS raft_hard_state (
     id INTEGER PRIMARY KEY CHECK (id = 1),
     term INTEGER NOT NULL,
     vote TEXT NOT NULL,
     commit_index INTEGER NOT NULL
   )`,
  `CREATE TABLE IF NOT EXISTS raft_log (
     idx INTEGER PRIMARY KEY,
     term INTEGER NOT NULL,
     type TEXT NOT NULL,
     data BLOB NOT NULL
   )`,
  `CREATE TABLE IF NOT EXISTS raft_snapshot (
     id INTEGER PRIMARY KEY CHECK (id = 1),
     idx INTEGER NOT NULL,
     term INTEGER NOT NULL,
     config TEXT NOT NULL,
     data BLOB NOT NULL
   )`,
];

interface LogRow {
  idx: number;
  term: number;
  type: string;
  data: Buffer;
}

interface SnapshotRow {
  idx: number;
  term: number;
  config: string;
  data: Buffer;
}

/**
 * RaftStorage in SQLite tables of a database the caller opened and shares.
 * Durability depends on the caller's pragmas: open the database with
 * journal_mode=WAL and synchronous=FULL, or an acknowledged entry may be
 * lost in a power cut. Each save or compact is one synchronous transaction.
 */
export class SqliteStorage implements RaftStorage {
  private readonly db: Database.Database;
  private readonly stmts: ReturnType<typeof prepareStatements>;
  /** Cached bounds, kept in step with every write. */
  private snap: Snapshot | undefined;
  private last: number;

  constructor(db: Database.Database) {
    this.db = db;
    guard('migrate', () => {
      for (const sql of MIGRATIONS) db.exec(sql);
    });
    this.stmts = guard('prepare', () => prepareStatements(db));
    this.snap = this.readSnapshot();
    this.last = this.readLastIndex();
  }

  hardState(): HardState {
    const row = guard('read hard state', () => this.stmts.getHardState.get()) as
      | { term: number; vote: string; commit_index: number }
      | undefined;
    if (!row) return { term: 0, vote: '', commit: 0 };
    return { term: row.term, vote: row.vote, commit: row.commit_index };
  }

  snapshot(): Snapshot | undefined {
    return this.snap;
  }

  firstIndex(): number {
    return this.snapshotIndex() + 1;
  }

  lastIndex(): number {
    return this.last;
  }

  term(index: number): number | undefined {
    if (index === this.snapshotIndex()) return this.snap?.term ?? 0;
    if (index < this.snapshotIndex() || index > this.last) return undefined;
    const row = guard('read term', () => this.stmts.getTerm.get(index)) as
      | { term: number }
      | undefined;
    return row?.term;
  }

  entries(lo: number, hi: number): Entry[] {
    const rows = guard('read entries', () => this.stmts.getEntries.all(lo, hi)) as LogRow[];
    return rows.map(toEntry);
  }

  save(batch: PersistBatch): void {
    const saved = guard('save', () => this.db.transaction(() => this.saveInTransaction(batch))());
    // Caches change only once the transaction has committed.
    this.snap = saved.snap;
    this.last = saved.last;
  }

  compact(snapshot: Snapshot): void {
    if (snapshot.index <= this.snapshotIndex()) return;
    guard('compact', () =>
      this.db.transaction(() => {
        this.writeSnapshot(snapshot);
        this.stmts.deleteUpTo.run(snapshot.index);
      })(),
    );
    this.snap = snapshot;
    this.last = Math.max(this.last, snapshot.index);
  }

  private saveInTransaction(batch: PersistBatch): { snap?: Snapshot; last: number } {
    const { stmts } = this;
    let { snap, last } = this;
    if (batch.snapshot) {
      this.writeSnapshot(batch.snapshot);
      stmts.deleteAll.run();
      snap = batch.snapshot;
      last = snap.index;
    }
    const { entries } = batch;
    assertAppendable(entries, snap?.index ?? 0, last);
    if (entries.length > 0) {
      stmts.deleteFrom.run(entries[0].index);
      for (const e of entries) stmts.insertEntry.run(e.index, e.term, e.type, toBuffer(e.data));
      last = entries.at(-1)!.index;
    }
    const hs = batch.hardState;
    if (hs) stmts.putHardState.run(hs.term, hs.vote, hs.commit);
    return { snap, last };
  }

  private writeSnapshot(s: Snapshot): void {
    const config = JSON.stringify(s.config);
    this.stmts.putSnapshot.run(s.index, s.term, config, toBuffer(s.data));
  }

  private readSnapshot(): Snapshot | undefined {
    const row = guard('read snapshot', () => this.stmts.getSnapshot.get()) as
      | SnapshotRow
      | undefined;
    if (!row) return undefined;
    const config = JSON.parse(row.config) as ConfState;
    return { index: row.idx, term: row.term, config, data: new Uint8Array(row.data) };
  }

  private readLastIndex(): number {
    const row = guard('read last index', () => this.stmts.getLastIndex.get()) as {
      last: number | null;
    };
    return row.last ?? this.snapshotIndex();
  }

  private snapshotIndex(): number {
    return this.snap?.index ?? 0;
  }
}

function prepareStatements(db: Database.Database) {
  return {
    getHardState: db.prepare('SELECT term, vote, commit_index FROM raft_hard_state WHERE id = 1'),
    putHardState: db.prepare(
      `INSERT INTO raft_hard_state (id, term, vote, commit_index) VALUES (1, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET term = excluded.term, vote = excluded.vote,
         commit_index = excluded.commit_index`,
    ),
    getTerm: db.prepare('SELECT term FROM raft_log WHERE idx = ?'),
    getEntries: db.prepare(
      'SELECT idx, term, type, data FROM raft_log WHERE idx >= ? AND idx < ? ORDER BY idx',
    ),
    getLastIndex: db.prepare('SELECT MAX(idx) AS last FROM raft_log'),
    insertEntry: db.prepare('INSERT INTO raft_log (idx, term, type, data) VALUES (?, ?, ?, ?)'),
    deleteFrom: db.prepare('DELETE FROM raft_log WHERE idx >= ?'),
    deleteUpTo: db.prepare('DELETE FROM raft_log WHERE idx <= ?'),
    deleteAll: db.prepare('DELETE FROM raft_log'),
    getSnapshot: db.prepare('SELECT idx, term, config, data FROM raft_snapshot WHERE id = 1'),
    putSnapshot: db.prepare(
      `INSERT INTO raft_snapshot (id, idx, term, config, data) VALUES (1, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET idx = excluded.idx, term = excluded.term,
         config = excluded.config, data = excluded.data`,
    ),
  };
}

function toBuffer(data: Uint8Array): Buffer {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

function toEntry(row: LogRow): Entry {
  const type = row.type as EntryType;
  return { index: row.idx, term: row.term, type, data: new Uint8Array(row.data) };
}

/** Runs a SQLite call, translating driver failures into RaftStorageError. */
function guard<T>(operation: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof Error && err.name === 'SqliteError') {
      throw new RaftStorageError(operation, { cause: err });
    }
    throw err;
  }
}
