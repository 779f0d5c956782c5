import {
  EMPTY_CONFIG,
  applyChange,
  decodeConfig,
  encodeConfig,
  isMember,
  peersOf,
  quorumSize,
} from './config';
import { EMPTY_SNAPSHOT, RaftLog } from './log';
import { Progress } from './progress';
import type {
  AppendRequest,
  AppendResponse,
  ChangeResult,
  CompactResult,
  ConfState,
  Entry,
  EntryType,
  HardState,
  Heartbeat,
  HeartbeatResponse,
  InstallSnapshot,
  MembershipChange,
  Message,
  ProposeResult,
  ReadResult,
  ReadState,
  Ready,
  Role,
  Snapshot,
  SoftState,
  VoteRequest,
  VoteResponse,
} from './types';

/**
 * Deliberate violations of Raft, for tests only: each lets the simulator
 * prove that its checks catch the failure the rule prevents.
 */
export interface UnsafeBreaks {
  /** Grant a vote to every candidate, even after voting for another in the term. */
  grantVoteTwicePerTerm?: boolean;
  /** Commit any index stored on a majority, even one from an earlier term. */
  commitPreviousTermByCounting?: boolean;
  /** Vote for candidates whose logs are behind ours. */
  skipLogUpToDateCheck?: boolean;
  /** Accept appended entries without checking the previous entry's term. */
  skipConsistencyCheck?: boolean;
  /** Answer reads from the leader's commit index without a heartbeat round. */
  readWithoutQuorum?: boolean;
}

/** How a RaftNode behaves; time is counted in ticks of the caller's clock. */
export interface RaftOptions {
  id: string;
  /** Ticks without a leader before a follower campaigns (randomised up to twice this). */
  electionTicks: number;
  /** Ticks between a leader's heartbeats; must be below electionTicks. */
  heartbeatTicks: number;
  /** A seeded source of numbers in [0, 1); the core's only randomness. */
  random: () => number;
  /** Most entries in one append message. */
  maxMsgEntries?: number;
  /** The index the application has already applied durably; defaults to the snapshot's. */
  applied?: number;
  unsafe?: UnsafeBreaks;
}

/** What a server restarts from: whatever its storage holds. */
export interface RestoredState {
  hardState: HardState;
  snapshot?: Snapshot;
  entries: Entry[];
}

/** A point-in-time summary of a node, for status pages and tests. */
export interface RaftStatus {
  id: string;
  term: number;
  vote: string;
  role: Role;
  leaderId: string;
  commit: number;
  applied: number;
  lastIndex: number;
  config: ConfState;
}

interface PendingRead {
  context: string;
  /** The commit index when the read arrived; the answer once a quorum confirms leadership. */
  index: number;
  /** The requesting server (this one for local reads). */
  from: string;
  acks: Set<string>;
}

const NO_DATA = new Uint8Array(0);
const encoder = new TextEncoder();

/**
 * One server's Raft state machine. It does no I/O and reads no clock: feed it
 * ticks, messages and proposals, then collect its work with ready(), do it,
 * and call advance(). Modelled on the Raft dissertation with pre-vote,
 * check-quorum, single-server membership changes, learners and ReadIndex.
 */
export class RaftNode {
  readonly id: string;
  /** Invariant: never decreases; persisted before any message sent in it. */
  private term: number;
  /** Invariant: at most one candidate per term; persisted before the grant is sent. */
  private vote: string;
  private role: Role = 'follower';
  /** Invariant: in a term, only ever '' or the one server that won it. */
  private leaderId = '';
  private readonly log: RaftLog;
  /** The newest configuration in the log, in force from the moment it is appended. */
  private config: ConfState;
  /** The index of the entry (or snapshot) that carried `config`. */
  private configIndex: number;
  /** Leader only: one entry per member other than this server. */
  private progress = new Map<string, Progress>();
  /** (Pre-)candidate only: the answers received from voters. */
  private votes = new Map<string, boolean>();
  /** Ticks since the last heartbeat from a leader, or since the last check-quorum as leader. */
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  /**
   * Set from start until the first election timeout or leader contact: a
   * server that just (re)started may have promised a leader, before the
   * crash, not to vote for a while, and it honours that promise blindly.
   */
  private startingUp = true;
  /** In [electionTicks, 2 * electionTicks); re-drawn at every role change. */
  private randomizedTimeout = 0;
  /** Ticks since this node was built: the leader's clock for the lease. */
  private now = 0;
  /** Leader only: reads waiting for a heartbeat round, oldest first. */
  private reads: PendingRead[] = [];
  /** Leader only: reads that wait until an entry of this term is committed. */
  private readsBeforeCommit: PendingRead[] = [];
  private messages: Message[] = [];
  private readStates: ReadState[] = [];
  private lastHardState: HardState;
  private lastSoftState: SoftState;
  /** Set between ready() and advance(): no input may arrive then. */
  private readyInFlight: { lastIndex: number; applied: number } | undefined;
  private readonly options: Required<Omit<RaftOptions, 'applied' | 'unsafe'>>;
  private readonly unsafe: UnsafeBreaks;

