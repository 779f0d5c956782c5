/**
 * The command log of a cluster: the shell around the pure Raft core. It
 * ticks the core on a timer, persists every Ready before sending its
 * messages, applies committed entries to the object tables, and answers
 * proposals once their entry is applied (forwarding them to the leader
 * when this server does not lead).
 */
import { EventEmitter } from 'node:events';
import type pino from 'pino';
import {
  FlotillaError,
  InvalidError,
  ConflictError,
  NoQuorumError,
  NodeRemovedError,
  NotLeaderError,
  PeerUnreachableError,
} from '../errors';
import {
  RaftNode,
  SqliteStorage,
  bootstrapStorage,
  persistBatch,
  restoreState,
  type Entry,
  type MembershipChange,
  type Message,
  type RaftStatus,
  type Ready,
  type Snapshot,
} from '../raft';
import { applyCommand } from '../store/apply';
import { isRemovedNode } from '../store/apply-nodes';
import type { CommandLog } from '../store/command-log';
import type { Command, CommandResult } from '../store/commands';
import type { Store } from '../store/store';
import { coalesceAppends } from './coalesce';
import { clearState, dumpState, installState, peerKey, readPeers } from './state-snapshot';
import type { CallPath, ClusterEndpoint, ClusterTransport } from './transport';
import { decodeRecord, encodeRecord, type LogRecord } from './wire';
import { deleteToken, saveToken } from '../auth/tokens';
import { saveClusterPki } from './certificates';

/** The shell's clock and limits. */
export interface RaftTiming {
  /** One tick of the core. */
  tickMs: number;
  /** Ticks without a leader before campaigning (randomised up to twice this). */
  electionTicks: number;
  heartbeatTicks: number;
  /** How long a proposal may take before it fails with NoQuorumError. */
  proposeTimeoutMs: number;
  /** Applied entries between two compactions of the Raft log. */
  compactEvery: number;
}

/** The defaults: a lost leader is noticed within one to two seconds. */
export const DEFAULT_TIMING: RaftTiming = {
  tickMs: 100,
  electionTicks: 10,
  heartbeatTicks: 1,
  proposeTimeoutMs: 5000,
  compactEvery: 10_000,
};

/** What a RaftCommandLog needs. */
export interface RaftCommandLogOptions {
  store: Store;
  /** This server's Raft id: its node name. */
  nodeId: string;
  transport: ClusterTransport;
  logger: pino.Logger;
  timing?: Partial<RaftTiming>;
}

interface Waiter {
  term: number;
  resolve: (result: CommandResult) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** A proposal's result once applied, or the deterministic error it failed with. */
type Outcome = { result: CommandResult } | { error: FlotillaError };

/**
 * CommandLog over Raft. Emits `leading` (boolean) when this server starts
 * or stops being a leader with a valid lease, and `role` on every role change.
 */
export class RaftCommandLog extends EventEmitter implements CommandLog, ClusterEndpoint {
  readonly id: string;
  readonly timing: RaftTiming;
  private readonly store: Store;
  private readonly storage: SqliteStorage;
  private readonly transport: ClusterTransport;
  private readonly logger: pino.Logger;
  private node?: RaftNode;
  private timer?: NodeJS.Timeout;
  private leading = false;
  /** Set while a drain is scheduled for the end of this turn of the event loop. */
  private drainScheduled = false;
  /** Term and vote as last written with fsync; a change of either needs one again. */
  private durable: { term: number; vote: string } = { term: 0, vote: '' };
  /** Proposals of this leader, by log index. */
  private readonly waiters = new Map<number, Waiter>();
  /** Callers waiting for the local applied index to reach theirs. */
  private appliedWaiters: { index: number; resolve: () => void }[] = [];
  /** When each member was last heard from, in ms since the epoch. */
  private readonly heard = new Map<string, number>();

  constructor(opts: RaftCommandLogOptions) {
    super();
    this.id = opts.nodeId;
    this.store = opts.store;
    this.transport = opts.transport;
    this.logger = opts.logger;
    this.timing = { ...DEFAULT_TIMING, ...opts.timing };
    this.storage = new SqliteStorage(opts.store.db);
  }

