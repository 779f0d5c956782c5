import { createPrng, randomInt } from './prng';
import { RaftNode, type UnsafeBreaks } from './raft-node';
import { SafetyChecker, SafetyViolation, entryKey, mixDigest } from './sim-checker';
import { MemoryStorage, bootstrapStorage, persistBatch, restoreState } from './storage';
import type { Entry, MembershipChange, Message, Ready, Snapshot } from './types';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** How the fake network mistreats messages. */
export interface NetConditions {
  /** Chance that a message is dropped. */
  loss: number;
  /** Chance that a message is delivered twice. */
  duplicate: number;
  /** Delivery delay in ticks, drawn uniformly from [minDelay, maxDelay]; spread reorders. */
  minDelay: number;
  maxDelay: number;
}

/** The shape of a simulated cluster. */
export interface ClusterOptions {
  ids: string[];
  /** The founding voters; the other ids start empty and may be added later. */
  voters: string[];
  random: () => number;
  net: NetConditions;
  electionTicks?: number;
  heartbeatTicks?: number;
  maxMsgEntries?: number;
  unsafe?: UnsafeBreaks;
  /** Chance that a node crashes right after an input, before persisting its Ready. */
  crashBeforePersist?: number;
  /** Chance that a node crashes after persisting a Ready (entries or hard state), unsent. */
  crashAfterPersist?: number;
  /** Per node, the chance that a tick of the cluster reaches it: below 1 is a slow clock. */
  clockRates?: number[];
  /** Check that at most one leader holds a valid lease; sound only with equal clocks. */
  checkLeases?: boolean;
}

/** The application a simulated server runs: a digest of everything applied. */
interface SimApp {
  applied: number;
  digest: number;
}

/** One simulated server: durable storage that survives crashes, and a core while it runs. */
export class SimNode {
  readonly id: string;
  readonly storage = new MemoryStorage();
  core: RaftNode | undefined;
  app: SimApp = { applied: 0, digest: 0 };
  /** Index of the last commit this node persisted as leader, for commit records. */
  leaderCommit = 0;
  /** Every ReadState this node produced, for tests. */
  readonly reads: { context: string; index: number }[] = [];

  /** The chance that a cluster tick reaches this node's clock. */
  clockRate: number;

  constructor(id: string, clockRate: number) {
    this.id = id;
    this.clockRate = clockRate;
  }
}

/** Counters a run reports, to show which features the seeds exercised. */
export interface SimStats {
  leaders: number;
  committed: number;
  snapshotsInstalled: number;
  configChanges: number;
  reads: number;
  crashes: number;
}

/**
 * An in-memory cluster on a manual clock: every node's ticks, deliveries,
 * crashes and restarts happen when the test says, and a SafetyChecker
 * watches every step.
 */
export class SimCluster {
  readonly nodes = new Map<string, SimNode>();
  readonly checker = new SafetyChecker();
  readonly stats: SimStats = {
    leaders: 0, committed: 0, snapshotsInstalled: 0, configChanges: 0, reads: 0, crashes: 0,
  };
  net: NetConditions;
  /** Chance that a node crashes right after an input, before persisting its Ready. */
  crashBeforePersist: number;
  /** Chance that a node crashes after persisting a Ready (entries or hard state), unsent. */
  crashAfterPersist: number;
  now = 0;
  /** Called with every message just before it is delivered; for tests. */
  observe: ((m: Message) => void) | undefined;
  private readonly random: () => number;
  private readonly options: ClusterOptions;
  /** tick -> messages due then. */
  private readonly queue = new Map<number, Message[]>();
  /** node id -> partition group; nodes talk only within a group. */
  private groups = new Map<string, number>();
  /** read context -> highest committed index when the read began. */
  private readonly pendingReads = new Map<string, number>();
  private readSeq = 0;

  constructor(options: ClusterOptions) {
    this.options = options;
    this.random = options.random;
    this.net = options.net;
    this.crashBeforePersist = options.crashBeforePersist ?? 0;
    this.crashAfterPersist = options.crashAfterPersist ?? 0;
    options.ids.forEach((id, n) => {
      const node = new SimNode(id, options.clockRates?.[n] ?? 1);
      if (options.voters.includes(id)) bootstrapStorage(node.storage, options.voters);
      this.nodes.set(id, node);
      this.start(node, true);
    });
  }

  /** Advances the clock: every running node ticks, then due messages arrive. */
  tick(): void {
    this.now++;
    for (const node of this.nodes.values()) {
      if (!node.core || this.random() >= node.clockRate) continue;
      this.input(node, (core) => core.tick());
    }
    this.deliverDue();
    if (this.options.checkLeases) this.checkLeases();
  }

