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
import { EventRecorder } from './events';
import { isPodAvailable, isPodReady, msUntilAvailable } from './pod-status';
import { CRASH_BACKOFF_INITIAL_ANNOTATION, CRASH_BACKOFF_MAX_ANNOTATION } from './pod-events';
import {
  advanceProgress,
  msUntilDeadline,
  progressMessage,
  progressState,
  type ProgressMark,
  type ProgressState,
} from '../rollout/progress';
import {
  AUTO_ROLLBACK_ANNOTATION,
  COMPLETE_ANNOTATION,
  ROLLBACK_REASON_ANNOTATION,
  ROLLED_BACK_FROM_ANNOTATION,
  rollbackTarget,
  templateOf,
} from '../rollout/revisions';

type DeploymentActor = Actor<typeof deploymentMachine>;

/** Most pods one rollout step creates; the next step creates more. */
const MAX_PODS_PER_STEP = 100;

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
  /** Per Deployment, the best counts of its rollout and when they last grew. */
  private readonly progress = new Map<string, ProgressMark>();
  private readonly events: EventRecorder;
  private readonly schedulerEvents: EventRecorder;

  constructor(opts: ControllerOptions) {
    this.opts = opts;
    const recorder = (component: string) =>
      new EventRecorder({ log: opts.log, logger: opts.logger, component });
    this.events = recorder('deployment-controller');
    this.schedulerEvents = recorder('default-scheduler');
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
    for (const d of this.opts.store.list<Deployment>('Deployment'))
      this.ensureActor(d.metadata.name);
    void this.schedule();
  }

  /** Stops acting, keeping the actors' snapshots for whoever leads next. */
  stop(): void {
    if (!this.running) return;
    this.running = false;
    this.opts.store.off('change', this.onChange);
    for (const actor of this.actors.values()) actor.stop();
    this.actors.clear();
    this.progress.clear();
    void this.events.flush();
    void this.schedulerEvents.flush();
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
        this.opts.snapshots.save(
          id,
          'deployment',
          DEPLOYMENT_MACHINE_VERSION,
          actor.getPersistedSnapshot(),
        ),
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
    this.progress.delete(name);
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
    const now = Date.now();
    const views = pods.map((p) => podView(p, d.spec.minReadySeconds ?? 0, now));
    const plan = d.spec.paused
      ? { create: 0, terminate: [] }
      : planRollout(d.spec.replicas, strategyOf(d), hash, views);

    const stamp = new Date(now).toISOString();
    if (plan.terminate.length > 0) {
      const byName = new Map(pods.map((p) => [p.metadata.name, p]));
      const targets = plan.terminate.map((n) => ({ name: n, uid: byName.get(n)!.metadata.uid }));
      this.opts.logger.info({ deployment: name, pods: plan.terminate }, 'terminating pods');
      await log.propose({ op: 'terminatePods', pods: targets, now: stamp });
    }
    if (plan.create > 0) {
      // Large scale-ups go in steps, so that no single command is huge.
      const count = Math.min(plan.create, MAX_PODS_PER_STEP);
      const fresh = Array.from({ length: count }, () => newPod(d, current, stamp));
      this.opts.logger.info({ deployment: name, count }, 'creating pods');
      await log.propose({ op: 'createPods', pods: fresh });
    }
    const result = await this.reportStatus(d, replicaSets, current);
    if (result.rollBack) await this.rollBack(d, replicaSets, current, result.rollBack);
    return result;
  }

  /**
   * Returns the Deployment to the last revision that completed: an ordinary
   * update of its template, so the revision is renumbered as the newest,
   * exactly as `rollout undo` does.
   */
  private async rollBack(
    d: Deployment,
    replicaSets: ReplicaSet[],
    current: ReplicaSet,
    why: string,
  ): Promise<void> {
    const target = rollbackTarget(replicaSets, current);
    const name = d.metadata.name;
    if (!target) {
      this.opts.logger.warn({ deployment: name }, 'no completed revision to roll back to');
      return;
    }
    // Read again: the status just proposed changed the resourceVersion, and
    // a user's change since then must win over the rollback.
    const fresh = this.opts.store.get<Deployment>('Deployment', name);
    const hash = current.metadata.labels?.[TEMPLATE_HASH_LABEL];
    if (!fresh || templateHash(fresh.spec.template) !== hash) return;
    const annotations = {
      ...(fresh.metadata.annotations ?? {}),
      [ROLLED_BACK_FROM_ANNOTATION]: String(revisionOf(current)),
      [ROLLBACK_REASON_ANNOTATION]: why,
    };
    const object = {
      ...fresh,
      metadata: { ...fresh.metadata, annotations },
      spec: { ...fresh.spec, template: templateOf(target) },
    } as unknown as Deployment;
    const revision = revisionOf(target);
    const message =
      `Rolled back from revision ${revisionOf(current)} to revision ${revision} ` +
      `(ReplicaSet "${target.metadata.name}"): ${why}`;
    this.opts.logger.warn({ deployment: name, revision, reason: why }, 'rolling back');
    await this.opts.log.propose({ op: 'update', object, now: new Date().toISOString() });
    this.events.record({
      object: { kind: 'Deployment', name, uid: d.metadata.uid as string },
      type: 'Warning',
      reason: 'RolledBack',
      message,
    });
  }

  private async reportStatus(
    d: Deployment,
    replicaSets: ReplicaSet[],
    current: ReplicaSet,
  ): Promise<StatusResult> {
    const { store, log } = this.opts;
    const now = Date.now();
    const minReady = d.spec.minReadySeconds ?? 0;
    const all = replicaSets.flatMap((rs) => podsOwnedBy(store, rs.metadata.uid));
    const live = all.filter((p) => !p.metadata.deletionTimestamp);
    const updated = live.filter((p) => ownerUid(p) === current.metadata.uid);
    const ready = live.filter((p) => isPodReady(p.status));
    const available = live.filter((p) => isPodAvailable(p.status, minReady, now));
    const updatedAvailable = updated.filter((p) => isPodAvailable(p.status, minReady, now));
    const desired = d.spec.replicas;
    const complete =
      updated.length === desired && all.length === desired && updatedAvailable.length === desired;

    const hash = current.metadata.labels?.[TEMPLATE_HASH_LABEL] ?? current.metadata.name;
    const counts = { updated: updated.length, available: updatedAvailable.length };
    const mark = this.markProgress(d, hash, { ...counts, old: all.length - updated.length }, now);
    const deadline = d.spec.progressDeadlineSeconds ?? 600;
    const paused = Boolean(d.spec.paused);
    const progress = progressState({ complete, paused, mark, deadlineSeconds: deadline, now });
    const { unavailable } = rollingBounds(strategyOf(d), desired);
    const enough = available.length >= desired - unavailable;
    const status = {
      observedGeneration: d.metadata.generation,
      replicas: live.length,
      updatedReplicas: updated.length,
      readyReplicas: ready.length,
      availableReplicas: available.length,
      unavailableReplicas: Math.max(0, desired - available.length),
      conditions: deploymentConditions(d, progress, mark, enough, current),
    };
    const rsCounts = replicaSets.map((rs) => {
      const mine = live.filter((p) => ownerUid(p) === rs.metadata.uid);
      return {
        name: rs.metadata.name,
        replicas: mine.length,
        readyReplicas: mine.filter((p) => isPodReady(p.status)).length,
      };
    });
    const prune = prunable(replicaSets, current, d.spec.revisionHistoryLimit);
    const completed = complete && !current.metadata.annotations?.[COMPLETE_ANNOTATION];
    const countsChanged = rsCounts.some((c) => changedCount(replicaSets, c));
    if (!sameStatus(d.status, status) || countsChanged || prune.length || completed) {
      this.recordStatusEvents(d, replicaSets, rsCounts, progress);
      await log.propose({
        op: 'deploymentStatus',
        name: d.metadata.name,
        uid: d.metadata.uid as string,
        status: status as never,
        replicaSets: rsCounts,
        pruneReplicaSets: prune,
        ...(completed ? { completedReplicaSet: current.metadata.name } : {}),
      });
    }
    return {
      complete,
      revision: current.metadata.annotations?.[REVISION_ANNOTATION],
      recheckInMs: recheckIn(d, updated, mark, progress, now),
      // A revision that completed once is not rolled back when it fails later.
      rollBack: current.metadata.annotations?.[COMPLETE_ANNOTATION]
        ? undefined
        : rollBackReason(d, updated, progress),
    };
  }

  /** The progress mark of `d`, restored from its condition after a restart. */
  private markProgress(
    d: Deployment,
    hash: string,
    counts: { updated: number; available: number; old: number },
    now: number,
  ): ProgressMark {
    const name = d.metadata.name;
    let previous = this.progress.get(name);
    if (!previous) {
      const since = restoredProgressTime(d, hash);
      if (since !== undefined) previous = { hash, ...counts, at: since };
    }
    // A paused rollout is not late: its clock starts again on resume.
    const at = d.spec.paused ? now : undefined;
    const mark = advanceProgress(previous, hash, counts, now);
    if (at !== undefined) mark.at = at;
    this.progress.set(name, mark);
    return mark;
  }

  private recordStatusEvents(
    d: Deployment,
    replicaSets: ReplicaSet[],
    counts: { name: string; replicas: number }[],
    progress: ProgressState,
  ): void {
    const object = { kind: 'Deployment', name: d.metadata.name, uid: d.metadata.uid as string };
    for (const c of counts) {
      const before = replicaSets.find((rs) => rs.metadata.name === c.name)?.spec.replicas ?? 0;
      if (before === c.replicas) continue;
      const direction = c.replicas > before ? 'up' : 'down';
      const message = `Scaled ${direction} replica set ${c.name} from ${before} to ${c.replicas}`;
      this.events.record({ object, reason: 'ScalingReplicaSet', message });
    }
    const previous = (d.status?.conditions as Condition[] | undefined)?.find(
      (c) => c.type === 'Progressing',
    );
    if (progress.reason === 'ProgressDeadlineExceeded' && previous?.reason !== progress.reason) {
      const message = `Deployment "${d.metadata.name}" exceeded its progress deadline`;
      this.events.record({ object, type: 'Warning', reason: 'ProgressDeadlineExceeded', message });
    }
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
    for (const b of bindings) {
      this.schedulerEvents.record({
        object: { kind: 'Pod', name: b.name, uid: b.uid },
        reason: 'Scheduled',
        message: `Successfully assigned default/${b.name} to ${b.nodeName}`,
      });
    }
    for (const d of decisions) {
      if (!('unschedulable' in d)) continue;
      const pod = pending.find((p) => p.metadata.uid === d.uid)!;
      const status = unschedulableStatus(d.unschedulable);
      if (!sameContent(pod.status, status)) {
        this.schedulerEvents.record({
          object: { kind: 'Pod', name: d.name, uid: d.uid },
          type: 'Warning',
          reason: 'FailedScheduling',
          message: d.unschedulable,
        });
        await log.propose({ op: 'podStatus', name: d.name, uid: d.uid, status });
      }
    }
  }
}