  /** True when this server holds no Raft state yet (a new or wiped data directory). */
  isEmpty(): boolean {
    return this.storage.lastIndex() === 0 && this.storage.hardState().term === 0;
  }

  /**
   * Founds a one-voter cluster on a server without Raft state. The state a
   * single-server version left (applied through its own log) becomes the
   * first snapshot, so nothing is applied twice.
   */
  bootstrap(): void {
    const applied = Number(this.store.getMeta('applied_index') ?? 0);
    if (applied === 0) {
      bootstrapStorage(this.storage, [this.id]);
      return;
    }
    const config = { voters: [this.id], learners: [] };
    const snapshot: Snapshot = { index: applied, term: 1, config, data: dumpState(this.store) };
    this.storage.save({ snapshot, entries: [], hardState: { term: 1, vote: '', commit: applied } });
  }

  /** Empties the tables of a server about to receive a cluster's log from scratch. */
  prepareToJoin(): void {
    clearState(this.store);
  }

  /** Restores the core from storage and starts ticking. */
  start(): void {
    const restored = restoreState(this.storage);
    this.durable = { term: restored.hardState.term, vote: restored.hardState.vote };
    let applied = Number(this.store.getMeta('applied_index') ?? 0);
    const snap = restored.snapshot;
    // A crash between storing a received snapshot and installing it.
    if (snap && applied < snap.index) {
      installState(this.store, snap.data, snap.index);
      applied = snap.index;
    }
    const { electionTicks, heartbeatTicks } = this.timing;
    const options = { id: this.id, electionTicks, heartbeatTicks, random: Math.random, applied };
    this.node = new RaftNode(options, restored);
    for (const [id, address] of readPeers(this.store)) {
      if (id !== this.id) this.transport.setPeer(id, address);
    }
    this.electAloneAtOnce();
    this.drain();
    this.timer = setInterval(() => this.onTick(), this.timing.tickMs);
  }

  /** Stops ticking; pending proposals fail. */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    for (const [index, w] of this.waiters) this.settle(index, w, stopping());
    this.setLeading(false);
  }

  isLeader(): boolean {
    return this.leading;
  }

  /** The core's state, for roles and tests. */
  status(): RaftStatus {
    return this.requireNode().status();
  }

  propose(command: Command): Promise<CommandResult> {
    return this.submit({ command });
  }

  /**
   * Commits a record through the leader and resolves with its apply result
   * once it is applied here too; fails with NoQuorumError after
   * proposeTimeoutMs without a leader or a majority.
   */
  async submit(record: LogRecord): Promise<CommandResult> {
    // A removed server is cut off for good: say so rather than "no quorum".
    if (isRemovedNode(this.store, this.id)) throw new NodeRemovedError(this.id);
    const deadline = Date.now() + this.timing.proposeTimeoutMs;
    for (;;) {
      const leader = await this.waitForLeader(deadline);
      if (leader === this.id) {
        const r = this.requireNode().propose(encodeRecord(record));
        if (r.ok) return this.awaitApplied(r.index, r.term, deadline, () => this.drainSoon());
      } else {
        const result = await this.tryForward(leader, record, deadline);
        if (result) return result;
      }
      await sleep(this.timing.tickMs);
    }
  }

  /** Adds, promotes or removes one member; only on the leader. */
  async changeMembership(change: MembershipChange): Promise<CommandResult> {
    const deadline = Date.now() + this.timing.proposeTimeoutMs;
    const r = this.requireNode().proposeChange(change);
    if (r.ok) return this.awaitApplied(r.index, r.term, deadline, () => this.drainSoon());
    if (r.reason === 'notLeader') throw new NotLeaderError(r.leaderId || undefined);
    if (r.reason === 'changePending') throw new ConflictError(`membership change: ${r.detail}`);
    throw new InvalidError(`membership change: ${r.detail}`);
  }

