/**
 * Runs, on the leader, one deployment actor per Deployment and the
 * scheduler that places new pods. Both act only by proposing commands to the
 * log, so a server that stops leading simply stops proposing.
 */
import { createActor, fromPromise, type Actor } from 'xstate';
import type pino from 'pino';
import {
  DEPLOYMENT_MACHINE_VERSION,
  deploymentMachine,
  type ReconcileResult,
} from '../actors/deployment';
import type { SnapshotStore } from '../actors/snapshots';
import type { Deployment } from '../manifest/types';
import { sameContent } from '../model/canonical';
import { DEPLOYMENT_ANNOTATION, newUid, randomSuffix } from '../model/names';
import type { Condition, Node, Pod, ReplicaSet } from '../model/types';
import { planRollout, rollingBounds, type PodView } from '../rollout/plan';
import { placePods, type NodeView, type PodRequest } from '../scheduler/placement';
import { parseCpu, parseMemory } from '../runtime/pod-effects';
import {
  REVISION_ANNOTATION,
  TEMPLATE_HASH_LABEL,
  ownedReplicaSets,
  podsOwnedBy,
  revisionOf,
  templateHash,
} from '../store/apply';
import type { CommandLog } from '../store/command-log';
import type { Change, Store } from '../store/store';
import { isPodReady } from './pod-status';

type DeploymentActor = Actor<typeof deploymentMachine>;

/** What the controllers need from the agent. */
export interface ControllerOptions {
  store: Store;
  log: CommandLog;
  snapshots: SnapshotStore;
  logger: pino.Logger;
}

/** Deployment actors and the scheduler, active while this server leads. */
export class DeploymentControllers {
  private readonly opts: ControllerOptions;
  private readonly actors = new Map<string, DeploymentActor>();
  private readonly machine;
  private scheduling = false;
  private scheduleAgain = false;
  private running = false;

  constructor(opts: ControllerOptions) {
    this.opts = opts;
    this.machine = deploymentMachine.provide({
      actors: {
        reconcile: fromPromise<ReconcileResult, { name: string }>(({ input }) =>
          this.reconcile(input.name),
        ),
      },
    });
  }

  /** Starts acting: one actor per Deployment, and a first scheduling pass. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.opts.store.on('change', this.onChange);
    for (const d of this.opts.store.list<Deployment>('Deployment')) this.ensureActor(d.metadata.name);
    void this.schedule();
  }

  /** Stops acting, keeping the actors' snapshots for whoever leads next. */
  stop(): void {
    if (!this.running) return;
    this.running = false;
    this.opts.store.off('change', this.onChange);
    for (const actor of this.actors.values()) actor.stop();
    this.actors.clear();
  }

  private readonly onChange = (changes: Change[]): void => {
    const touched = new Set<string>();
    let unplaced = false;
    for (const c of changes) {
      if (c.kind === 'Deployment') {
        if (c.type === 'DELETED') this.removeActor(c.name);
        else touched.add(c.name);
      } else if (c.kind === 'Pod') {
        const owner = (c.object.metadata.annotations as Record<string, string> | undefined)?.[
          DEPLOYMENT_ANNOTATION
        ];
        if (owner) touched.add(owner);
        if (!(c.object as unknown as Pod).spec.nodeName && c.type !== 'DELETED') unplaced = true;
      } else if (c.kind === 'Node') {
        unplaced = true;
      }
    }
    for (const name of touched) {
      if (!this.opts.store.get('Deployment', name)) continue;
      const actor = this.ensureActor(name);
      actor.send({ type: 'CHANGED' });
    }
    if (unplaced) void this.schedule();
  };

  private ensureActor(name: string): DeploymentActor {
    const existing = this.actors.get(name);
    if (existing) return existing;
    const id = `deployment/${name}`;
    const snapshot = this.opts.snapshots.load(id, 'deployment', DEPLOYMENT_MACHINE_VERSION);
    const actor = createActor(this.machine, {
      input: { name },
      ...(snapshot ? { snapshot: snapshot as never } : {}),
    });
    actor.subscribe({
      next: () =>
        this.opts.snapshots.save(id, 'deployment', DEPLOYMENT_MACHINE_VERSION, actor.getPersistedSnapshot()),
      error: (err) => this.opts.logger.error({ err, deployment: name }, 'deployment actor failed'),
    });
    this.actors.set(name, actor);
    actor.start();
    // A restored actor resting in progressing/complete must look again:
    // pods may have changed while nobody led.
    if (snapshot) actor.send({ type: 'CHANGED' });
    return actor;
  }

  private removeActor(name: string): void {
    this.actors.get(name)?.stop();
    this.actors.delete(name);
    this.opts.snapshots.remove(`deployment/${name}`);
  }