  /** Lease safety: two servers never both believe they hold the leader lease. */
  private checkLeases(): void {
    const holders = [...this.nodes.values()].filter((n) => n.core?.leaseValid());
    if (holders.length <= 1) return;
    const names = holders.map((n) => `${n.id}@${n.core!.status().term}`).join(', ');
    throw new SafetyViolation('lease safety', `${names} hold valid leases at tick ${this.now}`);
  }

  /** Runs `n` ticks. */
  run(n: number): void {
    for (let i = 0; i < n; i++) this.tick();
  }

  /** Ticks until `done` holds; returns whether it did within `limit` ticks. */
  runUntil(done: () => boolean, limit: number): boolean {
    for (let i = 0; i < limit; i++) {
      if (done()) return true;
      this.tick();
    }
    return done();
  }

  /** Stops a node; it keeps only what its storage holds. */
  crash(id: string): void {
    const node = this.nodes.get(id)!;
    if (!node.core) return;
    node.core = undefined;
    this.stats.crashes++;
  }

  /**
   * Starts a crashed node from its storage. With `keepApp` the application
   * state survived too (it is durable beside the log); otherwise it restarts
   * from the snapshot and re-applies.
   */
  restart(id: string, keepApp: boolean): void {
    const node = this.nodes.get(id)!;
    if (node.core) return;
    this.start(node, keepApp);
  }

  /** Splits the cluster; ids not listed form one more group. */
  partition(groups: string[][]): void {
    this.groups = new Map();
    groups.forEach((g, n) => g.forEach((id) => this.groups.set(id, n + 1)));
  }

  /** Reconnects every node. */
  heal(): void {
    this.groups = new Map();
  }

  /** The running leader with the highest term, if any. */
  leader(): SimNode | undefined {
    let best: SimNode | undefined;
    let bestTerm = -1;
    for (const node of this.nodes.values()) {
      const s = node.core?.status();
      if (s?.role === 'leader' && s.term > bestTerm) [best, bestTerm] = [node, s.term];
    }
    return best;
  }

  /** Proposes a command at `id`, following one not-leader redirect. */
  propose(id: string, data: string): boolean {
    const node = this.nodes.get(id)!;
    const result = this.input(node, (core) => core.propose(data));
    if (!result || result.ok) return result?.ok ?? false;
    const leader = this.nodes.get(result.leaderId);
    if (!leader || leader === node) return false;
    return this.input(leader, (core) => core.propose(data))?.ok ?? false;
  }

  /** Proposes a membership change at `id`. */
  proposeChange(id: string, change: MembershipChange): boolean {
    const result = this.input(this.nodes.get(id)!, (core) => core.proposeChange(change));
    if (result?.ok) this.stats.configChanges++;
    return result?.ok ?? false;
  }

  /** Starts a linearizable read at `id`; returns its context, or undefined when refused. */
  read(id: string): string | undefined {
    const context = `${id}#${++this.readSeq}`;
    this.pendingReads.set(context, this.checker.maxCommitted);
    const result = this.input(this.nodes.get(id)!, (core) => core.readIndex(context));
    if (result?.ok) return context;
    this.pendingReads.delete(context);
    return undefined;
  }

  /** Has `id` take a snapshot at its applied index and compact its log. */
  compact(id: string): void {
    const node = this.nodes.get(id)!;
    const index = node.app.applied;
    const data = encoder.encode(String(node.app.digest));
    const result = this.input(node, (core) => core.compact(index, data));
    if (result?.ok) node.storage.compact(result.snapshot);
  }

  /** Whether a command with `data` has been committed by a leader. */
  isCommitted(data: string): boolean {
    return this.checker.committedData.has(data);
  }

  // ---- plumbing -------------------------------------------------------------

  private start(node: SimNode, keepApp: boolean): void {
    const restored = restoreState(node.storage);
    const snapshot = restored.snapshot;
    // An application behind the snapshot (it crashed before installing it)
    // must start from the snapshot, like one whose state was lost.
    if (!keepApp || node.app.applied < (snapshot?.index ?? 0)) {
      node.app = { applied: snapshot?.index ?? 0, digest: snapshotDigest(snapshot) };
    }
    node.leaderCommit = 0;
    node.core = new RaftNode(
      {
        id: node.id,
        electionTicks: this.options.electionTicks ?? 10,
        heartbeatTicks: this.options.heartbeatTicks ?? 2,
        maxMsgEntries: this.options.maxMsgEntries,
        random: this.random,
        applied: node.app.applied,
        unsafe: this.options.unsafe,
      },
      restored,
    );
  }