  constructor(options: RaftOptions, restored: RestoredState) {
    if (options.heartbeatTicks >= options.electionTicks) {
      throw new Error('raft: heartbeatTicks must be below electionTicks');
    }
    this.id = options.id;
    this.options = { ...options, maxMsgEntries: options.maxMsgEntries ?? 64 };
    this.unsafe = options.unsafe ?? {};
    const snapshot = restored.snapshot ?? EMPTY_SNAPSHOT;
    const { hardState } = restored;
    this.log = new RaftLog(snapshot, [...restored.entries], hardState.commit, options.applied ?? 0);
    this.term = hardState.term;
    this.vote = hardState.vote;
    this.config = EMPTY_CONFIG;
    this.configIndex = 0;
    this.recomputeConfig();
    this.lastHardState = this.hardState();
    this.lastSoftState = this.softState();
    this.resetRandomizedTimeout();
  }

  // ---- inputs ---------------------------------------------------------------

  /** Advances the logical clock by one tick. */
  tick(): void {
    this.assertAcceptingInput();
    this.now++;
    if (this.role === 'leader') this.tickLeader();
    else this.tickElection();
  }

  /** Feeds one message received from another server. */
  step(m: Message): void {
    this.assertAcceptingInput();
    if (m.to !== this.id) return;
    if (!this.stepTerm(m)) return;
    if (m.type === 'preVote' || m.type === 'vote') return this.handleVoteRequest(m);

    switch (this.role) {
      case 'leader':
        return this.stepLeader(m);
      case 'candidate':
      case 'preCandidate':
        return this.stepCandidate(m);
      case 'follower':
        return this.stepFollower(m);
    }
  }

  /** Appends a command to the log if this server leads. */
  propose(data: Uint8Array | string): ProposeResult {
    this.assertAcceptingInput();
    if (this.role !== 'leader') return this.notLeader();
    const bytes = typeof data === 'string' ? encoder.encode(data) : data;
    return this.appendLocal('normal', bytes);
  }

  /**
   * Proposes adding, removing or promoting one member. Refused while an
   * earlier change is uncommitted, or before this leader committed an entry
   * of its own term (a single-server change is only safe after that).
   */
  proposeChange(change: MembershipChange): ChangeResult {
    this.assertAcceptingInput();
    if (this.role !== 'leader') return this.notLeader();
    if (this.configIndex > this.log.commit || this.log.term(this.log.commit) !== this.term) {
      return { ok: false, reason: 'changePending', detail: 'an earlier change is uncommitted' };
    }
    const next = applyChange(this.config, change);
    if ('error' in next) return { ok: false, reason: 'invalidChange', detail: next.error };
    return this.appendLocal('config', encodeConfig(next.config));
  }

  /**
   * Starts a linearizable read identified by `context` (unique per caller);
   * it completes as a ReadState whose index the application must reach
   * before reading. A read lost with its leader never completes: retry.
   */
  readIndex(context: string): ReadResult {
    this.assertAcceptingInput();
    if (this.role === 'leader') {
      this.handleReadRequest(this.id, context);
      return { ok: true };
    }
    if (this.leaderId === '') return this.notLeader();
    this.send({ type: 'readIndex', to: this.leaderId, term: this.term, context });
    return { ok: true };
  }

  /**
   * Compacts the log up to an applied `index`, whose application state is
   * `data`. The caller persists the returned snapshot (Storage.compact).
   */
  compact(index: number, data: Uint8Array): CompactResult {
    this.assertAcceptingInput();
    const { snapshot, applied } = this.log;
    if (index <= snapshot.index || index > applied) {
      const detail = `expected ${snapshot.index} < index <= ${applied}, got ${index}`;
      return { ok: false, reason: 'invalidIndex', detail };
    }
    const config = this.configAt(index);
    const next: Snapshot = { index, term: this.log.term(index)!, config, data };
    this.log.compact(next);
    return { ok: true, snapshot: next };
  }

