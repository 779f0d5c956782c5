import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { FlotillaError } from '../../src/errors';
import type { Node, Pod, ReplicaSet } from '../../src/model/types';
import { isRemovedNode } from '../../src/store/apply-nodes';
import { dumpState, installState } from '../../src/cluster/state-snapshot';
import { NOW, TestStore, deployment, podOf } from './fixtures';

function register(t: TestStore, name: string): void {
  t.commit({
    op: 'registerNode',
    node: {
      metadata: { name, uid: '', resourceVersion: '' },
      status: {
        conditions: [{ type: 'Ready', status: 'True' }],
        addresses: [{ type: 'InternalIP', address: '127.0.0.1' }],
      },
    } as unknown as Pick<Node, 'metadata' | 'status'>,
    uid: t.nextUid(),
    now: NOW,
  });
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof FlotillaError, String(err));
    return err.code;
  }
  return 'no error';
}

/** Two pods of one Deployment, on `a` and `b`. */
function placePods(t: TestStore): void {
  t.apply(deployment('web', { replicas: 2 }));
  const rs = t.store.list<ReplicaSet>('ReplicaSet')[0];
  t.commit({ op: 'createPods', pods: [podOf(rs, 'web-1', 'a'), podOf(rs, 'web-2', 'b')] });
}

describe('node commands', () => {
  let t: TestStore;
  beforeEach(() => {
    t = new TestStore();
    register(t, 'a');
    register(t, 'b');
  });
  afterEach(() => t.close());

  it('cordon sets spec.unschedulable and uncordon removes the field', () => {
    t.commit({ op: 'setUnschedulable', name: 'a', unschedulable: true });
    assert.equal(t.store.get<Node>('Node', 'a')?.spec.unschedulable, true);
    t.commit({ op: 'setUnschedulable', name: 'a', unschedulable: false });
    assert.deepEqual(t.store.get<Node>('Node', 'a')?.spec, {});
  });

  it('a node that re-registers stays cordoned', () => {
    t.commit({ op: 'setUnschedulable', name: 'a', unschedulable: true });
    register(t, 'a');
    assert.equal(t.store.get<Node>('Node', 'a')?.spec.unschedulable, true);
  });

  it('cordoning an unknown node fails with NotFound', () => {
    const command = { op: 'setUnschedulable' as const, name: 'zz', unschedulable: true };
    assert.equal(codeOf(() => t.commit(command)), 'NotFound');
  });

  it('removing a node deletes it, its pods and its address, and keeps the others', () => {
    placePods(t);
    t.store.db.transaction(() => t.store.setMeta('peer/a', '127.0.0.1:1'))();
    t.commit({ op: 'removeNode', name: 'a' });
    assert.equal(t.store.get('Node', 'a'), undefined);
    assert.ok(t.store.get('Node', 'b'));
    const pods = t.store.list<Pod>('Pod').map((p) => p.metadata.name);
    assert.deepEqual(pods, ['web-2']);
    assert.equal(t.store.getMeta('peer/a'), undefined);
    assert.equal(isRemovedNode(t.store, 'a'), true);
  });

  it('a removed node cannot register again until it is admitted', () => {
    t.commit({ op: 'removeNode', name: 'a' });
    assert.equal(codeOf(() => register(t, 'a')), 'NodeRemoved');
    assert.equal(t.store.get('Node', 'a'), undefined);
    t.commit({ op: 'admitNode', name: 'a' });
    register(t, 'a');
    assert.ok(t.store.get('Node', 'a'));
  });

  it('the tombstone of a removed node travels in snapshots', () => {
    t.commit({ op: 'removeNode', name: 'a' });
    const other = new TestStore();
    try {
      installState(other.store, dumpState(t.store), 10);
      assert.equal(isRemovedNode(other.store, 'a'), true);
      assert.equal(codeOf(() => register(other, 'a')), 'NodeRemoved');
    } finally {
      other.close();
    }
  });
});