  /**
   * Feeds one input, checks election safety, and handles the Ready, unless
   * the node crashes first and loses everything it had not persisted.
   */
  private input<T>(node: SimNode, fn: (core: RaftNode) => T): T | undefined {
    const core = node.core;
    if (!core) return undefined;
    const result = fn(core);
    const status = core.status();
    if (status.role === 'leader') this.checker.onLeader(node.id, status.term, core);
    if (this.crashBeforePersist > 0 && this.random() < this.crashBeforePersist) {
      this.crash(node.id);
      return result;
    }
    while (node.core && core.hasReady()) this.handleReady(node, core, core.ready());
    return result;
  }

  private handleReady(node: SimNode, core: RaftNode, rd: Ready): void {
    if (rd.softState?.role === 'leader') this.stats.leaders++;
    const commitBefore = node.storage.hardState().commit;
    node.storage.save(persistBatch(rd));
    this.checkPersisted(node, rd, commitBefore);
    if ((rd.entries.length > 0 || rd.hardState) && this.random() < this.crashAfterPersist) {
      this.crash(node.id);
      return;
    }
    for (const m of rd.messages) this.send(m);
    if (rd.snapshot) this.installSnapshot(node, rd.snapshot);
    for (const e of rd.committedEntries) this.apply(node, e);
    for (const rs of rd.readStates) this.answerRead(node, rs.context, rs.index);
    core.advance();
  }

  private checkPersisted(node: SimNode, rd: Ready, commitBefore: number): void {
    const { storage } = node;
    for (const e of rd.entries) this.checker.onStored(node.id, e, storage.term(e.index - 1) ?? -1);
    const hs = storage.hardState();
    if (hs.commit < commitBefore) {
      const detail = `${node.id} persisted commit ${hs.commit} after ${commitBefore}`;
      throw new SafetyViolation('commit monotonic', detail);
    }
    const status = node.core!.status();
    if (status.role !== 'leader' || hs.commit <= Math.max(node.leaderCommit, commitBefore)) return;
    const from = Math.max(node.leaderCommit, commitBefore) + 1;
    const entries = storage.entries(from, hs.commit + 1);
    this.checker.onCommitted(node.id, entries, status.term);
    this.stats.committed += entries.length;
    node.leaderCommit = hs.commit;
  }

  private installSnapshot(node: SimNode, snapshot: Snapshot): void {
    if (snapshot.index <= node.app.applied) {
      const { applied } = node.app;
      const detail = `${node.id} installs snapshot ${snapshot.index} after applying ${applied}`;
      throw new SafetyViolation('applied never goes backwards', detail);
    }
    const digest = snapshotDigest(snapshot);
    this.checker.onSnapshot(node.id, snapshot, digest);
    node.app = { applied: snapshot.index, digest };
    this.stats.snapshotsInstalled++;
  }

  private apply(node: SimNode, e: Entry): void {
    if (e.index !== node.app.applied + 1) {
      const detail = `${node.id} applies ${e.index} after ${node.app.applied}`;
      throw new SafetyViolation('applied never goes backwards', detail);
    }
    const digest = mixDigest(node.app.digest, entryKey(e));
    this.checker.onApplied(node.id, e, digest);
    node.app = { applied: e.index, digest };
  }

  private answerRead(node: SimNode, context: string, index: number): void {
    const committedAtStart = this.pendingReads.get(context);
    if (committedAtStart === undefined) return;
    this.pendingReads.delete(context);
    this.checker.onRead(node.id, index, committedAtStart);
    node.reads.push({ context, index });
    this.stats.reads++;
  }

  private send(message: Message): void {
    const { net } = this;
    if (!this.connected(message.from, message.to) || this.random() < net.loss) return;
    this.enqueue(message);
    if (this.random() < net.duplicate) this.enqueue(message);
  }

  private enqueue(message: Message): void {
    const at = this.now + randomInt(this.random, this.net.minDelay, this.net.maxDelay);
    const due = this.queue.get(at);
    if (due) due.push(message);
    else this.queue.set(at, [message]);
  }

  /** Delivers what is due now in a random order; a zero delay lands within this tick. */
  private deliverDue(): void {
    for (let guard = 0; guard < 1000; guard++) {
      const due = this.queue.get(this.now);
      if (!due || due.length === 0) return;
      this.queue.delete(this.now);
      shuffle(due, this.random);
      for (const message of due) this.deliver(message);
    }
  }

