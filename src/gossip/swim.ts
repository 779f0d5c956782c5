/**
 * The SWIM failure detector and membership protocol as a pure state
 * machine: no sockets, no clocks, no timers. The shell calls `tick(now)`
 * with a monotonic time in milliseconds and `receive(from, message)` with
 * each datagram, and sends the messages and reports the events that come
 * back. Randomness is injected, so runs on a simulated network repeat.
 *
 * One probe period: ping the next member of a shuffled round; without an
 * ack after `probeTimeoutMs`, ask `indirectChecks` members to ping it;
 * without any ack by the period's end, suspect it. A suspect that does not
 * refute (by raising its incarnation) within the suspicion timeout is dead.
 * Every state change is piggybacked on later messages a bounded number of
 * times.
 */
import { createPrng } from '../raft/prng';
import { expectedConfirmations, retransmitLimit, suspicionTimeoutMs } from './suspicion';
import type {
  AckMessage,
  GossipMessage,
  MemberInfo,
  MembershipEvent,
  MemberState,
  Output,
  PingMessage,
  PingReqMessage,
  Update,
} from './types';

/** Tuning of the protocol; every duration is in monotonic milliseconds. */
export interface SwimConfig {
  /** This node's unique name (the Flotilla node name). */
  name: string;
  /** "host:port" other members reach this node on. */
  address: string;
  /** One probe is started per period. */
  probeIntervalMs: number;
  /** Wait for a direct ack before asking for indirect probes. */
  probeTimeoutMs: number;
  /** Members asked to probe on our behalf. */
  indirectChecks: number;
  /** Confirmations that bring the suspicion timeout down to its minimum. */
  suspicionConfirmations: number;
  /** Suspicion timeout once enough members confirm it. */
  suspicionMinMs: number;
  /** Suspicion timeout with no confirmation. */
  suspicionMaxMs: number;
  /** Piggyback count is this times log10(cluster size + 1), rounded up. */
  retransmitMultiplier: number;
  /** How often to push-pull with a dead member (heals partitions). */
  reconnectIntervalMs: number;
  /** Byte budget of the updates piggybacked on one message. */
  maxPiggybackBytes: number;
  /** Byte budget of a full-state join or sync message. */
  maxSyncBytes: number;
  /** Incarnation to start with. */
  incarnation: number;
  /** Numbers in [0, 1); seeded from the name when not given. */
  random: () => number;
}

/**
 * Defaults for a LAN, chosen on the simulator: a crashed node is dead
 * everywhere in about 2 s (under 3 s in clusters of 3 and 5), and 10%
 * message loss declares nobody dead.
 */
export const DEFAULT_SWIM_CONFIG = {
  probeIntervalMs: 400,
  probeTimeoutMs: 150,
  indirectChecks: 3,
  suspicionConfirmations: 2,
  suspicionMinMs: 1000,
  suspicionMaxMs: 6000,
  retransmitMultiplier: 4,
  reconnectIntervalMs: 5000,
  maxPiggybackBytes: 1000,
  maxSyncBytes: 7000,
  incarnation: 0,
} as const;

/** A member as this node tracks it. */
interface Member extends MemberInfo {
  /** Monotonic time the current suspicion started. */
  suspectSince?: number;
  /** Distinct members that suspect this incarnation; the first one started it. */
  suspecters?: string[];
  /** How many confirmations would bring the timeout to its minimum. */
  expected?: number;
}

/** The probe of the current period. */
interface Probe {
  seq: number;
  target: string;
  startedAt: number;
  indirectSent: boolean;
  acked: boolean;
}

/** A ping sent for another member's indirect probe; its ack goes back there. */
interface Relay {
  requester: string;
  seq: number;
  expiresAt: number;
}

/** A pending piggybacked update. */
interface Broadcast {
  update: Update;
  transmits: number;
}

/** One member's SWIM state machine. */
export class SwimNode {
  readonly config: SwimConfig;
  private now = 0;
  private seq = 0;
  private incarnation: number;
  private readonly table = new Map<string, Member>();
  /** Newest update about each member, keyed by member name. */
  private readonly broadcasts = new Map<string, Broadcast>();
  private readonly relays = new Map<number, Relay>();
  private probe?: Probe;
  private nextProbeAt = 0;
  private round: string[] = [];
  private seeds: string[] = [];
  private nextReconnectAt = 0;

  constructor(config: Partial<SwimConfig> & Pick<SwimConfig, 'name' | 'address'>) {
    this.config = {
      ...DEFAULT_SWIM_CONFIG,
      random: createPrng(hashName(config.name)),
      ...config,
    };
    this.incarnation = this.config.incarnation;
    // Announce ourselves on our first messages: a member that joined
    // before us hears of us from us, not only second hand.
    this.enqueue(this.selfUpdate());
  }

