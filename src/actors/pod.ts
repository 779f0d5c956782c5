/**
 * The life of one pod on the node that runs it: get the image, create and
 * start the container, watch it, restart it with backoff when it dies, and
 * drain and stop it when the pod is deleted. Every side effect is an actor
 * provided by src/runtime/ (see pod-effects.ts), so this machine runs in tests
 * without Docker. Side effects are idempotent because a snapshot saved while
 * an effect was in flight re-runs that effect when it is restored; an effect
 * that had finished is not re-run, which is why the kubelet sends RESYNC to
 * every restored actor.
 */
import { assign, fromCallback, fromPromise, setup } from 'xstate';
import type { Container } from '../manifest/types';
import type { ProbeKind, ProberEvent, ProberInput } from './prober';

/** Bumped when a change makes older persisted snapshots unusable. */
export const POD_MACHINE_VERSION = 2;

/** Who the pod is; fixed for the actor's life. */
export interface PodIdentity {
  name: string;
  uid: string;
  deployment?: string;
  terminationGracePeriodSeconds: number;
}

/** Input of the pod machine. */
export interface PodInput {
  pod: PodIdentity;
  container: Container;
  backoff?: BackoffSettings;
}

/** Delays between attempts, in milliseconds. */
export interface BackoffSettings {
  /** First delay after an image pull failed; doubles up to pullMaxMs. */
  pullInitialMs: number;
  pullMaxMs: number;
  /** First delay of crash backoff (the very first restart is immediate). */
  crashInitialMs: number;
  crashMaxMs: number;
  /** A container that ran this long resets the crash backoff. */
  crashResetMs: number;
}

/** Kubernetes' defaults: 10 s doubling to 5 min, reset after 10 min of running. */
export const DEFAULT_BACKOFF: BackoffSettings = {
  pullInitialMs: 10_000,
  pullMaxMs: 300_000,
  crashInitialMs: 10_000,
  crashMaxMs: 300_000,
  crashResetMs: 600_000,
};

/** How a container last ended. */
export interface LastExit {
  exitCode: number;
  reason: string;
  startedAt?: string;
  finishedAt?: string;
}

/** What the machine remembers; all of it is plain JSON, so it persists. */
export interface PodContext {
  pod: PodIdentity;
  container: Container;
  backoff: BackoffSettings;
  containerId?: string;
  imageId?: string;
  ip?: string;
  startedAt?: string;
  restartCount: number;
  /** TERMINATE arrived while a container was being created. */
  terminateRequested?: boolean;
  /** Waiting reason shown by `get pods` (ErrImagePull, CrashLoopBackOff, ...). */
  reason?: string;
  message?: string;
  pullFailures: number;
  crashFailures: number;
  delayMs: number;
  lastExit?: LastExit;
  /** The startup probe passed (or there is none) for the current container. */
  started: boolean;
  /** The readiness probe passes (or there is none) for the current container. */
  ready: boolean;
  /** When `ready` last turned true. */
  readySince?: string;
  /** Failed probe executions of this pod so far; each one is an event. */
  probeFailures: number;
  lastProbeFailure?: { probe: ProbeKind; message: string };
  /** Why the container is being killed while it runs (a liveness failure). */
  killMessage?: string;
}

/** Events the kubelet sends to a pod actor. */
export type PodEvent =
  | { type: 'CONTAINER_EXITED'; containerId: string; exitCode: number; finishedAt?: string }
  | { type: 'CONTAINER_GONE'; containerId: string }
  | { type: 'RESYNC' }
  | { type: 'TERMINATE' }
  | ProberEvent;

/** What createContainer and startContainer report back. */
export interface StartedContainer {
  containerId: string;
  imageId?: string;
  ip?: string;
  startedAt?: string;
}

/** What a check of the container found. */
export interface ContainerCheck {
  running: boolean;
  exitCode?: number;
  finishedAt?: string;
  ip?: string;
}

