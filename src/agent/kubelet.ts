/**
 * Runs the pods placed on this node: one pod actor per pod, restored from its
 * snapshot after a restart, fed with the engine's container events, and
 * reporting its status back through the command log. Also removes containers
 * of this node that no pod owns any more (a pod moved away, a deleted pod
 * whose container outlived an agent crash). Containers without Flotilla's
 * labels, or of another cluster or node, are never touched.
 */
import { createActor, type Actor } from 'xstate';
import type pino from 'pino';
import { POD_MACHINE_VERSION, type PodContext, type PodInput } from '../actors/pod';
import type { SnapshotStore } from '../actors/snapshots';
import type { Pod } from '../model/types';
import type { ContainerRuntime, EventWatch, RuntimeEvent } from '../runtime/container-runtime';
import { LABEL, nodeSelector } from '../runtime/labels';
import { providePodEffects, type PodEffectsOptions } from '../runtime/pod-effects';
import type { CommandLog } from '../store/command-log';
import type { Change, Store } from '../store/store';
import { sameContent } from '../model/canonical';
import { podStatusOf } from './pod-status';
import { DEPLOYMENT_ANNOTATION } from '../model/names';
import { DEFAULT_BACKOFF, type BackoffSettings } from '../actors/pod';
import { DockerRuntime } from '../runtime/docker-runtime';
import { dockerExec } from '../runtime/docker-exec';
import type { ExecInContainer } from '../runtime/probes';
import { EventRecorder } from './events';
import { podEventsBetween, podBackoff } from './pod-events';

type PodMachine = ReturnType<typeof providePodEffects>;
type PodActor = Actor<PodMachine>;

/** What the kubelet needs from the agent. */
export interface KubeletOptions {
  store: Store;
  log: CommandLog;
  snapshots: SnapshotStore;
  runtime: ContainerRuntime;
  logger: pino.Logger;
  clusterId: string;
  nodeName: string;
  nodeAddress: string;
  extraLabels?: Record<string, string>;
  backoff?: BackoffSettings;
  drain: PodEffectsOptions['drain'];
  /** Environment added to every container, such as Service variables. */
  environmentFor?: PodEffectsOptions['environmentFor'];
  /** Runs exec probes; the engine's exec when the runtime is Docker. */
  exec?: ExecInContainer;
}

interface Running {
  actor: PodActor;
  uid: string;
  reported?: unknown;
  reporting: boolean;
  finished: boolean;
  /** What the last snapshot showed, to turn transitions into events. */
  seen?: { state: string; context: PodContext };
}

/** The node agent that makes this node's containers match its pods. */
export class Kubelet {
  private readonly opts: KubeletOptions;
  private readonly machine: PodMachine;
  private readonly pods = new Map<string, Running>();
  private watch?: EventWatch;
  private stopped = false;
  private readonly events: EventRecorder;

  constructor(opts: KubeletOptions) {
    this.opts = opts;
    const exec = opts.exec ?? (opts.runtime instanceof DockerRuntime ? dockerExec() : undefined);
    this.machine = providePodEffects({
      runtime: opts.runtime,
      clusterId: opts.clusterId,
      nodeName: opts.nodeName,
      extraLabels: opts.extraLabels,
      drain: opts.drain,
      environmentFor: opts.environmentFor,
      exec,
    });
    this.events = new EventRecorder({
      log: opts.log,
      logger: opts.logger,
      component: 'kubelet',
      host: opts.nodeName,
    });
  }

  /** Restores pod actors, starts following the engine, and sweeps orphans. */
  async start(): Promise<void> {
    const { store, runtime } = this.opts;
    this.watch = runtime.watchEvents(nodeSelector(this.opts.clusterId, this.opts.nodeName), (e) =>
      this.onRuntimeEvent(e),
    );
    // Checks made before the stream is live could miss a container's death;
    // but an engine that is down must not hold the agent back for long.
    await Promise.race([this.watch.ready?.catch(() => undefined), delay(2000)]);
    store.on('change', this.onChange);
    for (const pod of store.list<Pod>('Pod')) this.reconcilePod(pod);
    await this.sweepOrphans();
  }

