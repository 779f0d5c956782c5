/**
 * The leader's reaction to gossip about other nodes. A node found dead is
 * marked NotReady at once, so every balancer drops its pods' endpoints and
 * the scheduler places nothing new there; if it stays dead for `graceMs`,
 * its pods are removed from the store, and the deployment controllers
 * create replacements that the scheduler places on Ready nodes. A node
 * that answers again is marked Ready; if it restarted, its kubelet removes
 * the containers of pods that were moved away.
 *
 * Runs only while this server leads: the shell starts it on gaining
 * leadership, feeds it the current membership, and stops it on losing it.
 */
import type pino from 'pino';
import type { Node, Pod } from '../model/types';
import type { CommandLog } from '../store/command-log';
import type { Command } from '../store/commands';
import type { Store } from '../store/store';

/** Reason of the Ready=False condition this controller sets, and only undoes. */
export const NODE_UNREACHABLE_REASON = 'NodeUnreachable';

/** Default wait between a node's death and the removal of its pods. */
export const DEFAULT_EVICTION_GRACE_MS = 5000;

/** The timer functions the controller uses; tests pass a manual clock. */
export interface LifecycleTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Options of {@link NodeLifecycle}. */
export interface NodeLifecycleOptions {
  store: Store;
  log: CommandLog;
  logger: pino.Logger;
  /** How long a node stays dead before its pods are removed. */
  graceMs?: number;
  /** Wait before retrying a proposal that failed. */
  retryMs?: number;
  timers?: LifecycleTimers;
  /** This server's wall clock, only for the condition's transition time. */
  now?: () => string;
}

const REAL_TIMERS: LifecycleTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** Marks dead nodes NotReady and moves their pods away after a grace period. */
export class NodeLifecycle {
  private readonly opts: NodeLifecycleOptions;
  private readonly timers: LifecycleTimers;
  /** Nodes currently dead, with their pending eviction or retry timer. */
  private readonly dead = new Map<string, { timer?: unknown }>();
  private running = false;

  constructor(opts: NodeLifecycleOptions) {
    this.opts = opts;
    this.timers = opts.timers ?? REAL_TIMERS;
  }

  /** Starts acting on membership events. */
  start(): void {
    this.running = true;
  }

  /** Forgets every dead node and cancels pending evictions. */
  stop(): void {
    this.running = false;
    for (const entry of this.dead.values()) this.cancel(entry);
    this.dead.clear();
  }

  /** Names of the nodes this controller currently counts as dead. */
  deadNodes(): string[] {
    return [...this.dead.keys()];
  }

  /**
   * Catches up with the whole membership at once, for a server that has
   * just become leader: its predecessor may have missed or half-handled
   * some deaths and returns. `self` is skipped.
   */
  syncMembers(members: { name: string; state: string }[], self: string): void {
    for (const m of members) {
      if (m.name === self) continue;
      if (m.state === 'dead') this.memberDead(m.name);
      else if (m.state === 'alive') this.memberAlive(m.name);
    }
  }

  /** Gossip declared `name` dead. */
  memberDead(name: string): void {
    if (!this.running || this.dead.has(name)) return;
    const entry: { timer?: unknown } = {};
    this.dead.set(name, entry);
    this.opts.logger.warn({ nodeId: name }, 'node unreachable; marking it not ready');
    void this.markNotReady(name);
    entry.timer = this.timers.setTimeout(() => void this.evict(name), this.graceMs());
  }

  /** Gossip found `name` alive (again). */
  memberAlive(name: string): void {
    const entry = this.dead.get(name);
    if (entry) this.cancel(entry);
    this.dead.delete(name);
    if (this.running) void this.markReady(name);
  }

  private async markNotReady(name: string): Promise<void> {
    if (!this.running || !this.dead.has(name)) return;
    const node = this.opts.store.get<Node>('Node', name);
    if (!node || readyCondition(node)?.reason === NODE_UNREACHABLE_REASON) return;
    const done = await this.propose({
      op: 'nodeCondition',
      name,
      condition: {
        type: 'Ready',
        status: 'False',
        reason: NODE_UNREACHABLE_REASON,
        message: 'node stopped answering gossip probes',
      },
      now: this.now(),
    });
    if (!done) this.timers.setTimeout(() => void this.markNotReady(name), this.retryMs());
  }

  /** Undoes only this controller's own mark: a node may report itself not ready. */
  private async markReady(name: string): Promise<void> {
    const node = this.opts.store.get<Node>('Node', name);
    if (!node || readyCondition(node)?.reason !== NODE_UNREACHABLE_REASON) return;
    this.opts.logger.info({ nodeId: name }, 'node reachable again; marking it ready');
    await this.propose({
      op: 'nodeCondition',
      name,
      condition: {
        type: 'Ready',
        status: 'True',
        reason: 'FlotillaReady',
        message: 'node answers gossip probes again',
      },
      now: this.now(),
    });
  }

  /** Removes every pod bound to a node that stayed dead through the grace period. */
  private async evict(name: string): Promise<void> {
    const entry = this.dead.get(name);
    if (!this.running || !entry) return;
    entry.timer = undefined;
    const pods = this.opts.store.list<Pod>('Pod').filter((p) => p.spec.nodeName === name);
    if (pods.length > 0) {
      const fields = { nodeId: name, pods: pods.length };
      this.opts.logger.warn(fields, 'removing pods of dead node');
    }
    let failed = false;
    for (const pod of pods) {
      const { name: podName, uid } = pod.metadata;
      failed = !(await this.propose({ op: 'removePod', name: podName, uid })) || failed;
    }
    // A failed removal (lost leadership, a full disk) is tried again while
    // the node stays dead; removing a pod twice is harmless.
    if (failed && this.dead.get(name) === entry && this.running) {
      entry.timer = this.timers.setTimeout(() => void this.evict(name), this.retryMs());
    }
  }

  /** Proposes `command`; false (logged) when it could not be committed. */
  private async propose(command: Command): Promise<boolean> {
    if (!this.opts.log.isLeader()) return false;
    try {
      await this.opts.log.propose(command);
      return true;
    } catch (err) {
      this.opts.logger.warn({ err, op: command.op }, 'node lifecycle proposal failed');
      return false;
    }
  }

  private cancel(entry: { timer?: unknown }): void {
    if (entry.timer !== undefined) this.timers.clearTimeout(entry.timer);
    entry.timer = undefined;
  }

  private graceMs(): number {
    return this.opts.graceMs ?? DEFAULT_EVICTION_GRACE_MS;
  }

  private retryMs(): number {
    return this.opts.retryMs ?? 1000;
  }

  private now(): string {
    return this.opts.now ? this.opts.now() : new Date().toISOString();
  }
}

function readyCondition(node: Node) {
  return node.status.conditions.find((c) => c.type === 'Ready');
}
