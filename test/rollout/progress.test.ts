import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { ReplicaSet } from '../../src/model/types';
import {
  advanceProgress,
  progressState,
  type ProgressMark,
  type RolloutCounts,
} from '../../src/rollout/progress';
import {
  COMPLETE_ANNOTATION,
  rollbackTarget,
  templateOf,
  undoTarget,
} from '../../src/rollout/revisions';

const DEADLINE_S = 10;

function state(mark: ProgressMark, now: number, complete = false) {
  return progressState({ complete, paused: false, mark, deadlineSeconds: DEADLINE_S, now });
}

function rs(revision: number, extra: Record<string, string> = {}): ReplicaSet {
  return {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: {
      name: `web-${revision}`,
      uid: `uid-${revision}`,
      resourceVersion: '1',
      creationTimestamp: '',
      labels: { app: 'web', 'pod-template-hash': `h${revision}` },
      annotations: { 'deployment.kubernetes.io/revision': String(revision), ...extra },
    },
    spec: {
      replicas: 0,
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web', 'pod-template-hash': `h${revision}` } },
        spec: {
          containers: [{ name: 'main', image: `app:${revision}`, imagePullPolicy: 'IfNotPresent' }],
          restartPolicy: 'Always',
          terminationGracePeriodSeconds: 30,
        },
      },
    },
    status: { replicas: 0, readyReplicas: 0, availableReplicas: 0 },
  };
}

describe('rollout progress', () => {
  it('reports ProgressDeadlineExceeded once nothing improved for the deadline', () => {
    let mark = advanceProgress(undefined, 'h2', { updated: 1, available: 0, old: 3 }, 0);
    mark = advanceProgress(mark, 'h2', { updated: 1, available: 0, old: 3 }, 9_000);
    assert.deepEqual(state(mark, 9_000), { status: 'True', reason: 'ReplicaSetUpdated' });
    mark = advanceProgress(mark, 'h2', { updated: 1, available: 0, old: 3 }, 10_000);
    assert.deepEqual(state(mark, 10_000), { status: 'False', reason: 'ProgressDeadlineExceeded' });
  });

  it('does not count a pod that flaps between ready and not ready as progress', () => {
    let mark = advanceProgress(undefined, 'h2', { updated: 1, available: 0, old: 2 }, 0);
    mark = advanceProgress(mark, 'h2', { updated: 1, available: 1, old: 2 }, 1_000);
    for (let t = 2_000; t <= 12_000; t += 1_000) {
      const available = (t / 1000) % 2;
      mark = advanceProgress(mark, 'h2', { updated: 1, available, old: 2 }, t);
    }
    assert.equal(mark.at, 1_000);
    assert.equal(state(mark, 12_000).reason, 'ProgressDeadlineExceeded');
  });

  it('starts the clock again for a new revision', () => {
    const old = advanceProgress(undefined, 'h2', { updated: 1, available: 0, old: 3 }, 0);
    const mark = advanceProgress(old, 'h3', { updated: 0, available: 0, old: 4 }, 50_000);
    assert.equal(mark.at, 50_000);
    assert.equal(state(mark, 55_000).reason, 'ReplicaSetUpdated');
  });

  it('never fails a rollout that gains something within every deadline', () => {
    const step = fc.record({
      gap: fc.integer({ min: 1, max: DEADLINE_S * 1000 - 1 }),
      gain: fc.constantFrom<keyof RolloutCounts>('updated', 'available', 'old'),
    });
    fc.assert(
      fc.property(fc.array(step, { maxLength: 40 }), (steps) => {
        let counts: RolloutCounts = { updated: 0, available: 0, old: 50 };
        let now = 0;
        let mark = advanceProgress(undefined, 'h', counts, now);
        for (const { gap, gain } of steps) {
          now += gap;
          const delta = gain === 'old' ? -1 : 1;
          counts = { ...counts, [gain]: counts[gain] + delta };
          mark = advanceProgress(mark, 'h', counts, now);
          if (state(mark, now).reason === 'ProgressDeadlineExceeded') return false;
        }
        return true;
      }),
    );
  });

  it('says complete and paused before looking at the deadline', () => {
    const mark = advanceProgress(undefined, 'h', { updated: 1, available: 1, old: 0 }, 0);
    assert.equal(state(mark, 999_999, true).reason, 'NewReplicaSetAvailable');
    const opts = { complete: false, paused: true, mark, deadlineSeconds: 1, now: 999_999 };
    const paused = progressState(opts);
    assert.equal(paused.reason, 'DeploymentPaused');
  });
});

describe('revisions', () => {
  it('undoes to the newest revision older than the current one, or to the one asked for', () => {
    const sets = [rs(1), rs(3), rs(2)];
    assert.equal((undoTarget(sets, 3) as ReplicaSet).metadata.name, 'web-2');
    assert.equal((undoTarget(sets, 3, 1) as ReplicaSet).metadata.name, 'web-1');
    assert.deepEqual(undoTarget(sets, 3, 7), { problem: 'RevisionNotFound', revision: 7 });
    assert.deepEqual(undoTarget([rs(1)], 1), { problem: 'NoHistory' });
  });

  it('rolls back automatically only to a revision that completed', () => {
    const done = { [COMPLETE_ANNOTATION]: 'true' };
    const sets = [rs(1, done), rs(2), rs(3)];
    assert.equal(rollbackTarget(sets, sets[2])?.metadata.name, 'web-1');
    assert.equal(rollbackTarget([rs(1), rs(2)], rs(2)), undefined);
  });

  it('gives back the Deployment template without the pod-template-hash label', () => {
    const template = templateOf(rs(4));
    assert.deepEqual(template.metadata?.labels, { app: 'web' });
    assert.equal(template.spec.containers[0].image, 'app:4');
  });
});