/** What reportStatus adds for the controller: a reason to roll back. */
type StatusResult = ReconcileResult & { rollBack?: string };

function strategyOf(d: Deployment) {
  return { type: d.spec.strategy.type, ...(d.spec.strategy.rollingUpdate ?? {}) };
}

/** The planner counts a pod only once it is available (ready for minReadySeconds). */
function podView(p: Pod, minReadySeconds: number, now: number): PodView {
  return {
    name: p.metadata.name,
    uid: p.metadata.uid,
    hash: p.metadata.labels?.[TEMPLATE_HASH_LABEL] ?? '',
    ready: isPodAvailable(p.status, minReadySeconds, now),
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
      annotations: {
        ...inheritedAnnotations(d),
        ...(template.metadata?.annotations ?? {}),
        [DEPLOYMENT_ANNOTATION]: d.metadata.name,
      },
      ownerReferences: [
        {
          apiVersion: 'apps/v1',
          kind: 'ReplicaSet',
          name: rs.metadata.name,
          uid: rs.metadata.uid,
          controller: true,
        },
      ],
    },
    spec: JSON.parse(JSON.stringify(template.spec)),
    status: {
      phase: 'Pending',
      conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Pending' }],
    },
  };
}

/** Deployment annotations that its pods carry too (the kubelet reads them). */
function inheritedAnnotations(d: Deployment): Record<string, string> {
  const all = d.metadata.annotations ?? {};
  const keys = [CRASH_BACKOFF_INITIAL_ANNOTATION, CRASH_BACKOFF_MAX_ANNOTATION];
  return Object.fromEntries(keys.filter((k) => all[k] !== undefined).map((k) => [k, all[k]]));
}