  private deliver(message: Message): void {
    const node = this.nodes.get(message.to);
    if (!node?.core || !this.connected(message.from, message.to)) return;
    this.observe?.(message);
    this.input(node, (core) => core.step(message));
  }

  private connected(a: string, b: string): boolean {
    return (this.groups.get(a) ?? 0) === (this.groups.get(b) ?? 0);
  }
}

/** One line naming a message and its most telling fields. */
export function describeMessage(m: Message): string {
  const head = `${m.from}->${m.to} ${m.type} term=${m.term}`;
  switch (m.type) {
    case 'append':
      return `${head} prev=${m.prevIndex}/${m.prevTerm} n=${m.entries.length} commit=${m.commit}`;
    case 'appendResp':
      return `${head} reject=${m.reject} index=${m.index} hint=${m.hintIndex}/${m.hintTerm}`;
    case 'preVote':
    case 'vote':
      return `${head} last=${m.lastIndex}/${m.lastTerm}`;
    case 'preVoteResp':
    case 'voteResp':
      return `${head} reject=${m.reject}`;
    case 'snapshot':
      return `${head} index=${m.snapshot.index}`;
    default:
      return head;
  }
}

function snapshotDigest(snapshot: Snapshot | undefined): number {
  if (!snapshot || snapshot.data.length === 0) return 0;
  return Number(decoder.decode(snapshot.data));
}

function shuffle<T>(items: T[], random: () => number): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
}

// ---- randomized runs --------------------------------------------------------

/** One randomized run: a chaos phase, then a calm phase that must make progress. */
export interface SimulationOptions {
  seed: number;
  /** Ticks of partitions, crashes, loss and membership changes. */
  chaosTicks?: number;
  /** Ticks the healed cluster gets to elect a leader and commit a proposal. */
  calmTicks?: number;
  unsafe?: UnsafeBreaks;
  /** Forces a chaos profile instead of letting the seed choose. */
  profile?: 'mixed' | 'crashy';
  /** Receives one line per delivered message, for replaying a failing seed. */
  trace?: (line: string) => void;
}

/** What a run found: the first violation, if any, and what it exercised. */
export interface SimulationResult {
  seed: number;
  violation?: SafetyViolation | Error;
  stats: SimStats;
}

/** Runs one seeded simulation; the same seed always replays the same run. */
export function runSimulation(options: SimulationOptions): SimulationResult {
  const random = createPrng(options.seed);
  const picked = pickProfile(random);
  const profile = PROFILES.find((p) => p.name === options.profile) ?? picked;
  const cluster = buildCluster(random, profile, options.unsafe);
  const { trace } = options;
  if (trace) cluster.observe = (m) => trace(`t=${cluster.now} ${describeMessage(m)}`);
  try {
    runChaos(cluster, random, profile, options.chaosTicks ?? 300);
    runCalm(cluster, options.calmTicks ?? 200);
  } catch (err) {
    const violation = err instanceof Error ? err : new Error(String(err));
    return { seed: options.seed, violation, stats: cluster.stats };
  }
  return { seed: options.seed, stats: cluster.stats };
}

/**
 * How hostile a run is. `mixed` exercises every feature; `crashy` keeps
 * three voters on a clean network and crashes leaders right after they
 * persist, the schedule behind the Raft paper's figure 8.
 */
interface ChaosProfile {
  name: 'mixed' | 'crashy';
  partition: number;
  crash: number;
  leaderCrash: number;
  leaderIsolate: number;
  restart: number;
  change: number;
}

const PROFILES: ChaosProfile[] = [
  {
    name: 'mixed', partition: 0.02, crash: 0.004, leaderCrash: 0.02, leaderIsolate: 0.01,
    restart: 0.05, change: 0.015,
  },
  {
    name: 'crashy', partition: 0.02, crash: 0.004, leaderCrash: 0.05, leaderIsolate: 0.05,
    restart: 0.1, change: 0,
  },
];

function pickProfile(random: () => number): ChaosProfile {
  return random() < 0.7 ? PROFILES[0] : PROFILES[1];
}