type EffectInput = { context: PodContext };

/** The pod machine, with stand-in effects that the runtime replaces via provide(). */
export const podMachine = setup({
  types: {
    context: {} as PodContext,
    events: {} as PodEvent,
    input: {} as PodInput,
  },
  actors: {
    ensureImage: fromPromise<{ imageId?: string }, EffectInput>(async () => ({})),
    createContainer: fromPromise<StartedContainer, EffectInput>(async () => {
      throw new Error('createContainer not provided');
    }),
    startContainer: fromPromise<StartedContainer, EffectInput>(async () => {
      throw new Error('startContainer not provided');
    }),
    checkContainer: fromPromise<ContainerCheck, EffectInput>(async () => ({ running: false })),
    removeContainer: fromPromise<void, EffectInput>(async () => undefined),
    drain: fromPromise<void, EffectInput>(async () => undefined),
    stopContainer: fromPromise<void, EffectInput>(async () => undefined),
    // Stopping the actor aborts the wait, so no timer outlives it.
    sleep: fromPromise<void, { ms: number }>(
      ({ input, signal }) =>
        new Promise((resolve) => {
          const timer = setTimeout(resolve, input.ms);
          signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
        }),
    ),
    // Without probes a started container is at once started and ready.
    prober: fromCallback<PodEvent, ProberInput>(({ sendBack, input }) => {
      if (!input.started) sendBack({ type: 'PROBE_STARTED' });
      if (!input.ready) sendBack({ type: 'PROBE_READINESS', ready: true });
    }),
  },
  actions: {
    recordPullFailure: assign(({ context, event }) => {
      const failures = context.pullFailures + 1;
      const { pullInitialMs, pullMaxMs } = context.backoff;
      return {
        pullFailures: failures,
        delayMs: nextDelay(pullInitialMs, pullMaxMs, failures),
        message: errorMessage(event),
      };
    }),
    recordContainer: assign(({ event }) => {
      const out = (event as unknown as { output: StartedContainer }).output;
      return {
        containerId: out.containerId,
        ...(out.imageId ? { imageId: out.imageId } : {}),
        ...(out.ip ? { ip: out.ip } : {}),
        ...(out.startedAt ? { startedAt: out.startedAt } : {}),
      };
    }),
    clearReason: assign({ reason: undefined, message: undefined }),
    resetProbes: assign({
      started: false,
      ready: false,
      readySince: undefined,
      killMessage: undefined,
    }),
    recordReadiness: assign(({ event }) => {
      const ready = (event as Extract<PodEvent, { type: 'PROBE_READINESS' }>).ready;
      return { ready, readySince: ready ? new Date().toISOString() : undefined };
    }),
    recordProbeFailure: assign(({ context, event }) => {
      const e = event as Extract<PodEvent, { type: 'PROBE_FAILED' }>;
      return {
        probeFailures: context.probeFailures + 1,
        lastProbeFailure: { probe: e.probe, message: e.message },
      };
    }),
    recordKill: assign(({ context, event }) => {
      const e = event as Extract<PodEvent, { type: 'PROBE_KILL' }>;
      const name = context.container.name;
      return {
        ready: false,
        readySince: undefined,
        killMessage: `Container ${name} failed ${e.probe} probe, will be restarted`,
      };
    }),
    recordKilledExit: assign(({ context }) => ({
      lastExit: { ...exitOf(context, 137), reason: 'Error' },
    })),
    recordCreateFailure: assign(({ context, event }) => {
      const failures = context.crashFailures + 1;
      const { crashInitialMs, crashMaxMs } = context.backoff;
      return {
        crashFailures: failures,
        delayMs: nextDelay(crashInitialMs, crashMaxMs, failures),
        reason: 'CreateContainerError',
        message: errorMessage(event),
      };
    }),
    recordStartFailure: assign(({ event }) => ({
      lastExit: { exitCode: 128, reason: 'StartError', finishedAt: new Date().toISOString() },
      message: errorMessage(event),
    })),
    recordExit: assign(({ context, event }) => {
      const e = event as Extract<PodEvent, { type: 'CONTAINER_EXITED' }>;
      return { lastExit: exitOf(context, e.exitCode, e.finishedAt) };
    }),
    recordCheckedExit: assign(({ context, event }) => {
      const out = (event as unknown as { output: ContainerCheck }).output;
      return { lastExit: exitOf(context, out.exitCode ?? 137, out.finishedAt) };
    }),
    recordGone: assign(({ context }) => ({
      lastExit: {
        exitCode: 137,
        reason: 'ContainerRemoved',
        startedAt: context.startedAt,
        finishedAt: new Date().toISOString(),
      },
    })),
    scheduleRestart: assign(({ context }) => {
      const ranMs = context.startedAt ? Date.now() - Date.parse(context.startedAt) : 0;
      const previous = ranMs >= context.backoff.crashResetMs ? 0 : context.crashFailures;
      const failures = previous + 1;
      const { crashInitialMs, crashMaxMs } = context.backoff;
      // The first restart is immediate; backoff starts with the second.
      const delayMs = nextDelay(crashInitialMs, crashMaxMs, failures - 1);
      return {
        crashFailures: failures,
        restartCount: context.restartCount + 1,
        delayMs,
        reason: delayMs > 0 ? 'CrashLoopBackOff' : 'ContainerCreating',
        message:
          delayMs > 0
            ? `back-off ${Math.round(delayMs / 1000)}s restarting failed container`
            : undefined,
      };
    }),
  },
  guards: {
    isCurrentContainer: ({ context, event }) =>
      'containerId' in event && event.containerId === context.containerId,
  },
}).createMachine({
  id: 'pod',
  context: ({ input }) => ({
    pod: input.pod,
    container: input.container,
    backoff: input.backoff ?? DEFAULT_BACKOFF,
    restartCount: 0,
    started: false,
    ready: false,
    probeFailures: 0,
    pullFailures: 0,
    crashFailures: 0,
    delayMs: 0,
    reason: 'ContainerCreating',
  }),
  initial: 'preparing',
  on: { TERMINATE: '.terminating' },
  states: {
    preparing: {
      invoke: {
        src: 'ensureImage',
        input: ({ context }) => ({ context }),
        onDone: {
          target: 'creating',
          actions: assign({ imageId: ({ event }) => event.output.imageId, pullFailures: 0 }),
        },
        onError: { target: 'pullBackoff', actions: 'recordPullFailure' },
      },
    },
    pullBackoff: {
      entry: assign({
        reason: ({ context }) => (context.pullFailures > 1 ? 'ImagePullBackOff' : 'ErrImagePull'),
      }),
      invoke: {
        src: 'sleep',
        input: ({ context }) => ({ ms: context.delayMs }),
        onDone: 'preparing',
      },
    },
    creating: {
      // A create in flight cannot be cancelled: wait for its container id,
      // so that terminating removes the container instead of leaking it.
      on: { TERMINATE: { actions: assign({ terminateRequested: true }) } },
      invoke: {
        src: 'createContainer',
        input: ({ context }) => ({ context }),
        onDone: [
          {
            guard: ({ context }) => Boolean(context.terminateRequested),
            target: 'terminating',
            actions: 'recordContainer',
          },
          { target: 'starting', actions: 'recordContainer' },
        ],
        onError: [
          { guard: ({ context }) => Boolean(context.terminateRequested), target: 'terminating' },
          { target: 'crashBackoff', actions: 'recordCreateFailure' },
        ],
      },
    },
    starting: {
      invoke: {
        src: 'startContainer',
        input: ({ context }) => ({ context }),
        onDone: {
          target: 'running',
          actions: ['recordContainer', 'clearReason', 'resetProbes'],
        },
        onError: { target: 'exited', actions: 'recordStartFailure' },
      },
    },
    running: {
      // Checking on entry is what adopts a container after an agent restart
      // and notices one that died while nobody was watching.
      invoke: [
        {
          src: 'checkContainer',
          input: ({ context }) => ({ context }),
          onDone: [
            {
              guard: ({ event }) => !event.output.running,
              target: 'exited',
              actions: 'recordCheckedExit',
            },
            { actions: assign({ ip: ({ context, event }) => event.output.ip ?? context.ip }) },
          ],
          onError: { target: 'exited', actions: 'recordGone' },
        },
        {
          src: 'prober',
          input: ({ context }) => ({
            container: context.container,
            started: context.started,
            ready: context.ready,
            ip: context.ip,
            containerId: context.containerId,
          }),
        },
      ],
      on: {
        CONTAINER_EXITED: { guard: 'isCurrentContainer', target: 'exited', actions: 'recordExit' },
        CONTAINER_GONE: { guard: 'isCurrentContainer', target: 'exited', actions: 'recordGone' },
        RESYNC: { target: 'running', reenter: true },
        PROBE_STARTED: { actions: assign({ started: true }) },
        PROBE_READINESS: { actions: 'recordReadiness' },
        PROBE_FAILED: { actions: 'recordProbeFailure' },
        PROBE_KILL: { target: 'killing', actions: 'recordKill' },
      },
    },
    killing: {
      // Liveness failed: stop the container with its grace period, then
      // restart it like any container that exited.
      invoke: {
        src: 'stopContainer',
        input: ({ context }) => ({ context }),
        onDone: { target: 'exited', actions: 'recordKilledExit' },
        onError: { target: 'exited', actions: 'recordKilledExit' },
      },
    },
    exited: {
      // restartPolicy is always Always for pods of a Deployment.
      entry: assign({ ready: false, readySince: undefined }),
      always: { target: 'crashBackoff', actions: 'scheduleRestart' },
    },
    crashBackoff: {
      invoke: {
        src: 'sleep',
        input: ({ context }) => ({ ms: context.delayMs }),
        onDone: 'replacing',
      },
    },
    replacing: {
      invoke: {
        src: 'removeContainer',
        input: ({ context }) => ({ context }),
        onDone: {
          target: 'preparing',
          actions: assign({ containerId: undefined, ip: undefined, reason: 'ContainerCreating' }),
        },
        onError: { target: 'crashBackoff' },
      },
    },
    terminating: {
      initial: 'draining',
      states: {
        draining: {
          invoke: {
            src: 'drain',
            input: ({ context }) => ({ context }),
            onDone: 'stopping',
            onError: 'stopping',
          },
        },
        stopping: {
          invoke: {
            src: 'stopContainer',
            input: ({ context }) => ({ context }),
            onDone: 'removing',
            onError: 'retrying',
          },
        },
        removing: {
          invoke: {
            src: 'removeContainer',
            input: ({ context }) => ({ context }),
            onDone: '#pod.terminated',
            onError: 'retrying',
          },
        },
        retrying: {
          invoke: { src: 'sleep', input: () => ({ ms: 1000 }), onDone: 'stopping' },
        },
      },
      on: { TERMINATE: {} },
    },
    terminated: { type: 'final' },
  },
});

/** Effect-free helpers the machine's actions use; exported for tests. */
export function nextDelay(initial: number, max: number, failures: number): number {
  if (failures <= 0) return 0;
  return Math.min(max, initial * 2 ** (failures - 1));
}

function exitOf(context: PodContext, exitCode: number, finishedAt?: string): LastExit {
  return {
    exitCode,
    reason: exitCode === 0 ? 'Completed' : 'Error',
    startedAt: context.startedAt,
    finishedAt: finishedAt ?? new Date().toISOString(),
  };
}

function errorMessage(event: unknown): string {
  const err = (event as { error?: unknown }).error;
  return err instanceof Error ? err.message : String(err);
}
