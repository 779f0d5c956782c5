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
  const ready = running && !terminating;
  const container: ContainerStatus = {
    name: ctx.container.name,
    containerID: ctx.containerId ? `docker://${ctx.containerId}` : undefined,
    image: ctx.container.image,
    imageID: ctx.imageId ?? '',
    ready,
    started: running,
    restartCount: ctx.restartCount,
    state: containerState(state, ctx),
    lastState: ctx.lastExit
      ? { terminated: { ...ctx.lastExit } }
      : {},
  };
  const started = Boolean(ctx.startedAt) || ctx.restartCount > 0;
  return {
    phase: started ? 'Running' : 'Pending',
    conditions: conditions(ready),
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
    waiting: { reason: ctx.reason ?? 'ContainerCreating', ...(ctx.message ? { message: ctx.message } : {}) },
  };
}

function conditions(ready: boolean): Condition[] {
  const flag = (b: boolean): Condition['status'] => (b ? 'True' : 'False');
  return [
    { type: 'PodScheduled', status: 'True' },
    { type: 'Initialized', status: 'True' },
    { type: 'ContainersReady', status: flag(ready) },
    { type: 'Ready', status: flag(ready) },
  ];
}

/** True when a reported status says the pod may receive traffic. */
export function isPodReady(status: PodStatus | undefined): boolean {
  return status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}
