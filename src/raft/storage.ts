import { encodeConfig } from './config';
import type { RestoredState } from './raft-node';
import type { Entry, HardState, Ready, Snapshot } from './types';

/** What one Ready asks to be written durably, in a single atomic write. */
export interface PersistBatch {
  hardState?: HardState;
  /** Replaces every entry at or after entries[0].index. */
  entries: Entry[];
  /** Replaces the whole log; applied before `entries`. */
  snapshot?: Snapshot;
}

/**
 * The durable storage a RaftNode's caller needs. Every method is synchronous
 * so that a Ready is persisted before anything else happens; `save` and
 * `compact` are each one atomic write.
 */
export interface RaftStorage {
  /** The last saved hard state; term 0 and no vote when nothing was saved. */
  hardState(): HardState;
  /** The latest snapshot, or undefined when none was taken or received. */
  snapshot(): Snapshot | undefined;
  /** The index of the first entry held: the snapshot's index plus one. */
  firstIndex(): number;
  /** The index of the last entry held, or the snapshot's index when none follows it. */
  lastIndex(): number;
  /** The term at `index`, or undefined when compacted or beyond the end. */
  term(index: number): number | undefined;
  /** The entries in [lo, hi); lo must be at least firstIndex(). */
  entries(lo: number, hi: number): Entry[];
  /** Writes a Ready's snapshot, entries and hard state atomically. */
  save(batch: PersistBatch): void;
  /** Stores a snapshot the application took and drops the entries it covers. */
  compact(snapshot: Snapshot): void;
}

/** The part of a Ready that `RaftStorage.save` persists. */
export function persistBatch(rd: Ready): PersistBatch {
  return { hardState: rd.hardState, entries: rd.entries, snapshot: rd.snapshot };
}

/** Reads everything a RaftNode needs to restart from `storage`. */
export function restoreState(storage: RaftStorage): RestoredState {
  const lo = storage.firstIndex();
  return {
    hardState: storage.hardState(),
    snapshot: storage.snapshot(),
    entries: storage.entries(lo, storage.lastIndex() + 1),
  };
}

/**
 * Gives a brand-new server of the founding cluster its first configuration:
 * a committed `config` entry at index 1, term 1. Every founding server runs
 * this with the same voters so their logs agree; servers that join later
 * start empty and learn the log from the leader. Does nothing when the
 * storage already holds state.
 */
export function bootstrapStorage(storage: RaftStorage, voters: string[]): boolean {
  if (storage.lastIndex() > 0 || storage.hardState().term > 0) return false;
  const data = encodeConfig({ voters: [...voters].sort(), learners: [] });
  storage.save({
    hardState: { term: 1, vote: '', commit: 1 },
    entries: [{ index: 1, term: 1, type: 'config', data }],
  });
  return true;
}

/** Throws when a batch would leave a gap or rewrite what the snapshot covers. */
export function assertAppendable(entries: Entry[], snapshotIndex: number, lastIndex: number) {
  if (entries.length === 0) return;
  const first = entries[0].index;
  if (first <= snapshotIndex || first > lastIndex + 1) {
    throw new Error(
      `raft storage: expected entries from ${snapshotIndex + 1} to ${lastIndex + 1}, got ${first}`,
    );
  }
}

/**
 * RaftStorage kept in memory, for the simulator and tests: there "durable"
 * means "survives a simulated crash".
 */
export class MemoryStorage implements RaftStorage {
  private hs: HardState = { term: 0, vote: '', commit: 0 };
  private snap: Snapshot | undefined;
  /** Invariant: log[k].index === snapshotIndex() + 1 + k. */
  private log: Entry[] = [];

  hardState(): HardState {
    return { ...this.hs };
  }

  snapshot(): Snapshot | undefined {
    return this.snap;
  }

  firstIndex(): number {
    return this.snapshotIndex() + 1;
  }

  lastIndex(): number {
    return this.snapshotIndex() + this.log.length;
  }

  term(index: number): number | undefined {
    if (index === this.snapshotIndex()) return this.snap?.term ?? 0;
    if (index < this.snapshotIndex() || index > this.lastIndex()) return undefined;
    return this.log[index - this.firstIndex()].term;
  }

  entries(lo: number, hi: number): Entry[] {
    const first = this.firstIndex();
    return this.log.slice(Math.max(lo, first) - first, hi - first);
  }

  save(batch: PersistBatch): void {
    if (batch.snapshot) {
      this.snap = batch.snapshot;
      this.log = [];
    }
    const { entries } = batch;
    assertAppendable(entries, this.snapshotIndex(), this.lastIndex());
    if (entries.length > 0) {
      this.log.length = entries[0].index - this.firstIndex();
      this.log.push(...entries);
    }
    if (batch.hardState) this.hs = { ...batch.hardState };
  }

  compact(snapshot: Snapshot): void {
    if (snapshot.index <= this.snapshotIndex()) return;
    this.log = this.log.slice(snapshot.index - this.snapshotIndex());
    this.snap = snapshot;
  }

  private snapshotIndex(): number {
    return this.snap?.index ?? 0;
  }
}