  /** This node's own entry. */
  self(): MemberInfo {
    const { name, address } = this.config;
    return { name, address, state: 'alive', incarnation: this.incarnation };
  }

  /** Every member known, this node first. */
  members(): MemberInfo[] {
    const others = [...this.table.values()].map((m) => ({
      name: m.name,
      address: m.address,
      state: m.state,
      incarnation: m.incarnation,
    }));
    return [this.self(), ...others];
  }

  /** Contacts `seeds` ("host:port") now and whenever this node knows nobody alive. */
  join(seeds: string[]): Output {
    const out = emptyOutput();
    this.seeds = seeds.filter((s) => s !== this.config.address);
    const message = this.stateMessage('join');
    for (const to of this.seeds) out.messages.push({ to, message });
    this.nextReconnectAt = this.now + this.config.probeIntervalMs * 2;
    return out;
  }

  /** Advances timers to `now` (monotonic ms); call often, e.g. every 50 ms. */
  tick(now: number): Output {
    this.now = Math.max(this.now, now);
    const out = emptyOutput();
    this.expireSuspicions(out);
    this.advanceProbe(out);
    this.reconnect(out);
    for (const [seq, relay] of this.relays) {
      if (relay.expiresAt <= this.now) this.relays.delete(seq);
    }
    return out;
  }

  /** Handles one message that arrived from address `from`. */
  receive(from: string, message: GossipMessage, now?: number): Output {
    if (now !== undefined) this.now = Math.max(this.now, now);
    const out = emptyOutput();
    for (const update of message.u) this.applyUpdate(update, out);
    switch (message.t) {
      case 'ping':
        this.onPing(from, message, out);
        break;
      case 'pingReq':
        this.onPingReq(from, message, out);
        break;
      case 'ack':
        this.onAck(message, out);
        break;
      case 'join':
        out.messages.push({ to: from, message: this.stateMessage('sync') });
        break;
      case 'sync':
        break;
    }
    return out;
  }

  private onPing(from: string, message: PingMessage, out: Output): void {
    if (message.target !== this.config.name) return;
    const u = this.piggyback(message.from);
    // A prober that doubts us gets our refutation on the ack itself, even
    // when its piggyback budget has run out elsewhere.
    const doubted = message.u.some((x) => x.n === this.config.name && x.s !== 'alive');
    if (doubted && !u.some((x) => x.n === this.config.name)) u.unshift(this.selfUpdate());
    const ack: AckMessage = { t: 'ack', seq: message.seq, from: this.config.name, u };
    out.messages.push({ to: from, message: ack });
  }

  private onPingReq(from: string, message: PingReqMessage, out: Output): void {
    const seq = this.nextSeq();
    const expiresAt = this.now + this.config.probeIntervalMs;
    this.relays.set(seq, { requester: from, seq: message.seq, expiresAt });
    const ping = this.ping(seq, message.target);
    out.messages.push({ to: message.targetAddress, message: ping });
  }

  private onAck(message: AckMessage, out: Output): void {
    const probe = this.probe;
    if (probe?.seq === message.seq && probe.target === message.from) probe.acked = true;
    const relay = this.relays.get(message.seq);
    if (!relay) return;
    this.relays.delete(message.seq);
    const ack: AckMessage = { ...message, seq: relay.seq, u: this.piggyback() };
    out.messages.push({ to: relay.requester, message: ack });
  }

  // --- probing -----------------------------------------------------------

  private advanceProbe(out: Output): void {
    const probe = this.probe;
    const { probeTimeoutMs, probeIntervalMs } = this.config;
    const waited = probe ? this.now - probe.startedAt : 0;
    if (probe && !probe.acked && !probe.indirectSent && waited >= probeTimeoutMs) {
      probe.indirectSent = true;
      this.sendIndirect(probe, out);
    }
    if (probe && waited >= probeIntervalMs) {
      this.probe = undefined;
      if (!probe.acked) this.suspectAfterProbe(probe.target, out);
    }
    if (!this.probe && this.now >= this.nextProbeAt) {
      this.nextProbeAt = this.now + probeIntervalMs;
      this.startProbe(out);
    }
  }

  private startProbe(out: Output): void {
    const target = this.nextTarget();
    if (!target) return;
    const seq = this.nextSeq();
    this.probe = {
      seq,
      target: target.name,
      startedAt: this.now,
      indirectSent: false,
      acked: false,
    };
    out.messages.push({ to: target.address, message: this.ping(seq, target.name) });
  }

  private ping(seq: number, target: string): PingMessage {
    return { t: 'ping', seq, from: this.config.name, target, u: this.piggyback(target) };
  }