  /** One rollout step for `name`, then its status. */
  async reconcile(name: string): Promise<ReconcileResult> {
    const { store, log } = this.opts;
    const d = store.get<Deployment>('Deployment', name);
    if (!d || !this.running) return { complete: true };
    const hash = templateHash(d.spec.template);
    const replicaSets = ownedReplicaSets(store, d.metadata.uid as string);
    const current = replicaSets.find((rs) => rs.metadata.labels?.[TEMPLATE_HASH_LABEL] === hash);
    if (!current) return { complete: false };

    const pods = replicaSets.flatMap((rs) => podsOwnedBy(store, rs.metadata.uid));
    const views = pods.map(podView);
    const strategy = { type: d.spec.strategy.type, ...(d.spec.strategy.rollingUpdate ?? {}) };
    const plan = d.spec.paused
      ? { create: 0, terminate: [] }
      : planRollout(d.spec.replicas, strategy, hash, views);

    const now = new Date().toISOString();
    if (plan.terminate.length > 0) {
      const byName = new Map(pods.map((p) => [p.metadata.name, p]));
      const targets = plan.terminate.map((n) => ({ name: n, uid: byName.get(n)!.metadata.uid }));
      this.opts.logger.info({ deployment: name, pods: plan.terminate }, 'terminating pods');
      await log.propose({ op: 'terminatePods', pods: targets, now });
    }
    if (plan.create > 0) {
      const fresh = Array.from({ length: plan.create }, () => newPod(d, current, now));
      this.opts.logger.info({ deployment: name, count: plan.create }, 'creating pods');
      await log.propose({ op: 'createPods', pods: fresh });
    }
    return this.reportStatus(d, replicaSets, current);
  }

  private async reportStatus(
    d: Deployment,
    replicaSets: ReplicaSet[],
    current: ReplicaSet,
  ): Promise<ReconcileResult> {
    const { store, log } = this.opts;
    const all = replicaSets.flatMap((rs) => podsOwnedBy(store, rs.metadata.uid));
    const live = all.filter((p) => !p.metadata.deletionTimestamp);
    const updated = live.filter((p) => ownerUid(p) === current.metadata.uid);
    const ready = live.filter((p) => isPodReady(p.status));
    const desired = d.spec.replicas;
    const complete =
      updated.length === desired &&
      all.length === desired &&
      updated.every((p) => isPodReady(p.status));
    const { unavailable } = rollingBounds(
      { type: d.spec.strategy.type, ...(d.spec.strategy.rollingUpdate ?? {}) },
      desired,
    );
    const status = {
      observedGeneration: d.metadata.generation,
      replicas: live.length,
      updatedReplicas: updated.length,
      readyReplicas: ready.length,
      availableReplicas: ready.length,
      unavailableReplicas: Math.max(0, desired - ready.length),
      conditions: deploymentConditions(d, complete, ready.length >= desired - unavailable, current),
    };
    const counts = replicaSets.map((rs) => {
      const mine = live.filter((p) => ownerUid(p) === rs.metadata.uid);
      return {
        name: rs.metadata.name,
        replicas: mine.length,
        readyReplicas: mine.filter((p) => isPodReady(p.status)).length,
      };
    });
    const prune = prunable(replicaSets, current, d.spec.revisionHistoryLimit);
    if (!sameStatus(d.status, status) || counts.some((c) => changedCount(replicaSets, c)) || prune.length) {
      await log.propose({
        op: 'deploymentStatus',
        name: d.metadata.name,
        uid: d.metadata.uid as string,
        status: status as never,
        replicaSets: counts,
        pruneReplicaSets: prune,
      });
    }
    return { complete, revision: current.metadata.annotations?.[REVISION_ANNOTATION] };
  }

  /** Places every pod that has no node yet. One pass at a time. */
  async schedule(): Promise<void> {
    if (!this.running) return;
    if (this.scheduling) {
      this.scheduleAgain = true;
      return;
    }
    this.scheduling = true;
    try {
      do {
        this.scheduleAgain = false;
        await this.schedulePass();
      } while (this.scheduleAgain && this.running);
    } catch (err) {
      this.opts.logger.warn({ err }, 'scheduling pass failed');
    } finally {
      this.scheduling = false;
    }
  }

  private async schedulePass(): Promise<void> {
    const { store, log } = this.opts;
    const pods = store.list<Pod>('Pod');
    const pending = pods.filter((p) => !p.spec.nodeName && !p.metadata.deletionTimestamp);
    if (pending.length === 0) return;
    const nodes = store.list<Node>('Node').map(nodeView);
    const placed = pods.filter((p) => p.spec.nodeName).map(podRequest);
    const decisions = placePods(nodes, placed, pending.map(podRequest));
    const bindings = decisions.flatMap((d) => ('nodeName' in d ? [d] : []));
    if (bindings.length > 0) await log.propose({ op: 'bindPods', bindings });
    for (const d of decisions) {
      if (!('unschedulable' in d)) continue;
      const pod = pending.find((p) => p.metadata.uid === d.uid)!;
      const status = unschedulableStatus(d.unschedulable);
      if (!sameContent(pod.status, status)) {
        await log.propose({ op: 'podStatus', name: d.name, uid: d.uid, status });
      }
    }
  }
}