  // ---- outputs --------------------------------------------------------------

  /** True when ready() has work for the caller. */
  hasReady(): boolean {
    const log = this.log;
    return (
      this.messages.length > 0 ||
      this.readStates.length > 0 ||
      log.unstable <= log.lastIndex() ||
      log.pendingSnapshot !== undefined ||
      log.commit > log.applied ||
      !sameHardState(this.hardState(), this.lastHardState) ||
      !sameSoftState(this.softState(), this.lastSoftState)
    );
  }

  /**
   * Hands out the work accumulated since the last advance(). Contract: the
   * caller persists `snapshot`, `entries` and `hardState` durably in one
   * write BEFORE sending `messages`, because a vote or an acknowledgement
   * promises that the state behind it survives a crash. No input may be fed
   * until advance() is called.
   */
  ready(): Ready {
    this.assertAcceptingInput();
    const log = this.log;
    const rd: Ready = {
      entries: log.slice(log.unstable, log.lastIndex() + 1) ?? [],
      messages: this.messages,
      committedEntries: log.unappliedEntries(),
      readStates: this.readStates,
    };
    if (log.pendingSnapshot) rd.snapshot = log.pendingSnapshot;
    const hs = this.hardState();
    if (!sameHardState(hs, this.lastHardState)) rd.hardState = hs;
    const ss = this.softState();
    if (!sameSoftState(ss, this.lastSoftState)) rd.softState = ss;

    this.messages = [];
    this.readStates = [];
    this.lastHardState = hs;
    this.lastSoftState = ss;
    const applied = rd.committedEntries.at(-1)?.index ?? Math.max(log.applied, log.snapshot.index);
    this.readyInFlight = { lastIndex: log.lastIndex(), applied };
    return rd;
  }

  /** Acknowledges that the last Ready was persisted, sent and applied. */
  advance(): void {
    const inFlight = this.readyInFlight;
    if (!inFlight) throw new Error('raft: advance() without a ready()');
    this.log.unstable = inFlight.lastIndex + 1;
    this.log.applied = inFlight.applied;
    this.log.pendingSnapshot = undefined;
    this.readyInFlight = undefined;
  }

  // ---- queries --------------------------------------------------------------

  /** A summary of this node's state. */
  status(): RaftStatus {
    return {
      id: this.id,
      term: this.term,
      vote: this.vote,
      role: this.role,
      leaderId: this.leaderId,
      commit: this.log.commit,
      applied: this.log.applied,
      lastIndex: this.log.lastIndex(),
      config: { voters: [...this.config.voters], learners: [...this.config.learners] },
    };
  }

  /** The term of the entry at `index`, or undefined when compacted or absent. */
  termAt(index: number): number | undefined {
    return this.log.term(index);
  }

  /** The index of the latest snapshot (0 when none). */
  snapshotIndex(): number {
    return this.log.snapshot.index;
  }

  /**
   * True while a majority of voters answered a heartbeat this leader sent
   * less than an election timeout ago: none of them will vote for another
   * server until that timeout passes on its clock, so no other leader can
   * exist (given clocks that tick at similar rates). The scheduler acts only
   * while this is true.
   */
  leaseValid(): boolean {
    if (this.role !== 'leader') return false;
    const window = this.options.electionTicks;
    const recent = (id: string) => id === this.id || this.heardWithin(id, window);
    return this.config.voters.filter(recent).length >= quorumSize(this.config);
  }

  // ---- ticks ----------------------------------------------------------------

