import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  planVoterChange,
  type MemberHealth,
  type VoterPlanInput,
} from '../../src/cluster/voter-plan';

const READY: MemberHealth = { ready: true };
const dead = (ms: number): MemberHealth => ({ ready: false, deadForMs: ms });

function plan(over: Partial<VoterPlanInput>, health: Record<string, MemberHealth> = {}) {
  return planVoterChange({
    self: 'a',
    voters: ['a', 'b', 'c'],
    learners: ['d'],
    maxVoters: 3,
    removed: () => false,
    health: (id) => health[id] ?? READY,
    promoteAfterMs: 30_000,
    ...over,
  });
}

describe('planVoterChange', () => {
  test('a healthy cluster at its voter count needs no change', () => {
    assert.equal(plan({}), undefined);
  });

  test('a removed member is taken out first, voter or not', () => {
    assert.deepEqual(plan({ removed: (id) => id === 'd' }), { type: 'remove', nodeId: 'd' });
    assert.deepEqual(plan({ removed: (id) => id === 'a' }), { type: 'remove', nodeId: 'a' });
  });

  test('a Ready non-voter is promoted while voters are below the maximum', () => {
    const change = plan({ voters: ['a', 'b'] });
    assert.deepEqual(change, { type: 'promoteLearner', nodeId: 'd' });
  });

  test('a non-voter that is not Ready is never promoted', () => {
    assert.equal(plan({ voters: ['a', 'b'] }, { d: dead(60_000) }), undefined);
    assert.equal(plan({}, { b: dead(60_000), d: { ready: false } }), undefined);
  });

  test('a voter dead longer than promoteAfterMs makes a non-voter a voter', () => {
    const change = plan({}, { b: dead(30_000) });
    assert.deepEqual(change, { type: 'promoteLearner', nodeId: 'd' });
  });

  test('a voter dead for less than promoteAfterMs is kept', () => {
    assert.equal(plan({}, { b: dead(29_999) }), undefined);
  });

  test('once the replacement votes, the dead voter is removed to get back to the maximum', () => {
    const change = plan({ voters: ['a', 'b', 'c', 'd'], learners: [] }, { b: dead(40_000) });
    assert.deepEqual(change, { type: 'remove', nodeId: 'b' });
  });

  test('a dead voter without a non-voter to replace it stays in the configuration', () => {
    assert.equal(plan({ learners: [] }, { b: dead(600_000) }), undefined);
  });

  test('the leader never counts itself dead', () => {
    assert.equal(plan({}, { a: dead(600_000) }), undefined);
  });
});
