import { EMPTY_CONFIG } from './config';
import type { Entry, Snapshot } from './types';

/** The snapshot of a server that has none: index 0, term 0. */
export const EMPTY_SNAPSHOT: Snapshot = Object.freeze({
  index: 0,
  term: 0,
  config: EMPTY_CONFIG,
  data: new Uint8Array(0),
});

/**
 * The core's in-memory view of its log: the latest snapshot plus every entry
 * after it. It mirrors what the caller has persisted, plus the entries not
 * yet handed out through a Ready.
 */
export class RaftLog {
  /** The newest snapshot; it covers every index up to `snapshot.index`. */
  snapshot: Snapshot;
  /** Invariant: entries[k].index === snapshot.index + 1 + k. */
  entries: Entry[];
  /**
   * Highest index known committed; never decreases.
   * Invariant: snapshot.index <= commit <= lastIndex().
   */
  commit: number;
  /** Highest index handed to the application. Invariant: applied <= commit. */
  applied: number;
  /** First index not yet handed out through a Ready. Invariant: <= lastIndex() + 1. */
  unstable: number;
  /** A snapshot received from the leader that the caller has not yet been given. */
  pendingSnapshot: Snapshot | undefined;

  constructor(snapshot: Snapshot, entries: Entry[], commit: number, applied: number) {
    this.snapshot = snapshot;
    this.entries = entries;
    this.commit = Math.max(commit, snapshot.index);
    this.applied = Math.min(Math.max(applied, snapshot.index), this.commit);
    this.unstable = this.lastIndex() + 1;
    this.pendingSnapshot = undefined;
  }

  /** The index of the newest entry, or of the snapshot when no entry follows it. */
  lastIndex(): number {
    return this.snapshot.index + this.entries.length;
  }

  /** The term of the newest entry. */
  lastTerm(): number {
    return this.term(this.lastIndex()) ?? 0;
  }

  /** The term at `index`, or undefined when it is compacted or beyond the end. */
  term(index: number): number | undefined {
    if (index === this.snapshot.index) return this.snapshot.term;
    if (index < this.snapshot.index || index > this.lastIndex()) return undefined;
    return this.entries[index - this.snapshot.index - 1].term;
  }

  /** The entry at `index`, or undefined when compacted or absent. */
  entry(index: number): Entry | undefined {
    if (index <= this.snapshot.index) return undefined;
    return this.entries[index - this.snapshot.index - 1];
  }

  /** Entries [lo, hi), or undefined when part of the range is compacted. */
  slice(lo: number, hi: number): Entry[] | undefined {
    if (lo <= this.snapshot.index) return undefined;
    const base = this.snapshot.index + 1;
    return this.entries.slice(lo - base, Math.min(hi, this.lastIndex() + 1) - base);
  }

  /** True when the log holds an entry at `index` with `term`. */
  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Raft's voting rule: a log with (lastTerm, lastIndex) is at least as up to date as ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ours = this.lastTerm();
    return lastTerm > ours || (lastTerm === ours && lastIndex >= this.lastIndex());
  }

  /**
   * The largest index <= `index` whose term is <= `term`; stops at the
   * snapshot, below which terms are unknown.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    let i = Math.min(index, this.lastIndex());
    while (i > this.snapshot.index) {
      const t = this.term(i)!;
      if (t <= term) return { index: i, term: t };
      i--;
    }
    return { index: i, term: this.term(i) ?? 0 };
  }

  /**
   * Appends `entries` that follow (prevIndex, prevTerm) if that entry matches,
   * truncating our log only at the first entry that conflicts. Returns the
   * index of the last new entry, or undefined when the check fails.
   */
  maybeAppend(prevIndex: number, prevTerm: number, entries: Entry[], skipCheck = false) {
    if (!skipCheck && !this.matchTerm(prevIndex, prevTerm)) return undefined;
    if (prevIndex > this.lastIndex()) return undefined;

    const conflict = entries.find((e) => !this.matchTerm(e.index, e.term));
    if (conflict) this.append(entries.slice(conflict.index - entries[0].index));
    return { lastNew: prevIndex + entries.length, truncatedOrAdded: conflict !== undefined };
  }

  /** Appends entries, replacing any entries at or after the first one's index. */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0].index;
    if (first <= this.commit) {
      throw new Error(`raft: truncating committed index ${first} (commit ${this.commit})`);
    }
    if (first > this.lastIndex() + 1) {
      throw new Error(`raft: gap appending ${first} after ${this.lastIndex()}`);
    }
    this.entries.length = first - this.snapshot.index - 1;
    this.entries.push(...entries);
    this.unstable = Math.min(this.unstable, first);
  }

  /** Raises the commit index; a lower value is ignored since commit never decreases. */
  commitTo(index: number): boolean {
    if (index <= this.commit) return false;
    if (index > this.lastIndex()) {
      throw new Error(`raft: commit ${index} beyond last index ${this.lastIndex()}`);
    }
    this.commit = index;
    return true;
  }

  /** Replaces the whole log with a snapshot received from the leader. */
  restore(snapshot: Snapshot): void {
    this.snapshot = snapshot;
    this.entries = [];
    this.commit = snapshot.index;
    this.unstable = snapshot.index + 1;
    this.pendingSnapshot = snapshot;
  }

  /** Drops every entry up to the snapshot, which the application took at an applied index. */
  compact(snapshot: Snapshot): void {
    this.entries = this.entries.slice(snapshot.index - this.snapshot.index);
    this.snapshot = snapshot;
  }

  /** Entries that are committed but not yet handed to the application. */
  unappliedEntries(): Entry[] {
    const from = Math.max(this.applied, this.snapshot.index) + 1;
    if (this.commit < from) return [];
    return this.slice(from, this.commit + 1) ?? [];
  }
}
