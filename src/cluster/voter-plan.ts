/**
 * Which membership change the leader makes next to keep the cluster at its
 * voter count: a pure function of the Raft configuration and what the
 * store says about each member, so it is tested without timers or network.
 *
 * ```
 *  removed member still configured ─▶ remove it
 *  fewer voters than the maximum   ─▶ promote a Ready non-voter
 *  voter dead ≥ promoteAfterMs     ─▶ promote a Ready non-voter, then
 *                                     (voters > maximum) remove the dead voter
 * ```
 */
import type { MembershipChange } from '../raft';

/** What the store says about one member. */
export interface MemberHealth {
  /** The node's Ready condition is True. */
  ready: boolean;
  /** How long the leader's failure detector has counted the node dead. */
  deadForMs?: number;
}

/** Everything {@link planVoterChange} looks at. */
export interface VoterPlanInput {
  self: string;
  voters: string[];
  learners: string[];
  maxVoters: number;
  /** Members removed with `node remove` (tombstoned in the store). */
  removed: (id: string) => boolean;
  health: (id: string) => MemberHealth | undefined;
  promoteAfterMs: number;
}

/** The one change to make now, or undefined when the configuration is as wanted. */
export function planVoterChange(input: VoterPlanInput): MembershipChange | undefined {
  const { voters, learners, maxVoters } = input;
  const removed = [...voters, ...learners].find((id) => input.removed(id));
  if (removed) return { type: 'remove', nodeId: removed };

  const candidate = learners.find((id) => input.health(id)?.ready === true);
  if (candidate && voters.length < maxVoters) return promote(candidate);

  const dead = voters.find((id) => id !== input.self && isLongDead(input, id));
  if (!dead) return undefined;
  if (voters.length > maxVoters) return { type: 'remove', nodeId: dead };
  return candidate ? promote(candidate) : undefined;
}

function isLongDead(input: VoterPlanInput, id: string): boolean {
  const deadFor = input.health(id)?.deadForMs;
  return deadFor !== undefined && deadFor >= input.promoteAfterMs;
}

function promote(nodeId: string): MembershipChange {
  return { type: 'promoteLearner', nodeId };
}
