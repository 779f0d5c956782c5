/**
 * One server as the cluster sees it: registering, Ready, or NotReady when it
 * has not been heard from. With one server the agent runs the machine for
 * itself; the cluster's gossip will send it HEARD and LOST for every member.
 */
import { assign, fromPromise, setup } from 'xstate';

/** Bumped when a change makes older persisted snapshots unusable. */
export const NODE_MACHINE_VERSION = 1;

/** What the machine remembers. */
export interface NodeContext {
  name: string;
  /** Why the node is not ready, for `describe node`. */
  reason?: string;
  registrations: number;
}

/** Events of the node machine. */
export type NodeEvent = { type: 'HEARD' } | { type: 'LOST'; reason: string } | { type: 'REFRESH' };

/** The node machine; `register` is provided by the agent. */
export const nodeMachine = setup({
  types: {
    context: {} as NodeContext,
    events: {} as NodeEvent,
    input: {} as { name: string },
  },
  actors: {
    register: fromPromise<void, { name: string; ready: boolean; reason?: string }>(async () => undefined),
    sleep: fromPromise<void, { ms: number }>(
      ({ input }) => new Promise((resolve) => setTimeout(resolve, input.ms)),
    ),
  },
}).createMachine({
  id: 'node',
  context: ({ input }) => ({ name: input.name, registrations: 0 }),
  initial: 'registering',
  states: {
    registering: {
      invoke: {
        src: 'register',
        input: ({ context }) => ({ name: context.name, ready: true }),
        onDone: { target: 'ready', actions: assign({ registrations: ({ context }) => context.registrations + 1 }) },
        onError: 'retrying',
      },
    },
    retrying: {
      invoke: { src: 'sleep', input: () => ({ ms: 2000 }), onDone: 'registering' },
    },
    ready: {
      on: {
        LOST: { target: 'notReady', actions: assign({ reason: ({ event }) => event.reason }) },
        REFRESH: 'registering',
      },
    },
    notReady: {
      invoke: {
        src: 'register',
        input: ({ context }) => ({ name: context.name, ready: false, reason: context.reason }),
      },
      on: { HEARD: { target: 'registering', actions: assign({ reason: undefined }) } },
    },
  },
});
