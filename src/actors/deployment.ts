/**
 * The controller of one Deployment, run on the leader. Every change to the
 * Deployment or its pods makes it reconcile: one rollout step (see
 * src/rollout/plan.ts) proposed through the log, then the status. Changes
 * that arrive while a step is in flight are folded into one more step, so a
 * burst of pod updates never queues a burst of steps.
 */
import { assign, fromPromise, setup } from 'xstate';

/** Bumped when a change makes older persisted snapshots unusable. */
export const DEPLOYMENT_MACHINE_VERSION = 2;

/** How long a rollout in progress waits at most before it looks again. */
export const MAX_RECHECK_MS = 30_000;

/** What one reconcile step reports. */
export interface ReconcileResult {
  /** Every replica runs the newest revision and is available. */
  complete: boolean;
  revision?: string;
  /**
   * When to look again although nothing changed: a pod becomes available
   * after minReadySeconds, a progress deadline passes.
   */
  recheckInMs?: number;
}

/** What the machine remembers. */
export interface DeploymentContext {
  name: string;
  /** A change arrived during the step in flight. */
  dirty: boolean;
  /** The newest revision that finished rolling out. */
  completedRevision?: string;
  failures: number;
  recheckInMs?: number;
}

/** Events the controller host sends. */
export type DeploymentEvent = { type: 'CHANGED' };

/** The deployment machine; `reconcile` is provided by the agent. */
export const deploymentMachine = setup({
  types: {
    context: {} as DeploymentContext,
    events: {} as DeploymentEvent,
    input: {} as { name: string },
  },
  actors: {
    reconcile: fromPromise<ReconcileResult, { name: string }>(async () => ({ complete: true })),
    // Stopping the actor aborts the wait, so no timer outlives it.
    sleep: fromPromise<void, { ms: number }>(
      ({ input, signal }) =>
        new Promise((resolve) => {
          const timer = setTimeout(resolve, input.ms);
          signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
        }),
    ),
  },
}).createMachine({
  id: 'deployment',
  context: ({ input }) => ({ name: input.name, dirty: false, failures: 0 }),
  initial: 'reconciling',
  states: {
    reconciling: {
      entry: assign({ dirty: false }),
      invoke: {
        src: 'reconcile',
        input: ({ context }) => ({ name: context.name }),
        onDone: [
          { guard: ({ context }) => context.dirty, target: 'reconciling', reenter: true },
          {
            guard: ({ event }) => event.output.complete,
            target: 'complete',
            actions: assign({
              completedRevision: ({ event }) => event.output.revision,
              failures: 0,
            }),
          },
          {
            target: 'progressing',
            actions: assign({ failures: 0, recheckInMs: ({ event }) => event.output.recheckInMs }),
          },
        ],
        onError: {
          target: 'retrying',
          actions: assign({ failures: ({ context }) => context.failures + 1 }),
        },
      },
      on: { CHANGED: { actions: assign({ dirty: true }) } },
    },
    progressing: {
      invoke: {
        src: 'sleep',
        input: ({ context }) => ({
          ms: Math.max(50, Math.min(MAX_RECHECK_MS, context.recheckInMs ?? MAX_RECHECK_MS)),
        }),
        onDone: 'reconciling',
      },
      on: { CHANGED: 'reconciling' },
    },
    complete: { on: { CHANGED: 'reconciling' } },
    retrying: {
      invoke: {
        src: 'sleep',
        input: ({ context }) => ({ ms: Math.min(5000, 250 * 2 ** context.failures) }),
        onDone: 'reconciling',
      },
      on: { CHANGED: 'reconciling' },
    },
  },
});
