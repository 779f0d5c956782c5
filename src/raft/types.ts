/**
 * The values that cross the boundary of the Raft core: log entries, the
 * messages exchanged between servers, the durable and volatile state the
 * caller must persist or report, and the answers to proposals.
 */

/** What an entry carries: a client command, a new leader's no-op, or a configuration. */
export type EntryType = 'normal' | 'noop' | 'config';

/** One slot of the replicated log; never mutated once created. */
export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly type: EntryType;
  /** The command for `normal`, empty for `noop`, an encoded ConfState for `config`. */
  readonly data: Uint8Array;
}

/** The state a server must persist before it sends any message that depends on it. */
export interface HardState {
  term: number;
  /** The candidate this server voted for in `term`, or '' for none. */
  vote: string;
  commit: number;
}

/** The members of the cluster: voters elect and commit, learners only receive the log. */
export interface ConfState {
  voters: string[];
  learners: string[];
}

/** The application state up to `index`, standing in for every entry up to it. */
export interface Snapshot {
  readonly index: number;
  readonly term: number;
  /** The configuration in force at `index`. */
  readonly config: ConfState;
  readonly data: Uint8Array;
}

/** What a server currently is in its term. */
export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

/** Volatile state worth reporting (to logs, to the scheduler) when it changes. */
export interface SoftState {
  /** The leader of the current term as far as this server knows, or ''. */
  leaderId: string;
  role: Role;
}

interface Envelope {
  from: string;
  to: string;
  /** The sender's term, except in pre-vote requests and grants (the term it would campaign in). */
  term: number;
}

/** Asks for a (pre-)vote; `lastIndex`/`lastTerm` describe the candidate's log. */
export interface VoteRequest extends Envelope {
  type: 'preVote' | 'vote';
  lastIndex: number;
  lastTerm: number;
}

/** Answers a (pre-)vote request. */
export interface VoteResponse extends Envelope {
  type: 'preVoteResp' | 'voteResp';
  reject: boolean;
}

/** Carries entries after (prevIndex, prevTerm) and the leader's commit index. */
export interface AppendRequest extends Envelope {
  type: 'append';
  prevIndex: number;
  prevTerm: number;
  entries: Entry[];
  commit: number;
}

/**
 * Answers an append or snapshot. On success `index` is the highest index now
 * known to match the leader; on rejection `index` is the rejected prevIndex
 * and (hintIndex, hintTerm) let the leader skip a whole term at once.
 */
export interface AppendResponse extends Envelope {
  type: 'appendResp';
  reject: boolean;
  index: number;
  hintIndex: number;
  hintTerm: number;
}

/** Keeps followers from campaigning and carries a read request's context. */
export interface Heartbeat extends Envelope {
  type: 'heartbeat';
  commit: number;
  /** The newest pending read's context, or '' when no read is pending. */
  context: string;
  /** The leader's tick when it sent this; echoed back to time its lease. */
  sentAt: number;
}

/** Answers a heartbeat, echoing its context. */
export interface HeartbeatResponse extends Envelope {
  type: 'heartbeatResp';
  context: string;
  sentAt: number;
}

/** Replaces a lagging follower's log with the leader's snapshot. */
export interface InstallSnapshot extends Envelope {
  type: 'snapshot';
  snapshot: Snapshot;
}

/** A follower forwarding a linearizable read to its leader. */
export interface ReadIndexRequest extends Envelope {
  type: 'readIndex';
  context: string;
}

/** The leader's confirmed commit index for a forwarded read. */
export interface ReadIndexResponse extends Envelope {
  type: 'readIndexResp';
  context: string;
  index: number;
}

/** Everything one Raft server sends to another. */
export type Message =
  | VoteRequest
  | VoteResponse
  | AppendRequest
  | AppendResponse
  | Heartbeat
  | HeartbeatResponse
  | InstallSnapshot
  | ReadIndexRequest
  | ReadIndexResponse;

/** A read that may be served once the local applied index reaches `index`. */
export interface ReadState {
  context: string;
  index: number;
}

/**
 * The work the caller must do after feeding the core inputs, in this order:
 * 1. persist `snapshot`, `entries` and `hardState` durably, in one write;
 * 2. only then send `messages` (votes and acks promise what was persisted);
 * 3. install `snapshot` into the application, apply `committedEntries`,
 *    answer `readStates` once applied reaches their index;
 * 4. call `advance()`.
 */
export interface Ready {
  hardState?: HardState;
  entries: Entry[];
  messages: Message[];
  committedEntries: Entry[];
  snapshot?: Snapshot;
  softState?: SoftState;
  readStates: ReadState[];
}

/** A request only a leader can serve, sent elsewhere: `leaderId` is '' when unknown. */
export interface NotLeader {
  ok: false;
  reason: 'notLeader';
  leaderId: string;
}

/** The answer to a proposal: where the entry went, or why it was refused. */
export type ProposeResult = { ok: true; index: number; term: number } | NotLeader;

/** One voter or learner added, removed or promoted at a time. */
export interface MembershipChange {
  type: 'addVoter' | 'addLearner' | 'promoteLearner' | 'remove';
  nodeId: string;
}

/** The answer to a membership change proposal. */
export type ChangeResult =
  | ProposeResult
  | { ok: false; reason: 'changePending' | 'invalidChange'; detail: string };

/** The answer to a read request; the read itself completes through a ReadState. */
export type ReadResult = { ok: true } | NotLeader;

/** The answer to a compaction request. */
export type CompactResult =
  | { ok: true; snapshot: Snapshot }
  | { ok: false; reason: 'invalidIndex'; detail: string };
