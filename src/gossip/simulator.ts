/**
 * An in-memory network of SWIM nodes on a manual clock, for deterministic
 * tests: messages take a fixed latency, may be lost at a seeded rate, and
 * never cross a partition or reach a crashed node.
 */
import { createPrng } from '../raft/prng';
import { SwimNode, type SwimConfig } from './swim';
import type { MembershipEvent, Outgoing, Output } from './types';

/** Options of the simulated network. */
export interface SimOptions {
  seed?: number;
  /** Probability that any one message is lost. */
  loss?: number;
  latencyMs?: number;
  /** How often every node's tick runs. */
  tickMs?: number;
  /** Protocol settings for every node. */
  swim?: Partial<SwimConfig>;
}

/** An event as one observer saw it, with the simulated time. */
export interface ObservedEvent extends MembershipEvent {
  observer: string;
  at: number;
}

interface InFlight {
  from: string;
  to: string;
  deliverAt: number;
  out: Outgoing;
}

/** A simulated cluster of SWIM nodes addressed "sim:NAME". */
export class SimNetwork {
  now = 0;
  loss: number;
  readonly events: ObservedEvent[] = [];
  readonly nodes = new Map<string, SwimNode>();
  private readonly crashed = new Set<string>();
  private readonly groups = new Map<string, number>();
  private readonly random: () => number;
  private readonly latencyMs: number;
  private readonly tickMs: number;
  private readonly swim: Partial<SwimConfig>;
  private inFlight: InFlight[] = [];
  private serial = 0;

  constructor(opts: SimOptions = {}) {
    const seed = opts.seed ?? 1;
    this.random = createPrng(seed);
    this.loss = opts.loss ?? 0;
    this.latencyMs = opts.latencyMs ?? 5;
    this.tickMs = opts.tickMs ?? 10;
    this.swim = { ...opts.swim };
  }

  /** Starts node `name`, joining through `seeds` (node names). */
  add(name: string, seeds: string[] = [], incarnation = 0): SwimNode {
    const random = createPrng(Math.floor(this.random() * 0x7fffffff) + ++this.serial);
    const address = addressOf(name);
    const node = new SwimNode({ ...this.swim, name, address, random, incarnation });
    this.nodes.set(name, node);
    this.crashed.delete(name);
    this.dispatch(name, node.join(seeds.map(addressOf)));
    return node;
  }

  /** Stops `name` without a word: it neither sends nor receives. */
  crash(name: string): void {
    this.crashed.add(name);
  }

  /** Puts `names` in their own group: no message crosses groups. */
  partition(names: string[]): void {
    const group = ++this.serial;
    for (const name of names) this.groups.set(name, group);
  }

  /** Removes every partition. */
  heal(): void {
    this.groups.clear();
  }

  /** Runs the cluster for `ms` of simulated time. */
  run(ms: number): void {
    const end = this.now + ms;
    while (this.now < end) {
      this.now += this.tickMs;
      this.deliverDue();
      for (const [name, node] of this.nodes) {
        if (!this.crashed.has(name)) this.dispatch(name, node.tick(this.now));
      }
    }
  }

  /** What `observer` believes about `member`. */
  stateOf(observer: string, member: string): string | undefined {
    return this.nodes.get(observer)?.members().find((m) => m.name === member)?.state;
  }

  /** Names of running nodes. */
  running(): string[] {
    return [...this.nodes.keys()].filter((n) => !this.crashed.has(n));
  }

  private deliverDue(): void {
    const due = this.inFlight.filter((m) => m.deliverAt <= this.now);
    this.inFlight = this.inFlight.filter((m) => m.deliverAt > this.now);
    for (const m of due) {
      const node = this.nodes.get(m.to);
      if (!node || this.crashed.has(m.to)) continue;
      const message = structuredClone(m.out.message);
      const output = node.receive(addressOf(m.from), message, this.now);
      this.dispatch(m.to, output);
    }
  }

  private dispatch(from: string, output: Output): void {
    for (const e of output.events) this.events.push({ ...e, observer: from, at: this.now });
    for (const out of output.messages) {
      const to = nameOf(out.to);
      if (this.random() < this.loss) continue;
      if ((this.groups.get(from) ?? 0) !== (this.groups.get(to) ?? 0)) continue;
      this.inFlight.push({ from, to, deliverAt: this.now + this.latencyMs, out });
    }
  }
}

function addressOf(name: string): string {
  return `sim:${name}`;
}

function nameOf(address: string): string {
  return address.slice('sim:'.length);
}