function podView(p: Pod): PodView {
  return {
    name: p.metadata.name,
    uid: p.metadata.uid,
    hash: p.metadata.labels?.[TEMPLATE_HASH_LABEL] ?? '',
    ready: isPodReady(p.status),
    terminating: Boolean(p.metadata.deletionTimestamp),
    createdIndex: Date.parse(p.metadata.creationTimestamp) || 0,
  };
}

function ownerUid(p: Pod): string | undefined {
  return p.metadata.ownerReferences?.[0]?.uid;
}

function newPod(d: Deployment, rs: ReplicaSet, now: string): Pod {
  const template = rs.spec.template;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `${rs.metadata.name}-${randomSuffix()}`,
      namespace: 'default',
      uid: newUid(),
      resourceVersion: '',
      creationTimestamp: now,
      labels: { ...(template.metadata?.labels ?? {}) },
      annotations: { ...(template.metadata?.annotations ?? {}), [DEPLOYMENT_ANNOTATION]: d.metadata.name },
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: rs.metadata.name, uid: rs.metadata.uid, controller: true },
      ],
    },
    spec: JSON.parse(JSON.stringify(template.spec)),
    status: {
      phase: 'Pending',
      conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Pending' }],
    },
  };
}

function deploymentConditions(
  d: Deployment,
  complete: boolean,
  available: boolean,
  current: ReplicaSet,
): Condition[] {
  const previous = (d.status?.conditions ?? []) as Condition[];
  const progressing: Condition = complete
    ? {
        type: 'Progressing',
        status: 'True',
        reason: 'NewReplicaSetAvailable',
        message: `ReplicaSet "${current.metadata.name}" has successfully progressed.`,
      }
    : {
        type: 'Progressing',
        status: 'True',
        reason: 'ReplicaSetUpdated',
        message: `ReplicaSet "${current.metadata.name}" is progressing.`,
      };
  const availability: Condition = available
    ? { type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable', message: 'Deployment has minimum availability.' }
    : { type: 'Available', status: 'False', reason: 'MinimumReplicasUnavailable', message: 'Deployment does not have minimum availability.' };
  return [keepTimes(previous, availability), keepTimes(previous, progressing)];
}

/** Keeps a condition's transition time while its status and reason stay the same. */
function keepTimes(previous: Condition[], next: Condition): Condition {
  const old = previous.find((c) => c.type === next.type);
  const same = old && old.status === next.status && old.reason === next.reason;
  const now = new Date().toISOString();
  return {
    ...next,
    lastTransitionTime: same && old.lastTransitionTime ? old.lastTransitionTime : now,
    lastUpdateTime: same && old.lastUpdateTime ? old.lastUpdateTime : now,
  };
}

function sameStatus(a: unknown, b: unknown): boolean {
  return sameContent(a, b);
}

function changedCount(replicaSets: ReplicaSet[], c: { name: string; replicas: number; readyReplicas: number }) {
  const rs = replicaSets.find((r) => r.metadata.name === c.name);
  return !rs || rs.spec.replicas !== c.replicas || rs.status.readyReplicas !== c.readyReplicas;
}

/** Old ReplicaSets beyond the history limit, oldest first. */
function prunable(replicaSets: ReplicaSet[], current: ReplicaSet, limit: number | undefined): string[] {
  const old = replicaSets
    .filter((rs) => rs.metadata.uid !== current.metadata.uid && rs.spec.replicas === 0)
    .sort((a, b) => revisionOf(a) - revisionOf(b));
  const excess = old.length - (limit ?? 10);
  return excess > 0 ? old.slice(0, excess).map((rs) => rs.metadata.name) : [];
}

function nodeView(n: Node): NodeView {
  const ready = n.status.conditions.some((c) => c.type === 'Ready' && c.status === 'True');
  return {
    name: n.metadata.name,
    labels: n.metadata.labels ?? {},
    ready,
    unschedulable: Boolean(n.spec.unschedulable),
    cpuMilli: (parseCpu(n.status.allocatable.cpu) ?? 0) / 1e6,
    memoryBytes: parseMemory(n.status.allocatable.memory) ?? 0,
  };
}

function podRequest(p: Pod): PodRequest {
  const requests = p.spec.containers.map((c) => c.resources?.requests ?? {});
  return {
    name: p.metadata.name,
    uid: p.metadata.uid,
    group: p.metadata.annotations?.[DEPLOYMENT_ANNOTATION] ?? p.metadata.name,
    nodeName: p.spec.nodeName,
    cpuMilli: requests.reduce((s, r) => s + (parseCpu(r.cpu) ?? 0) / 1e6, 0),
    memoryBytes: requests.reduce((s, r) => s + (parseMemory(r.memory) ?? 0), 0),
    nodeSelector: p.spec.nodeSelector,
  };
}

function unschedulableStatus(message: string): Pod['status'] {
  return {
    phase: 'Pending',
    reason: 'Unschedulable',
    message,
    conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message }],
  };
}