function buildCluster(random: () => number, profile: ChaosProfile, unsafe?: UnsafeBreaks) {
  const crashy = profile.name === 'crashy';
  const size = crashy ? 3 : randomInt(random, 3, 5);
  const ids = Array.from({ length: size }, (_, i) => `n${i + 1}`);
  const voters = crashy ? ids : ids.slice(0, size === 4 ? 3 : randomInt(random, 3, size));
  const maxDelay = randomInt(random, 1, 4);
  const skewed = random() < 0.5;
  return new SimCluster({
    ids,
    voters,
    random,
    net: crashy ? { loss: 0.1, duplicate: 0, minDelay: 0, maxDelay } : chaosNet(random, maxDelay),
    electionTicks: 10,
    heartbeatTicks: randomInt(random, 1, 3),
    // One entry per append splits a new leader's no-op from older entries.
    maxMsgEntries: crashy || random() < 0.5 ? 1 : randomInt(random, 2, 8),
    clockRates: skewed ? ids.map(() => 0.3 + random() * 0.7) : undefined,
    checkLeases: !skewed,
    crashBeforePersist: 0.002,
    crashAfterPersist: crashy ? 0.1 : 0.02,
    unsafe,
  });
}

function chaosNet(random: () => number, maxDelay: number): NetConditions {
  return { loss: random() * 0.3, duplicate: random() * 0.05, minDelay: 0, maxDelay };
}

function runChaos(cluster: SimCluster, random: () => number, p: ChaosProfile, ticks: number) {
  const ids = [...cluster.nodes.keys()];
  const pick = () => ids[Math.floor(random() * ids.length)];
  let seq = 0;
  for (let t = 0; t < ticks; t++) {
    if (random() < p.partition) cluster.partition([ids.filter(() => random() < 0.5)]);
    if (random() < p.partition) cluster.heal();
    disturbLeader(cluster, random, p);
    for (const id of ids) {
      const node = cluster.nodes.get(id)!;
      if (node.core && random() < p.crash) cluster.crash(id);
      else if (!node.core && random() < p.restart) cluster.restart(id, random() < 0.5);
      else if (node.core && random() < 0.02) cluster.compact(id);
    }
    if (random() < 0.4) cluster.propose(pick(), `c${++seq}`);
    if (random() < 0.3) cluster.read(random() < 0.5 ? pick() : oldestLeader(cluster) ?? pick());
    if (random() < p.change) proposeRandomChange(cluster, random);
    cluster.tick();
  }
}

/** A client that has not noticed a new leader keeps reading from the old one. */
function oldestLeader(cluster: SimCluster): string | undefined {
  let oldest: string | undefined;
  let oldestTerm = Infinity;
  for (const node of cluster.nodes.values()) {
    const s = node.core?.status();
    if (s?.role === 'leader' && s.term < oldestTerm) [oldest, oldestTerm] = [node.id, s.term];
  }
  return oldest;
}

/** Leaders are where bugs hide: cut off or crash the current one now and then. */
function disturbLeader(cluster: SimCluster, random: () => number, p: ChaosProfile): void {
  const leader = cluster.leader();
  if (!leader) return;
  if (random() < p.leaderIsolate) cluster.partition([[leader.id]]);
  if (random() < p.leaderCrash) cluster.crash(leader.id);
}

function proposeRandomChange(cluster: SimCluster, random: () => number): void {
  const leader = cluster.leader();
  if (!leader?.core) return;
  const { voters, learners } = leader.core.status().config;
  const outsiders = [...cluster.nodes.keys()].filter(
    (id) => !voters.includes(id) && !learners.includes(id),
  );
  const options: MembershipChange[] = [
    ...outsiders.map((nodeId) => ({ type: 'addLearner' as const, nodeId })),
    ...outsiders.map((nodeId) => ({ type: 'addVoter' as const, nodeId })),
    ...learners.map((nodeId) => ({ type: 'promoteLearner' as const, nodeId })),
    ...[...voters, ...learners].map((nodeId) => ({ type: 'remove' as const, nodeId })),
  ];
  if (options.length === 0) return;
  cluster.proposeChange(leader.id, options[Math.floor(random() * options.length)]);
}

/**
 * Liveness: once the network heals and every node runs, a leader must be
 * elected and a proposal committed within the bound.
 */
function runCalm(cluster: SimCluster, ticks: number): void {
  cluster.heal();
  cluster.net = { loss: 0, duplicate: 0, minDelay: 1, maxDelay: 2 };
  cluster.crashBeforePersist = 0;
  cluster.crashAfterPersist = 0;
  for (const id of cluster.nodes.keys()) cluster.restart(id, true);

  const marker = `calm-${cluster.now}`;
  let proposedIn = -1;
  const done = cluster.runUntil(() => {
    const leader = cluster.leader();
    const term = leader?.core?.status().term ?? -1;
    if (leader && term !== proposedIn && cluster.propose(leader.id, marker)) proposedIn = term;
    return cluster.isCommitted(marker);
  }, ticks);
  if (!done) {
    throw new SafetyViolation('liveness', `no proposal committed within ${ticks} calm ticks`);
  }
}