  /** Stops every actor without touching containers: they keep running. */
  stop(): void {
    this.stopped = true;
    this.events.discard();
    this.watch?.close();
    this.opts.store.off('change', this.onChange);
    for (const entry of this.pods.values()) entry.actor.stop();
    this.pods.clear();
  }

  private readonly onChange = (changes: Change[]): void => {
    for (const change of changes) {
      if (change.kind !== 'Pod') continue;
      const pod = change.object as unknown as Pod;
      if (change.type === 'DELETED') this.forgetPod(pod.metadata.name, pod.metadata.uid);
      else this.reconcilePod(pod);
    }
  };

  private reconcilePod(pod: Pod): void {
    if (pod.spec.nodeName !== this.opts.nodeName) {
      // A pod we ran was moved or recreated elsewhere: let its actor stop it.
      const entry = this.pods.get(pod.metadata.name);
      if (entry) entry.actor.send({ type: 'TERMINATE' });
      return;
    }
    let entry = this.pods.get(pod.metadata.name);
    if (entry && entry.uid !== pod.metadata.uid) {
      entry.actor.send({ type: 'TERMINATE' });
      entry = undefined;
    }
    if (!entry) entry = this.startActor(pod);
    if (pod.metadata.deletionTimestamp) entry.actor.send({ type: 'TERMINATE' });
  }

  private startActor(pod: Pod): Running {
    const actorId = `pod/${pod.metadata.uid}`;
    const input: PodInput = {
      pod: {
        name: pod.metadata.name,
        uid: pod.metadata.uid,
        deployment: pod.metadata.annotations?.[DEPLOYMENT_ANNOTATION],
        terminationGracePeriodSeconds: pod.spec.terminationGracePeriodSeconds ?? 30,
      },
      container: pod.spec.containers[0],
      backoff: podBackoff(pod, this.opts.backoff ?? DEFAULT_BACKOFF),
    };
    const snapshot = this.opts.snapshots.load(actorId, 'pod', POD_MACHINE_VERSION);
    const actor = createActor(this.machine, {
      input,
      ...(snapshot ? { snapshot: snapshot as never } : {}),
    });
    const entry: Running = { actor, uid: pod.metadata.uid, reporting: false, finished: false };
    this.pods.set(pod.metadata.name, entry);
    actor.subscribe({
      next: () => this.onActorChanged(pod.metadata.name, entry, actorId),
      error: (err) =>
        this.opts.logger.error({ err, podName: pod.metadata.name }, 'pod actor failed'),
    });
    actor.start();
    // A snapshot saved in `running` after its check finished holds that
    // check as done, and a restored actor does not run it again: ask for a
    // fresh one so that a container that died while we were down is seen.
    if (snapshot) actor.send({ type: 'RESYNC' });
    this.opts.logger.info(
      { podName: pod.metadata.name, restored: Boolean(snapshot) },
      snapshot ? 'pod actor restored' : 'pod actor started',
    );
    return entry;
  }

  private onActorChanged(podName: string, entry: Running, actorId: string): void {
    if (this.stopped) return;
    const snap = entry.actor.getSnapshot();
    this.recordEvents(podName, entry);
    if (snap.status === 'done') {
      this.opts.snapshots.remove(actorId);
      if (!entry.finished) {
        entry.finished = true;
        void this.removePod(podName, entry.uid);
      }
      return;
    }
    this.opts.snapshots.save(
      actorId,
      'pod',
      POD_MACHINE_VERSION,
      entry.actor.getPersistedSnapshot(),
    );
    void this.reportStatus(podName, entry);
  }

  private recordEvents(podName: string, entry: Running): void {
    const snap = entry.actor.getSnapshot();
    const next = { state: flattenState(snap.value), context: snap.context as PodContext };
    const object = { kind: 'Pod', name: podName, uid: entry.uid };
    for (const e of podEventsBetween(entry.seen, next)) this.events.record({ object, ...e });
    entry.seen = next;
  }

