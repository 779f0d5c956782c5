import type { ConfState, MembershipChange } from './types';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The configuration of a server that has not yet learnt any: it neither votes nor campaigns. */
export const EMPTY_CONFIG: ConfState = Object.freeze({
  voters: [],
  learners: [],
}) as ConfState;

/** Serialises a configuration into a `config` entry's data. */
export function encodeConfig(config: ConfState): Uint8Array {
  return encoder.encode(JSON.stringify(config));
}

/** Reads a configuration back from a `config` entry's data. */
export function decodeConfig(data: Uint8Array): ConfState {
  const parsed = JSON.parse(decoder.decode(data)) as ConfState;
  return { voters: [...parsed.voters], learners: [...parsed.learners] };
}

/** How many voters make a majority of `config`. */
export function quorumSize(config: ConfState): number {
  return Math.floor(config.voters.length / 2) + 1;
}

/** True when `id` is a member, voter or learner. */
export function isMember(config: ConfState, id: string): boolean {
  return config.voters.includes(id) || config.learners.includes(id);
}

/** Every member except `self`: the servers a leader replicates to. */
export function peersOf(config: ConfState, self: string): string[] {
  return [...config.voters, ...config.learners].filter((id) => id !== self);
}

/**
 * Applies one change to `config`, or explains why it is not a single-server
 * change that keeps at least one voter.
 */
export function applyChange(
  config: ConfState,
  change: MembershipChange,
): { config: ConfState } | { error: string } {
  const { nodeId } = change;
  const voters = config.voters.filter((id) => id !== nodeId);
  const learners = config.learners.filter((id) => id !== nodeId);
  const isVoter = config.voters.includes(nodeId);
  const isLearner = config.learners.includes(nodeId);

  switch (change.type) {
    case 'addVoter':
    case 'addLearner':
      if (isVoter || isLearner) return { error: `expected a non-member, got member ${nodeId}` };
      if (change.type === 'addVoter') return { config: { voters: [...voters, nodeId], learners } };
      return { config: { voters, learners: [...learners, nodeId] } };
    case 'promoteLearner':
      if (!isLearner) return { error: `expected a learner, got ${nodeId}` };
      return { config: { voters: [...voters, nodeId], learners } };
    case 'remove':
      if (!isVoter && !isLearner) return { error: `expected a member, got ${nodeId}` };
      if (voters.length === 0) return { error: 'cannot remove the last voter' };
      return { config: { voters, learners } };
  }
}