/** When the controller must look again although nothing changes. */
function recheckIn(
  d: Deployment,
  updated: Pod[],
  mark: ProgressMark,
  progress: ProgressState,
  now: number,
): number | undefined {
  if (progress.reason === 'NewReplicaSetAvailable' || progress.reason === 'DeploymentPaused') {
    return undefined;
  }
  const minReady = d.spec.minReadySeconds ?? 0;
  const waits = updated
    .map((p) => msUntilAvailable(p.status, minReady, now))
    .filter((ms): ms is number => ms !== undefined);
  if (progress.reason === 'ReplicaSetUpdated') {
    waits.push(msUntilDeadline(mark, d.spec.progressDeadlineSeconds ?? 600, now) + 1);
  }
  return waits.length > 0 ? Math.min(...waits) : undefined;
}

/** Why an opted-in Deployment must roll back now, if it must. */
function rollBackReason(d: Deployment, updated: Pod[], progress: ProgressState) {
  if (d.metadata.annotations?.[AUTO_ROLLBACK_ANNOTATION] !== 'true' || d.spec.paused) {
    return undefined;
  }
  if (progress.reason === 'ProgressDeadlineExceeded') {
    const seconds = d.spec.progressDeadlineSeconds ?? 600;
    return `the rollout exceeded its progress deadline of ${seconds}s`;
  }
  const looping = updated.find((p) =>
    p.status?.containerStatuses?.some((c) => c.state?.waiting?.reason === 'CrashLoopBackOff'),
  );
  if (!looping) return undefined;
  return `pod "${looping.metadata.name}" of the new revision is crash-looping`;
}

