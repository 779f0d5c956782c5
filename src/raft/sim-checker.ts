import type { RaftNode } from './raft-node';
import type { Entry, Snapshot } from './types';

/** Thrown by the checker when a simulated cluster breaks one of Raft's guarantees. */
export class SafetyViolation extends Error {
  /** Which guarantee broke, e.g. "election safety". */
  readonly property: string;

  constructor(property: string, detail: string) {
    super(`${property}: ${detail}`);
    this.name = 'SafetyViolation';
    this.property = property;
  }
}

interface CommittedRecord {
  term: number;
  key: string;
  /** The term of the leader that first committed it. */
  commitTerm: number;
}

const decoder = new TextDecoder();

/** A printable identity of an entry: its term, type and data. */
export function entryKey(e: Entry): string {
  return `${e.term}/${e.type}/${decoder.decode(e.data)}`;
}

/** Folds one applied entry into a node's state digest. */
export function mixDigest(digest: number, key: string): number {
  let h = digest ^ 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * Watches every persisted write, election, commit, apply and read of a
 * simulated cluster and throws a SafetyViolation as soon as one contradicts
 * Raft's guarantees. It keeps global history, so checks are incremental.
 */
export class SafetyChecker {
  /** term -> the one server that led it. */
  private readonly leaders = new Map<number, string>();
  /** "index:term" -> the entry's key and the term before it, identical on every server. */
  private readonly stored = new Map<string, { key: string; prevTerm: number }>();
  /** index -> what was committed there. */
  private readonly committed: (CommittedRecord | undefined)[] = [];
  /** index -> the applied entry's key and the state digest after it. */
  private readonly applied: ({ key: string; digest: number } | undefined)[] = [];
  /** The highest index any leader has committed. */
  maxCommitted = 0;
  /** The data of every committed command, for liveness checks. */
  readonly committedData = new Set<string>();

  /** Election safety: at most one leader per term. */
  onLeader(id: string, term: number, core: RaftNode): void {
    const known = this.leaders.get(term);
    if (known === id) return;
    if (known !== undefined) {
      throw new SafetyViolation('election safety', `${known} and ${id} both lead term ${term}`);
    }
    this.leaders.set(term, id);
    this.checkLeaderCompleteness(id, term, core);
  }

  /** Leader completeness: a new leader holds every entry committed in earlier terms. */
  private checkLeaderCompleteness(id: string, term: number, core: RaftNode): void {
    const from = core.snapshotIndex();
    for (let i = from; i <= this.maxCommitted; i++) {
      const rec = this.committed[i];
      if (!rec || rec.commitTerm >= term) continue;
      const have = core.termAt(i);
      if (have !== rec.term) {
        const detail = `leader ${id} of term ${term} has term ${have} at committed index ${i}`;
        throw new SafetyViolation('leader completeness', `${detail}, expected ${rec.term}`);
      }
    }
  }

  /**
   * Log matching, checked inductively: an (index, term) pair always names the
   * same entry, preceded by the same term, on every server.
   */
  onStored(id: string, e: Entry, prevTerm: number): void {
    const slot = `${e.index}:${e.term}`;
    const key = entryKey(e);
    const known = this.stored.get(slot);
    if (!known) {
      this.stored.set(slot, { key, prevTerm });
      return;
    }
    if (known.key !== key || known.prevTerm !== prevTerm) {
      const detail = `${id} stores ${key} after term ${prevTerm} at ${slot}`;
      const others = `others ${known.key} after ${known.prevTerm}`;
      throw new SafetyViolation('log matching', `${detail}, ${others}`);
    }
  }

  /** Records entries a leader committed in `commitTerm` and checks they agree with history. */
  onCommitted(id: string, entries: Entry[], commitTerm: number): void {
    for (const e of entries) {
      const key = entryKey(e);
      const rec = this.committed[e.index];
      if (rec && rec.key !== key) {
        const detail = `${id} commits ${key} at ${e.index}, already committed ${rec.key}`;
        throw new SafetyViolation('state machine safety', detail);
      }
      if (!rec) this.committed[e.index] = { term: e.term, key, commitTerm };
      if (e.type === 'normal') this.committedData.add(decoder.decode(e.data));
      this.maxCommitted = Math.max(this.maxCommitted, e.index);
    }
  }

  /** State machine safety: every server applies the same entry at an index. */
  onApplied(id: string, e: Entry, digest: number): void {
    const key = entryKey(e);
    const rec = this.applied[e.index];
    if (!rec) {
      this.applied[e.index] = { key, digest };
    } else if (rec.key !== key || rec.digest !== digest) {
      const detail = `${id} applies ${key} at ${e.index}, another server applied ${rec.key}`;
      throw new SafetyViolation('state machine safety', detail);
    }
    const committed = this.committed[e.index];
    if (committed && committed.key !== key) {
      const detail = `${id} applies ${key} at ${e.index}, committed was ${committed.key}`;
      throw new SafetyViolation('state machine safety', detail);
    }
  }

  /** A snapshot stands for the same state every server reached at its index. */
  onSnapshot(id: string, snapshot: Snapshot, digest: number): void {
    const rec = this.applied[snapshot.index];
    if (rec && rec.digest !== digest) {
      const detail = `${id} installs a snapshot at ${snapshot.index} whose state differs`;
      throw new SafetyViolation('state machine safety', detail);
    }
    const committed = this.committed[snapshot.index];
    if (committed && committed.term !== snapshot.term) {
      const detail = `${id} installs a snapshot of term ${snapshot.term} at ${snapshot.index}`;
      throw new SafetyViolation('state machine safety', `${detail}, committed ${committed.term}`);
    }
  }

  /** Linearizable reads: an answer covers every write committed before the read began. */
  onRead(id: string, index: number, committedAtStart: number): void {
    if (index < committedAtStart) {
      const detail = `${id} read at index ${index} after ${committedAtStart} was committed`;
      throw new SafetyViolation('linearizable read', detail);
    }
  }
}
