/**
 * Turns what a pod actor knows into the Pod status that `get pods` and the
 * balancers read. Pure.
 */
import type { PodContext } from '../actors/pod';
import type { Condition, ContainerState, ContainerStatus, PodStatus } from '../model/types';

/** The pod actor's state value, flattened ("terminating.stopping"). */
export type PodStateName = string;

/** The status to report for a pod actor in `state` with `ctx`. */
export function podStatusOf(state: PodStateName, ctx: PodContext, hostIP: string): PodStatus {
  const running = state === 'running';
  const terminating = state.startsWith('terminating') || state === 'terminated';
  // Probes decide readiness; a container without probes is ready once running.
  const ready = running && !terminating && ctx.ready !== false && ctx.started !== false;
  const container: ContainerStatus = {
    name: ctx.container.name,
    containerID: ctx.containerId ? `docker://${ctx.containerId}` : undefined,
    image: ctx.container.image,
    imageID: ctx.imageId ?? '',
    ready,
    started: running && ctx.started !== false,
    restartCount: ctx.restartCount,
    state: containerState(state, ctx),
    lastState: ctx.lastExit ? { terminated: { ...ctx.lastExit } } : {},
  };
  const started = Boolean(ctx.startedAt) || ctx.restartCount > 0;
  return {
    phase: started ? 'Running' : 'Pending',
    conditions: conditions(ready, ready ? (ctx.readySince ?? ctx.startedAt) : undefined),
    hostIP,
    podIP: ctx.ip,
    startTime: ctx.startedAt,
    containerStatuses: [container],
  };
}

function containerState(state: string, ctx: PodContext): ContainerState {
  if ((state === 'running' || state.startsWith('terminating')) && ctx.startedAt) {
    return { running: { startedAt: ctx.startedAt } };
  }
  return {
    waiting: {
      reason: ctx.reason ?? 'ContainerCreating',
      ...(ctx.message ? { message: ctx.message } : {}),
    },
  };
}

function conditions(ready: boolean, readySince: string | undefined): Condition[] {
  const flag = (b: boolean): Condition['status'] => (b ? 'True' : 'False');
  const since = readySince ? { lastTransitionTime: readySince } : {};
  return [
    { type: 'PodScheduled', status: 'True' },
    { type: 'Initialized', status: 'True' },
    { type: 'ContainersReady', status: flag(ready), ...since },
    { type: 'Ready', status: flag(ready), ...since },
  ];
}

/**
 * True when the pod has been ready for at least `minReadySeconds` at `now`:
 * what Kubernetes calls available.
 */
export function isPodAvailable(
  status: PodStatus | undefined,
  minReadySeconds: number,
  now: number,
): boolean {
  if (!isPodReady(status)) return false;
  if (minReadySeconds <= 0) return true;
  const ready = status?.conditions?.find((c) => c.type === 'Ready');
  const since = Date.parse(ready?.lastTransitionTime ?? '');
  return Number.isFinite(since) && now - since >= minReadySeconds * 1000;
}

/** Milliseconds until a ready pod becomes available; undefined when not ready or already so. */
export function msUntilAvailable(
  status: PodStatus | undefined,
  minReadySeconds: number,
  now: number,
): number | undefined {
  if (!isPodReady(status) || minReadySeconds <= 0) return undefined;
  const ready = status?.conditions?.find((c) => c.type === 'Ready');
  const since = Date.parse(ready?.lastTransitionTime ?? '');
  if (!Number.isFinite(since)) return undefined;
  const left = since + minReadySeconds * 1000 - now;
  return left > 0 ? left : undefined;
}

/** True when a reported status says the pod may receive traffic. */
export function isPodReady(status: PodStatus | undefined): boolean {
  return status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}