  /** Resolves once this server has applied `index`, or after `timeoutMs`. */
  waitApplied(index: number, timeoutMs: number): Promise<void> {
    if (this.requireNode().status().applied >= index) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.appliedWaiters.push({ index, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }

  /** Voters this server heard from recently, itself included. */
  reachableVoters(): { reachable: number; voters: number } {
    const { voters } = this.status().config;
    const window = 3 * this.timing.electionTicks * this.timing.tickMs;
    const now = Date.now();
    const recent = (id: string) => id === this.id || now - (this.heard.get(id) ?? 0) < window;
    return { reachable: voters.filter(recent).length, voters: voters.length };
  }

  // ---- ClusterEndpoint ------------------------------------------------------

  receive(from: string, address: string, messages: Message[]): void {
    if (!this.node) return;
    this.heard.set(from, Date.now());
    if (address) this.transport.setPeer(from, address);
    for (const m of messages) this.node.step(m);
    this.drainSoon();
  }

  async serve(path: CallPath, body: unknown): Promise<unknown> {
    if (path !== 'propose') throw new InvalidError(`unknown cluster call ${path}`);
    const node = this.requireNode();
    const { leaderId } = node.status();
    if (leaderId !== this.id) throw new NotLeaderError(leaderId || undefined);
    const deadline = Date.now() + this.timing.proposeTimeoutMs;
    const r = node.propose(encodeRecord((body as { record: LogRecord }).record));
    if (!r.ok) throw new NotLeaderError(r.leaderId || undefined);
    return this.awaitApplied(r.index, r.term, deadline, () => this.drainSoon());
  }

  // ---- the Ready cycle ------------------------------------------------------

  private onTick(): void {
    this.requireNode().tick();
    this.drain();
  }

  /**
   * A server that is the only voter cannot be contested: elect it now
   * instead of after a full election timeout.
   */
  private electAloneAtOnce(): void {
    const node = this.requireNode();
    const { voters } = node.status().config;
    if (voters.length !== 1 || voters[0] !== this.id) return;
    for (let i = 0; i < 2 * this.timing.electionTicks && node.status().role !== 'leader'; i++) {
      node.tick();
    }
  }

  /**
   * Drains once every callback of this turn of the event loop has had its
   * say: the proposals and messages that arrived together then share one
   * Raft round, one fsync'd log write and one apply transaction.
   */
  private drainSoon(): void {
    if (this.drainScheduled) return;
    this.drainScheduled = true;
    setImmediate(() => {
      this.drainScheduled = false;
      if (this.node && this.timer) this.drain();
    });
  }

  /** Does the core's work in the order its contract requires. */
  private drain(): void {
    const node = this.requireNode();
    while (node.hasReady()) {
      const rd = node.ready();
      this.saveReady(rd);
      if (rd.messages.length > 0) this.transport.send(coalesceAppends(rd.messages));
      if (rd.snapshot) this.installSnapshot(rd.snapshot);
      this.applyEntries(rd.committedEntries);
      if (rd.softState) this.logRole(rd.softState.role, rd.softState.leaderId);
      node.advance();
    }
    this.maybeCompact();
    this.setLeading(node.status().role === 'leader' && node.leaseValid());
    this.releaseAppliedWaiters();
  }

  /**
   * Persists a Ready. Entries, snapshots, terms and votes are fsync'd before
   * any message leaves. A change of the commit index alone is not: Raft
   * keeps it in volatile state, and a server that forgets it learns it
   * again from the leader.
   */
  private saveReady(rd: Ready): void {
    const hs = rd.hardState;
    const termOrVote = hs && (hs.term !== this.durable.term || hs.vote !== this.durable.vote);
    if (rd.entries.length > 0 || rd.snapshot || termOrVote) {
      this.storage.save(persistBatch(rd));
      if (hs) this.durable = { term: hs.term, vote: hs.vote };
    } else if (hs) {
      this.withoutFsync(() => this.storage.save(persistBatch(rd)));
    }
  }

  /**
   * Runs SQLite writes that need no fsync of their own: everything they
   * write can be redone from the fsync'd log after a crash. WAL frames are
   * recovered as a prefix, so they can never outlive the log entries they
   * follow, and the next fsync'd commit makes them durable too. Nothing
   * else may run inside: change listeners write state that is not redone.
   */
  private withoutFsync<T>(fn: () => T): T {
    const db = this.store.db;
    db.pragma('synchronous = NORMAL');
    try {
      return fn();
    } finally {
      db.pragma('synchronous = FULL');
    }
  }

  private installSnapshot(snapshot: Snapshot): void {
    installState(this.store, snapshot.data, snapshot.index);
    for (const [id, address] of readPeers(this.store)) {
      if (id !== this.id) this.transport.setPeer(id, address);
    }
    for (const [index, w] of this.waiters) {
      if (index <= snapshot.index) this.settle(index, w, unknownOutcome());
    }
    this.logger.info({ index: snapshot.index, term: snapshot.term }, 'raft snapshot installed');
  }

  /**
   * Applies entries in as few transactions as possible. A command that
   * fails to apply fails alike on every server: its run is redone without
   * it, and it alone is recorded as applied with its error. Only a SQLite
   * failure is not the command's fault: it crashes the agent, which applies
   * the entry again on restart.
   */
  private applyEntries(entries: Entry[]): void {
    let start = 0;
    let end = entries.length;
    while (start < entries.length) {
      const run = this.withoutFsync(() => this.applyRun(entries, start, end));
      if ('results' in run) {
        this.store.publishPending(entries[end - 1].index);
        run.results.forEach((result, k) => this.finish(entries[start + k], { result }));
        start = end;
        end = entries.length;
      } else if (run.failedAt > start) {
        end = run.failedAt;
      } else {
        this.recordFailure(entries[start], run.error);
        start += 1;
        end = entries.length;
      }
    }
  }

  private applyRun(entries: Entry[], start: number, end: number) {
    const results: CommandResult[] = [];
    let failure: { failedAt: number; error: FlotillaError } | undefined;
    try {
      this.store.db.transaction(() => {
        for (let i = start; i < end; i++) {
          failure = undefined;
          try {
            results.push(this.applyEntry(entries[i]));
          } catch (err) {
            if (isStorageFailure(err)) throw err;
            failure = { failedAt: i, error: asCommandError(err) };
            throw err;
          }
        }
        this.store.setMeta('applied_index', String(entries[end - 1].index));
      })();
    } catch (err) {
      this.store.discardPending();
      if (failure) return failure;
      throw err;
    }
    return { results };
  }

  private recordFailure(entry: Entry, error: FlotillaError): void {
    const record = () => this.store.setMeta('applied_index', String(entry.index));
    this.withoutFsync(() => this.store.db.transaction(record)());
    this.logger.debug({ index: entry.index, err: error }, 'command failed to apply');
    this.finish(entry, { error });
  }

  private applyEntry(entry: Entry): CommandResult {
    const index = entry.index;
    if (entry.type !== 'normal') return { index };
    const record = decodeRecord(entry.data);
    if ('command' in record) return applyCommand(this.store, index, record.command);
    if ('peer' in record) {
      const { id, address } = record.peer;
      this.store.setMeta(peerKey(id), address);
      if (id !== this.id) this.transport.setPeer(id, address);
    } else if ('cluster' in record) {
      this.store.setMeta('cluster_id', record.cluster.clusterId);
      this.store.setMeta('max_voters', String(record.cluster.maxVoters));
    } else if ('pki' in record) {
      saveClusterPki(this.store, record.pki);
    } else if ('token' in record) {
      saveToken(this.store, record.token);
    } else if ('revokeToken' in record) {
      deleteToken(this.store, record.revokeToken.id);
    }
    return { index };
  }

  private finish(entry: Entry, outcome: Outcome): void {
    const w = this.waiters.get(entry.index);
    if (!w) return;
    if (w.term !== entry.term) return this.settle(entry.index, w, { error: lostInLeaderChange() });
    this.settle(entry.index, w, outcome);
  }

  private settle(index: number, w: Waiter, outcome: Outcome): void {
    clearTimeout(w.timer);
    this.waiters.delete(index);
    if ('result' in outcome) w.resolve(outcome.result);
    else w.reject(outcome.error);
  }

  private maybeCompact(): void {
    const node = this.requireNode();
    const { applied } = node.status();
    if (applied - node.snapshotIndex() < this.timing.compactEvery) return;
    const r = node.compact(applied, dumpState(this.store));
    if (!r.ok) return;
    this.storage.compact(r.snapshot);
    this.logger.info({ index: applied }, 'raft log compacted');
  }

  private releaseAppliedWaiters(): void {
    if (this.appliedWaiters.length === 0) return;
    const { applied } = this.requireNode().status();
    const done = this.appliedWaiters.filter((w) => w.index <= applied);
    this.appliedWaiters = this.appliedWaiters.filter((w) => w.index > applied);
    for (const w of done) w.resolve();
  }

  private setLeading(leading: boolean): void {
    if (leading === this.leading) return;
    this.leading = leading;
    // The lease lapses before the core steps down: this line marks when
    // the controllers stopped, which the role change alone would not show.
    const { term } = this.requireNode().status();
    this.logger.info({ leading, term }, leading ? 'leading' : 'stopped leading');
    this.emit('leading', leading);
  }

  private logRole(role: string, leaderId: string): void {
    const { term } = this.requireNode().status();
    this.logger.info({ role, leaderId, term }, 'raft role changed');
    this.emit('role', role, leaderId);
  }

  // ---- proposals ------------------------------------------------------------

  private awaitApplied(
    index: number,
    term: number,
    deadline: number,
    kick: () => void,
  ): Promise<CommandResult> {
    const promise = new Promise<CommandResult>((resolve, reject) => {
      const timer = setTimeout(
        () => {
          this.waiters.delete(index);
          reject(this.noQuorum('the change was not confirmed in time; it may still be applied'));
        },
        Math.max(0, deadline - Date.now()),
      );
      this.waiters.set(index, { term, resolve, reject, timer });
    });
    kick();
    return promise;
  }

  private async waitForLeader(deadline: number): Promise<string> {
    for (;;) {
      const { leaderId } = this.requireNode().status();
      if (leaderId !== '') return leaderId;
      if (Date.now() >= deadline) throw this.noQuorum('no leader could be elected');
      await sleep(this.timing.tickMs);
    }
  }

  /** Forwards to the leader; undefined when worth retrying (leader gone or changed). */
  private async tryForward(
    leader: string,
    record: LogRecord,
    deadline: number,
  ): Promise<CommandResult | undefined> {
    const timeoutMs = Math.max(1, deadline - Date.now()) + 1000;
    try {
      const result = (await this.transport.call(
        leader,
        'propose',
        { record },
        timeoutMs,
      )) as CommandResult;
      this.heard.set(leader, Date.now());
      await this.waitApplied(result.index, 2000);
      return result;
    } catch (err) {
      const retry = err instanceof NotLeaderError || err instanceof PeerUnreachableError;
      const fromWire = err instanceof FlotillaError && err.code === 'NotLeader';
      if (!retry && !fromWire) throw err;
      if (Date.now() >= deadline) throw this.noQuorum(`the leader ${leader} cannot be reached`);
      return undefined;
    }
  }

  private noQuorum(detail: string): NoQuorumError {
    const node = this.node;
    if (!node || node.status().config.voters.length === 0) {
      return new NoQuorumError(`no quorum: ${detail}`);
    }
    const { reachable, voters } = this.reachableVoters();
    return new NoQuorumError(`no quorum: ${detail} (${reachable} of ${voters} voters reachable)`);
  }

  private requireNode(): RaftNode {
    if (!this.node) throw new Error('raft command log used before start()');
    return this.node;
  }
}

/** SQLite failing under us (disk full, I/O): not a property of the command. */
function isStorageFailure(err: unknown): boolean {
  return err instanceof Error && err.name === 'SqliteError';
}

/**
 * Any other throw is deterministic, the same on every server: a command
 * that breaks apply.ts must not crash the whole cluster on every restart.
 */
function asCommandError(err: unknown): FlotillaError {
  if (err instanceof FlotillaError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new FlotillaError('CommandFailed', `command failed to apply: ${message}`, 500);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function stopping(): Outcome {
  return { error: new NoQuorumError('no quorum: this server is stopping') };
}

function unknownOutcome(): Outcome {
  return {
    error: new NoQuorumError('no quorum: leadership changed; the change may or may not be applied'),
  };
}

function lostInLeaderChange(): NoQuorumError {
  return new NoQuorumError('no quorum: leadership changed before the change committed; retry');
}