  private tickElection(): void {
    this.electionElapsed++;
    if (this.electionElapsed >= this.options.electionTicks) this.startingUp = false;
    if (!this.isPromotable() || this.electionElapsed < this.randomizedTimeout) return;
    this.electionElapsed = 0;
    this.campaign('preVote');
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.options.electionTicks) {
      this.electionElapsed = 0;
      if (!this.checkQuorum()) return this.becomeFollower(this.term, '');
    }
    if (this.heartbeatElapsed >= this.options.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.retrySnapshots();
      this.broadcastHeartbeat(this.reads.at(-1)?.context ?? '');
    }
  }

  /** Check-quorum: true when a majority of voters was heard from since the last round. */
  private checkQuorum(): boolean {
    let active = this.isVoter() ? 1 : 0;
    for (const [id, pr] of this.progress) {
      if (pr.recentActive && this.config.voters.includes(id)) active++;
      pr.recentActive = false;
    }
    return active >= quorumSize(this.config);
  }

  /** A snapshot whose answer never came was probably lost: probe again. */
  private retrySnapshots(): void {
    for (const pr of this.progress.values()) {
      if (pr.state !== 'snapshot') continue;
      pr.snapshotTicks += this.options.heartbeatTicks;
      if (pr.snapshotTicks >= this.options.electionTicks) pr.becomeProbe();
    }
  }

  // ---- terms and roles ------------------------------------------------------

  /**
   * Applies the term rules common to every role; returns false when the
   * message must go no further.
   */
  private stepTerm(m: Message): boolean {
    if (m.term > this.term) return this.stepHigherTerm(m);
    if (m.term < this.term) {
      this.answerStaleTerm(m);
      return false;
    }
    return true;
  }

  private stepHigherTerm(m: Message): boolean {
    const isRequest = m.type === 'preVote' || m.type === 'vote';
    // Leader stickiness: while a leader is heard from, a disruptive
    // candidate (a rejoining or removed server) is ignored outright.
    if (isRequest && this.inLease()) return false;
    if (m.type === 'preVote') return true;
    if (m.type === 'preVoteResp' && !m.reject) return true;
    const fromLeader = m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot';
    this.becomeFollower(m.term, fromLeader ? m.from : '');
    return true;
  }

  /**
   * A stale leader learns our term from the answer and steps down; without
   * it a server whose term ran ahead could never rejoin under check-quorum.
   */
  private answerStaleTerm(m: Message): void {
    if (m.type === 'append' || m.type === 'heartbeat') {
      this.send({ ...appendAnswer(m.from, 0, false), term: this.term });
    } else if (m.type === 'preVote') {
      this.send({ type: 'preVoteResp', to: m.from, term: this.term, reject: true });
    }
  }

  private inLease(): boolean {
    const known = this.leaderId !== '' || this.startingUp;
    return known && this.electionElapsed < this.options.electionTicks;
  }

  private becomeFollower(term: number, leaderId: string): void {
    if (term > this.term) {
      this.term = term;
      this.vote = '';
    }
    this.role = 'follower';
    this.leaderId = leaderId;
    this.resetRoleState();
  }

  private becomeLeader(): void {
    this.role = 'leader';
    this.leaderId = this.id;
    this.resetRoleState();
    for (const id of peersOf(this.config, this.id)) {
      this.progress.set(id, new Progress(this.log.lastIndex() + 1));
    }
    this.appendLocal('noop', NO_DATA);
  }

  private resetRoleState(): void {
    this.startingUp = false;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedTimeout();
    this.progress.clear();
    this.votes.clear();
    this.reads = [];
    this.readsBeforeCommit = [];
  }

  private resetRandomizedTimeout(): void {
    const extra = Math.floor(this.options.random() * this.options.electionTicks);
    this.randomizedTimeout = this.options.electionTicks + extra;
  }

  // ---- elections ------------------------------------------------------------

  /**
   * Pre-vote first asks whether a majority would vote, without raising the
   * term, so a server cut off from the leader cannot depose it on return.
   */
  private campaign(kind: 'preVote' | 'vote'): void {
    if (kind === 'preVote') {
      this.role = 'preCandidate';
      this.leaderId = '';
      this.resetRoleState();
    } else {
      this.becomeFollower(this.term + 1, '');
      this.role = 'candidate';
      this.vote = this.id;
    }
    this.votes.set(this.id, true);
    if (this.tallyVotes()) return;

    const term = kind === 'preVote' ? this.term + 1 : this.term;
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const id of this.config.voters) {
      if (id !== this.id) this.send({ type: kind, to: id, term, lastIndex, lastTerm });
    }
  }

  private handleVoteRequest(m: VoteRequest): void {
    const upToDate =
      this.unsafe.skipLogUpToDateCheck || this.log.isUpToDate(m.lastIndex, m.lastTerm);
    const grant = this.canVote(m) && upToDate;
    const answer = m.type === 'preVote' ? 'preVoteResp' : 'voteResp';
    if (!grant) {
      this.send({ type: answer, to: m.from, term: this.term, reject: true });
      return;
    }
    if (m.type === 'vote') {
      this.electionElapsed = 0;
      this.vote = m.from;
    }
    this.send({ type: answer, to: m.from, term: m.term, reject: false });
  }

  private canVote(m: VoteRequest): boolean {
    if (m.type === 'preVote' && m.term > this.term) return true;
    if (m.type === 'vote' && this.unsafe.grantVoteTwicePerTerm) return true;
    return this.vote === m.from || (this.vote === '' && this.leaderId === '');
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        this.becomeFollower(m.term, m.from);
        return this.stepFollower(m);
      case 'preVoteResp':
      case 'voteResp':
        return this.handleVoteResponse(m);
      default:
        return;
    }
  }

  private handleVoteResponse(m: VoteResponse): void {
    const expected = this.role === 'preCandidate' ? 'preVoteResp' : 'voteResp';
    if (m.type !== expected || !this.config.voters.includes(m.from)) return;
    this.votes.set(m.from, !m.reject);
    this.tallyVotes();
  }

  /** Moves on once the votes decide the election; returns whether they did. */
  private tallyVotes(): boolean {
    const quorum = quorumSize(this.config);
    const answers = [...this.votes].filter(([id]) => this.config.voters.includes(id));
    const granted = answers.filter(([, ok]) => ok).length;
    if (granted >= quorum) {
      if (this.role === 'preCandidate') this.campaign('vote');
      else this.becomeLeader();
      return true;
    }
    if (answers.length - granted > this.config.voters.length - quorum) {
      this.becomeFollower(this.term, '');
      return true;
    }
    return false;
  }

  // ---- follower -------------------------------------------------------------

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'append':
        this.heardFromLeader(m.from);
        return this.handleAppend(m);
      case 'heartbeat':
        this.heardFromLeader(m.from);
        return this.handleHeartbeat(m);
      case 'snapshot':
        this.heardFromLeader(m.from);
        return this.handleSnapshot(m);
      case 'readIndexResp':
        this.readStates.push({ context: m.context, index: m.index });
        return;
      default:
        return;
    }
  }

  private heardFromLeader(from: string): void {
    this.startingUp = false;
    this.electionElapsed = 0;
    this.leaderId = from;
  }

  private handleAppend(m: AppendRequest): void {
    const log = this.log;
    // Entries up to our commit already match the leader's; say so at once.
    if (m.prevIndex < log.commit) {
      this.send({ ...appendAnswer(m.from, log.commit, false), term: this.term });
      return;
    }
    const skip = this.unsafe.skipConsistencyCheck;
    const result = log.maybeAppend(m.prevIndex, m.prevTerm, m.entries, skip);
    if (!result) return this.rejectAppend(m);

    if (result.truncatedOrAdded) this.recomputeConfig();
    log.commitTo(Math.min(m.commit, result.lastNew));
    this.send({ ...appendAnswer(m.from, result.lastNew, false), term: this.term });
  }

  /** The hint lets the leader skip every entry of a term we do not share. */
  private rejectAppend(m: AppendRequest): void {
    const hint = this.log.findConflictByTerm(m.prevIndex, m.prevTerm);
    this.send({
      ...appendAnswer(m.from, m.prevIndex, true),
      term: this.term,
      hintIndex: hint.index,
      hintTerm: hint.term,
    });
  }

  private handleHeartbeat(m: Heartbeat): void {
    this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));
    const { context, sentAt } = m;
    this.send({ type: 'heartbeatResp', to: m.from, term: this.term, context, sentAt });
  }

  private handleSnapshot(m: InstallSnapshot): void {
    const { snapshot } = m;
    const log = this.log;
    let index = log.commit;
    if (snapshot.index > log.commit) {
      if (log.matchTerm(snapshot.index, snapshot.term)) {
        log.commitTo(snapshot.index);
      } else {
        log.restore(snapshot);
        this.recomputeConfig();
      }
      index = log.commit;
    }
    this.send({ ...appendAnswer(m.from, index, false), term: this.term });
  }

  // ---- leader ---------------------------------------------------------------

  private stepLeader(m: Message): void {
    const pr = this.progress.get(m.from);
    if (pr) pr.recentActive = true;
    switch (m.type) {
      case 'appendResp':
        if (pr) this.handleAppendResponse(m, pr);
        return;
      case 'heartbeatResp':
        if (pr) this.handleHeartbeatResponse(m, pr);
        return;
      case 'readIndex':
        return this.handleReadRequest(m.from, m.context);
      default:
        return;
    }
  }

  private handleAppendResponse(m: AppendResponse, pr: Progress): void {
    if (m.reject) {
      const probe = this.log.findConflictByTerm(m.hintIndex, m.hintTerm);
      if (pr.maybeDecrTo(m.index, probe.index + 1)) this.sendAppend(m.from, pr);
      return;
    }
    if (!pr.maybeUpdate(m.index)) return;
    if (pr.state === 'probe') pr.becomeReplicate();
    if (pr.state === 'snapshot' && pr.match >= pr.pendingSnapshot) pr.becomeReplicate();
    if (this.maybeCommit()) this.broadcastAppend();
    else if (pr.next <= this.log.lastIndex()) this.sendAppend(m.from, pr);
  }

  private handleHeartbeatResponse(m: HeartbeatResponse, pr: Progress): void {
    pr.leaseFrom = Math.max(pr.leaseFrom, m.sentAt);
    pr.probeSent = false;
    if (pr.match < this.log.lastIndex()) this.sendAppend(m.from, pr);
    if (m.context !== '') this.confirmRead(m.from, m.context);
  }

  /** Appends an entry of this leader's term and starts replicating it. */
  private appendLocal(type: EntryType, data: Uint8Array): ProposeResult {
    const entry: Entry = { index: this.log.lastIndex() + 1, term: this.term, type, data };
    this.log.append([entry]);
    if (type === 'config') this.adoptConfig(decodeConfig(data), entry.index);
    if (this.role !== 'leader') return this.notLeader();
    this.maybeCommit();
    this.broadcastAppend();
    return { ok: true, index: entry.index, term: this.term };
  }

  /**
   * Raises commit to the highest index stored on a majority of voters, but
   * only for an entry of this term (Raft §5.4.2): earlier terms' entries are
   * committed indirectly by it.
   */
  private maybeCommit(): boolean {
    const matches = this.config.voters.map((id) =>
      id === this.id ? this.log.lastIndex() : (this.progress.get(id)?.match ?? 0),
    );
    matches.sort((a, b) => b - a);
    const index = matches[quorumSize(this.config) - 1] ?? 0;
    const ownTerm = this.log.term(index) === this.term;
    if (!ownTerm && !this.unsafe.commitPreviousTermByCounting) return false;
    if (!this.log.commitTo(index)) return false;
    this.afterLeaderCommit();
    return true;
  }

  private afterLeaderCommit(): void {
    if (this.readsBeforeCommit.length > 0 && this.log.term(this.log.commit) === this.term) {
      const waiting = this.readsBeforeCommit;
      this.readsBeforeCommit = [];
      for (const read of waiting) this.handleReadRequest(read.from, read.context);
    }
    // A leader removed from the configuration leads until the removal commits.
    if (!this.isVoter() && this.log.commit >= this.configIndex) {
      this.broadcastAppend();
      this.becomeFollower(this.term, '');
    }
  }

  private broadcastAppend(): void {
    for (const [id, pr] of this.progress) this.sendAppend(id, pr);
  }

  /** Sends the entries `pr` lacks, or the snapshot when they are compacted. */
  private sendAppend(to: string, pr: Progress): void {
    if (pr.isPaused()) return;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    const hi = pr.next + this.options.maxMsgEntries;
    const entries = this.log.slice(pr.next, hi);
    if (prevTerm === undefined || entries === undefined) return this.sendSnapshot(to, pr);

    const commit = this.log.commit;
    this.send({ type: 'append', to, term: this.term, prevIndex, prevTerm, entries, commit });
    if (pr.state === 'replicate' && entries.length > 0) pr.next = entries.at(-1)!.index + 1;
    if (pr.state === 'probe') pr.probeSent = true;
  }

  private sendSnapshot(to: string, pr: Progress): void {
    const snapshot = this.log.snapshot;
    pr.becomeSnapshot(snapshot.index);
    this.send({ type: 'snapshot', to, term: this.term, snapshot });
  }

  /** Heartbeats carry a commit no higher than the follower is known to hold. */
  private broadcastHeartbeat(context: string): void {
    for (const [to, pr] of this.progress) {
      const commit = Math.min(pr.match, this.log.commit);
      this.send({ type: 'heartbeat', to, term: this.term, commit, context, sentAt: this.now });
    }
  }

  // ---- reads ----------------------------------------------------------------

  /**
   * ReadIndex: remember the commit index, then confirm with a heartbeat round
   * that no newer leader exists. Until this leader commits an entry of its
   * term its commit index may be stale, so the read waits.
   */
  private handleReadRequest(from: string, context: string): void {
    const read: PendingRead = { context, index: this.log.commit, from, acks: new Set() };
    if (this.log.term(this.log.commit) !== this.term) {
      this.readsBeforeCommit.push(read);
      return;
    }
    if (this.isVoter()) read.acks.add(this.id);
    if (this.unsafe.readWithoutQuorum || read.acks.size >= quorumSize(this.config)) {
      return this.releaseRead(read);
    }
    this.reads.push(read);
    this.broadcastHeartbeat(context);
  }

  private confirmRead(from: string, context: string): void {
    const at = this.reads.findIndex((r) => r.context === context);
    if (at < 0 || !this.config.voters.includes(from)) return;
    const read = this.reads[at];
    read.acks.add(from);
    if (read.acks.size < quorumSize(this.config)) return;
    // The round confirms every read queued before this one too.
    for (const done of this.reads.splice(0, at + 1)) this.releaseRead(done);
  }

  private releaseRead(read: PendingRead): void {
    if (read.from === this.id) {
      this.readStates.push({ context: read.context, index: read.index });
      return;
    }
    const { context, index } = read;
    this.send({ type: 'readIndexResp', to: read.from, term: this.term, context, index });
  }

  // ---- configuration --------------------------------------------------------

  /** Re-derives the configuration after the log's tail changed. */
  private recomputeConfig(): void {
    const { snapshot } = this.log;
    for (let i = this.log.lastIndex(); i > snapshot.index; i--) {
      const e = this.log.entry(i)!;
      if (e.type === 'config') return this.adoptConfig(decodeConfig(e.data), i);
    }
    this.adoptConfig(snapshot.config, snapshot.index);
  }

  /** The configuration in force at an index still in the log. */
  private configAt(index: number): ConfState {
    for (let i = index; i > this.log.snapshot.index; i--) {
      const e = this.log.entry(i)!;
      if (e.type === 'config') return decodeConfig(e.data);
    }
    return this.log.snapshot.config;
  }

  private adoptConfig(config: ConfState, index: number): void {
    this.config = config;
    this.configIndex = index;
    if (this.role !== 'leader') return;
    for (const id of this.progress.keys()) {
      if (!isMember(config, id)) this.progress.delete(id);
    }
    for (const id of peersOf(config, this.id)) {
      if (this.progress.has(id)) continue;
      this.progress.set(id, new Progress(this.log.lastIndex()));
    }
    // Fewer voters may mean an existing majority already holds more entries.
    this.maybeCommit();
  }

  // ---- helpers --------------------------------------------------------------

  private isVoter(): boolean {
    return this.config.voters.includes(this.id);
  }

  /**
   * A server may campaign while it votes in its latest configuration, or while
   * an uncommitted change removed it: then it is the removed leader or a peer
   * that must finish committing the change, counting only the new voters.
   */
  private isPromotable(): boolean {
    if (this.isVoter()) return true;
    if (this.configIndex <= this.log.commit) return false;
    return this.configAt(this.configIndex - 1).voters.includes(this.id);
  }

  private heardWithin(id: string, ticks: number): boolean {
    const pr = this.progress.get(id);
    return pr !== undefined && this.now - pr.leaseFrom < ticks;
  }

  private notLeader(): { ok: false; reason: 'notLeader'; leaderId: string } {
    return { ok: false, reason: 'notLeader', leaderId: this.leaderId };
  }

  private send(m: DistributiveOmit<Message, 'from'>): void {
    this.messages.push({ ...m, from: this.id } as Message);
  }

  private hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.commit };
  }

  private softState(): SoftState {
    return { leaderId: this.leaderId, role: this.role };
  }

  private assertAcceptingInput(): void {
    if (this.readyInFlight) throw new Error('raft: input fed between ready() and advance()');
  }
}

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

/** An appendResp without a hint; callers add the term. */
function appendAnswer(to: string, index: number, reject: boolean) {
  return { type: 'appendResp' as const, to, reject, index, hintIndex: 0, hintTerm: 0 };
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.leaderId === b.leaderId && a.role === b.role;
}