  /** The next member of a shuffled round over every member not dead. */
  private nextTarget(): Member | undefined {
    for (let attempt = 0; attempt < 2; attempt++) {
      while (this.round.length > 0) {
        const member = this.table.get(this.round.pop() as string);
        if (member && member.state !== 'dead') return member;
      }
      this.round = shuffle(this.probeable().map((m) => m.name), this.config.random);
    }
    return undefined;
  }

  private sendIndirect(probe: Probe, out: Output): void {
    const target = this.table.get(probe.target);
    if (!target) return;
    const helpers = this.probeable().filter((m) => m.state === 'alive' && m !== target);
    const { random, indirectChecks } = this.config;
    const chosen = shuffle(helpers, random).slice(0, indirectChecks);
    for (const helper of chosen) {
      const message: PingReqMessage = {
        t: 'pingReq',
        seq: probe.seq,
        from: this.config.name,
        target: target.name,
        targetAddress: target.address,
        u: this.piggyback(helper.name),
      };
      out.messages.push({ to: helper.address, message });
    }
  }

  private suspectAfterProbe(name: string, out: Output): void {
    const member = this.table.get(name);
    if (!member || member.state === 'dead') return;
    this.applyUpdate(claim(member, 'suspect', this.config.name), out);
  }

  // --- suspicion and death -----------------------------------------------

  private expireSuspicions(out: Output): void {
    for (const member of this.table.values()) {
      if (member.state !== 'suspect' || member.suspectSince === undefined) continue;
      const confirmations = (member.suspecters?.length ?? 1) - 1;
      const { suspicionMinMs, suspicionMaxMs } = this.config;
      const expected = member.expected ?? 0;
      const timeout = suspicionTimeoutMs(
        suspicionMinMs,
        suspicionMaxMs,
        expected,
        confirmations,
      );
      if (this.now < member.suspectSince + timeout) continue;
      this.applyUpdate(claim(member, 'dead', this.config.name), out);
    }
  }

  private startSuspicion(member: Member, update: Update, out: Output): void {
    member.state = 'suspect';
    member.incarnation = update.i;
    member.suspectSince = this.now;
    member.suspecters = [update.f ?? ''];
    const wanted = this.config.suspicionConfirmations;
    member.expected = expectedConfirmations(this.liveCount(), wanted);
    this.enqueue(update);
    this.emit(out, member);
  }

  private confirmSuspicion(member: Member, update: Update): void {
    if (update.i > member.incarnation) member.incarnation = update.i;
    const who = update.f ?? '';
    if (member.suspecters?.includes(who)) return;
    member.suspecters = [...(member.suspecters ?? []), who];
    // Spreading the confirmation lets others shorten their timeouts too.
    this.enqueue(update);
  }

  // --- updates ---------------------------------------------------------

  private applyUpdate(update: Update, out: Output): void {
    if (update.n === this.config.name) {
      this.refuteIfNeeded(update);
      return;
    }
    const member = this.table.get(update.n);
    if (update.s === 'alive') this.applyAlive(member, update, out);
    else if (!member || update.i < member.incarnation) return;
    else if (update.s === 'suspect') this.applySuspect(member, update, out);
    else this.applyDead(member, update, out);
  }

  private applyAlive(member: Member | undefined, update: Update, out: Output): void {
    if (member && update.i <= member.incarnation) return;
    const wasAlive = member?.state === 'alive';
    const { n: name, a: address, i: incarnation } = update;
    const next: Member = { name, address, state: 'alive', incarnation };
    this.table.set(update.n, next);
    this.enqueue({ n: update.n, a: update.a, i: update.i, s: 'alive' });
    if (!wasAlive) this.emit(out, next);
  }

  private applySuspect(member: Member, update: Update, out: Output): void {
    if (member.state === 'dead') return;
    if (member.state === 'suspect') this.confirmSuspicion(member, update);
    else this.startSuspicion(member, update, out);
  }

  private applyDead(member: Member, update: Update, out: Output): void {
    if (member.state === 'dead') return;
    member.state = 'dead';
    member.incarnation = update.i;
    member.suspectSince = undefined;
    member.suspecters = undefined;
    this.enqueue(update);
    this.emit(out, member);
  }

  /**
   * Someone claims this node is suspect or dead, or knows a newer alive
   * incarnation of it (from before a restart): announce a higher one.
   */
  private refuteIfNeeded(update: Update): void {
    const mine = this.incarnation;
    const stale = update.s === 'alive' ? update.i > mine : update.i >= mine;
    if (!stale) return;
    this.incarnation = update.i + 1;
    this.enqueue(this.selfUpdate());
  }

  private selfUpdate(): Update {
    return claim(this.self(), 'alive');
  }

  private enqueue(update: Update): void {
    this.broadcasts.set(update.n, { update, transmits: 0 });
  }