  /** Sends the pod's status if it changed; one report in flight per pod. */
  private async reportStatus(podName: string, entry: Running): Promise<void> {
    if (entry.reporting || entry.finished) return;
    const snap = entry.actor.getSnapshot();
    const state = flattenState(snap.value);
    if (state.startsWith('terminat')) return;
    const status = podStatusOf(state, snap.context as PodContext, this.opts.nodeAddress);
    if (sameContent(status, entry.reported)) return;
    entry.reporting = true;
    let sent = false;
    try {
      await this.opts.log.propose({ op: 'podStatus', name: podName, uid: entry.uid, status });
      entry.reported = status;
      sent = true;
    } catch (err) {
      this.opts.logger.warn({ err, podName }, 'cannot report pod status');
    } finally {
      entry.reporting = false;
    }
    // Changes made while reporting were skipped above; one more pass sends
    // them (it returns at once when nothing changed). After a failure the
    // next change of the actor retries.
    if (sent) void this.reportStatus(podName, entry);
  }

  private async removePod(podName: string, uid: string): Promise<void> {
    try {
      await this.opts.log.propose({ op: 'removePod', name: podName, uid });
    } catch (err) {
      this.opts.logger.warn({ err, podName }, 'cannot remove terminated pod');
    }
  }

  private forgetPod(name: string, uid: string): void {
    const entry = this.pods.get(name);
    if (!entry || entry.uid !== uid) return;
    if (entry.actor.getSnapshot().status !== 'done') {
      // Removed before its actor finished (another node's decision): keep
      // stopping the container, then let go.
      entry.actor.send({ type: 'TERMINATE' });
      entry.actor.subscribe({ complete: () => this.pods.delete(name) });
      return;
    }
    entry.actor.stop();
    this.pods.delete(name);
  }

  private onRuntimeEvent(event: RuntimeEvent): void {
    if (event.type === 'reconnected') {
      for (const entry of this.pods.values()) entry.actor.send({ type: 'RESYNC' });
      void this.sweepOrphans();
      return;
    }
    if (event.type !== 'container') return;
    const podName = event.labels[LABEL.pod];
    const entry = podName ? this.pods.get(podName) : undefined;
    if (!entry || entry.uid !== event.labels[LABEL.podUid]) return;
    if (event.action === 'die') {
      entry.actor.send({
        type: 'CONTAINER_EXITED',
        containerId: event.id,
        exitCode: event.exitCode ?? 0,
        finishedAt: new Date(event.time).toISOString(),
      });
    } else if (event.action === 'destroy') {
      entry.actor.send({ type: 'CONTAINER_GONE', containerId: event.id });
    }
  }

  /**
   * Removes this node's labelled containers that belong to no pod of this
   * node, or to an attempt of a pod that its actor no longer tracks.
   */
  async sweepOrphans(): Promise<void> {
    const { runtime, logger } = this.opts;
    let containers;
    try {
      containers = await runtime.listContainers(
        nodeSelector(this.opts.clusterId, this.opts.nodeName),
      );
    } catch (err) {
      logger.warn({ err }, 'cannot list containers to sweep orphans');
      return;
    }
    for (const c of containers) {
      const entry = this.pods.get(c.labels[LABEL.pod] ?? '');
      const owned = entry && entry.uid === c.labels[LABEL.podUid];
      if (owned && !isStaleAttempt(entry, c.id)) continue;
      logger.info(
        { containerId: c.id, podName: c.labels[LABEL.pod] },
        'removing orphaned container',
      );
      await runtime
        .removeContainer(c.id)
        .catch((err) =>
          logger.warn({ err, containerId: c.id }, 'cannot remove orphaned container'),
        );
    }
  }

  /** Names of the pods this kubelet runs, for tests and diagnostics. */
  podNames(): string[] {
    return [...this.pods.keys()];
  }
}

/** A container of a tracked pod that its actor has replaced. */
function isStaleAttempt(entry: Running, containerId: string): boolean {
  const snap = entry.actor.getSnapshot();
  const ctx = snap.context as PodContext;
  const state = flattenState(snap.value);
  const settled = state === 'running' || state === 'crashBackoff' || state === 'pullBackoff';
  return settled && ctx.containerId !== undefined && ctx.containerId !== containerId;
}

/** "terminating.stopping" for { terminating: 'stopping' }. */
export function flattenState(value: unknown): string {
  if (typeof value === 'string') return value;
  const [key, inner] = Object.entries(value as Record<string, unknown>)[0];
  return `${key}.${flattenState(inner)}`;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