/** When the stored Progressing condition last saw progress of revision `hash`. */
function restoredProgressTime(d: Deployment, hash: string): number | undefined {
  const cond = (d.status?.conditions as Condition[] | undefined)?.find(
    (c) => c.type === 'Progressing',
  );
  if (!cond?.message?.includes(`-${hash}"`) || cond.reason === 'NewReplicaSetAvailable') {
    return undefined;
  }
  const at = Date.parse(cond.lastUpdateTime ?? '');
  return Number.isFinite(at) ? at : undefined;
}

function deploymentConditions(
  d: Deployment,
  progress: ProgressState,
  mark: ProgressMark,
  available: boolean,
  current: ReplicaSet,
): Condition[] {
  const previous = (d.status?.conditions ?? []) as Condition[];
  const progressing: Condition = {
    type: 'Progressing',
    ...progress,
    message: progressMessage(progress, current.metadata.name, d.metadata.name),
  };
  const availability: Condition = available
    ? {
        type: 'Available',
        status: 'True',
        reason: 'MinimumReplicasAvailable',
        message: 'Deployment has minimum availability.',
      }
    : {
        type: 'Available',
        status: 'False',
        reason: 'MinimumReplicasUnavailable',
        message: 'Deployment does not have minimum availability.',
      };
  const progressed = keepTimes(previous, progressing);
  // lastUpdateTime is the last progress, which the deadline counts from.
  if (progress.reason === 'ReplicaSetUpdated') {
    progressed.lastUpdateTime = new Date(mark.at).toISOString();
  }
  return [keepTimes(previous, availability), progressed];
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

function changedCount(
  replicaSets: ReplicaSet[],
  c: { name: string; replicas: number; readyReplicas: number },
) {
  const rs = replicaSets.find((r) => r.metadata.name === c.name);
  return !rs || rs.spec.replicas !== c.replicas || rs.status.readyReplicas !== c.readyReplicas;
}

/** Old ReplicaSets beyond the history limit, oldest first. */
function prunable(
  replicaSets: ReplicaSet[],
  current: ReplicaSet,
  limit: number | undefined,
): string[] {
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