  /**
   * Updates to carry on a message to `recipient`: those about the
   * recipient first (so a suspect hears of it and refutes at once), then
   * the least sent, within the byte budget. Each is sent a bounded number
   * of times.
   */
  private piggyback(recipient?: string): Update[] {
    const limit = retransmitLimit(this.config.retransmitMultiplier, this.liveCount());
    const about = (b: Broadcast) => Number(b.update.n === recipient);
    const queue = [...this.broadcasts.values()].sort(
      (a, b) => about(b) - about(a) || a.transmits - b.transmits,
    );
    const chosen: Update[] = this.suspicionOf(recipient);
    let bytes = 0;
    for (const entry of queue) {
      if (entry.update.n === recipient && chosen.length > 0) continue;
      const size = JSON.stringify(entry.update).length + 1;
      if (bytes + size > this.config.maxPiggybackBytes) continue;
      bytes += size;
      chosen.push(entry.update);
      entry.transmits += 1;
      if (entry.transmits >= limit) this.broadcasts.delete(entry.update.n);
    }
    return chosen;
  }

  /**
   * A message to a member we suspect always tells it so, outside the
   * retransmit budget: the suspect is the one member that must hear it.
   */
  private suspicionOf(recipient?: string): Update[] {
    const member = recipient === undefined ? undefined : this.table.get(recipient);
    if (member?.state !== 'suspect') return [];
    const f = member.suspecters?.[0] ?? this.config.name;
    return [claim(member, 'suspect', f)];
  }

  // --- push-pull ---------------------------------------------------------

  /** Every member's current state, live ones first, within the byte budget. */
  private fullState(): Update[] {
    const dead = (m: MemberInfo) => Number(m.state === 'dead');
    const all = this.members().sort((a, b) => dead(a) - dead(b));
    const updates: Update[] = [];
    let bytes = 0;
    for (const m of all) {
      const suspecter = this.table.get(m.name)?.suspecters?.[0];
      const update: Update = { n: m.name, a: m.address, i: m.incarnation, s: m.state };
      if (m.state !== 'alive') update.f = suspecter ?? this.config.name;
      const size = JSON.stringify(update).length + 1;
      if (bytes + size > this.config.maxSyncBytes) break;
      bytes += size;
      updates.push(update);
    }
    return updates;
  }

  private stateMessage(t: 'join' | 'sync'): GossipMessage {
    return { t, from: this.config.name, u: this.fullState() };
  }

  /**
   * Knowing nobody alive, ask the seeds again. Otherwise push-pull with one
   * live member, which repairs any update that piggybacking failed to
   * spread, and with one member believed dead, so that both sides of a
   * healed partition learn of each other.
   */
  private reconnect(out: Output): void {
    if (this.now < this.nextReconnectAt) return;
    const lonely = this.probeable().length === 0;
    const { probeIntervalMs, reconnectIntervalMs } = this.config;
    const rejoin = lonely && this.seeds.length > 0;
    const wait = rejoin ? probeIntervalMs * 2 : reconnectIntervalMs;
    this.nextReconnectAt = this.now + wait;
    if (rejoin) {
      const message = this.stateMessage('join');
      for (const to of this.seeds) out.messages.push({ to, message });
      return;
    }
    const all = [...this.table.values()];
    const live = all.filter((m) => m.state !== 'dead');
    const dead = all.filter((m) => m.state === 'dead');
    for (const group of [live, dead]) {
      if (group.length === 0) continue;
      const pick = group[Math.floor(this.config.random() * group.length)];
      out.messages.push({ to: pick.address, message: this.stateMessage('join') });
    }
  }

  // --- helpers -----------------------------------------------------------

  private probeable(): Member[] {
    return [...this.table.values()].filter((m) => m.state !== 'dead');
  }

  /** Members not dead, this node included. */
  private liveCount(): number {
    return this.probeable().length + 1;
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) % 0x7fffffff;
    return this.seq;
  }

  private emit(out: Output, member: Member): void {
    const { name, address, incarnation } = member;
    out.events.push({ type: member.state, name, address, incarnation });
  }
}

/** A claim about `member` at its current incarnation. */
function claim(member: MemberInfo, s: MemberState, f?: string): Update {
  const update: Update = { n: member.name, a: member.address, i: member.incarnation, s };
  if (f !== undefined) update.f = f;
  return update;
}

function emptyOutput(): Output {
  return { messages: [], events: [] };
}

/** Fisher–Yates on a copy. */
function shuffle<T>(items: T[], random: () => number): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [copy[i], copy[j]] = [copy[j], copy[i]];
  }
  return copy;
}

/** A 32-bit FNV-1a hash, to seed a node's generator from its name. */
function hashName(name: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    hash ^= name.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}
