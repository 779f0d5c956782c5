import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import pino from 'pino';
import { SnapshotStore } from '../../src/actors/snapshots';
import { EndpointsPublisher, desiredServices } from '../../src/agent/endpoints';
import { Kubelet } from '../../src/agent/kubelet';
import {
  NODE_UNREACHABLE_REASON,
  NodeLifecycle,
  type LifecycleTimers,
} from '../../src/agent/node-lifecycle';
import { isPodReady } from '../../src/agent/pod-status';
import type { BalancedService } from '../../src/lb/types';
import type { Node, Pod, PodStatus, ReplicaSet } from '../../src/model/types';
import { FakeRuntime } from '../../src/runtime/fake-runtime';
import { LABEL } from '../../src/runtime/labels';
import type { CommandLog } from '../../src/store/command-log';
import type { Command } from '../../src/store/commands';
import { NOW, TestStore, deployment, podOf, service, waitForStore } from '../store/fixtures';

const silent = pino({ level: 'silent' });

/** Timers on a manual clock: callbacks run only when `advance` passes them. */
class ManualTimers implements LifecycleTimers {
  now = 0;
  private serial = 0;
  private pending = new Map<number, { at: number; fn: () => void }>();

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.serial;
    this.pending.set(id, { at: this.now + ms, fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  /** Moves the clock and runs what fell due, letting their promises settle. */
  async advance(ms: number): Promise<void> {
    this.now += ms;
    for (;;) {
      const due = [...this.pending].filter(([, t]) => t.at <= this.now);
      if (due.length === 0) break;
      for (const [id, t] of due) {
        this.pending.delete(id);
        t.fn();
      }
      await settle();
    }
    await settle();
  }

  count(): number {
    return this.pending.size;
  }
}

/** Lets queued promise callbacks run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

function nodeCommand(name: string, ready = true, reason = 'FlotillaReady'): Command {
  return {
    op: 'registerNode',
    node: {
      metadata: { name, uid: '', resourceVersion: '', creationTimestamp: '' },
      status: {
        conditions: [{ type: 'Ready', status: ready ? 'True' : 'False', reason }],
        addresses: [{ type: 'InternalIP', address: '10.0.0.1' }],
        capacity: { cpu: '2', memory: '1Gi', pods: '110' },
        allocatable: { cpu: '2', memory: '1Gi', pods: '110' },
        nodeInfo: { kubeletVersion: 'v0' },
      },
    },
    uid: `uid-node-${name}`,
    now: NOW,
  };
}

function readyStatus(ip: string): PodStatus {
  return { phase: 'Running', podIP: ip, conditions: [{ type: 'Ready', status: 'True' }] };
}

describe('NodeLifecycle', () => {
  let t: TestStore;
  let timers: ManualTimers;
  let lifecycle: NodeLifecycle;
  let rs: ReplicaSet;
  let leader: boolean;

  beforeEach(() => {
    t = new TestStore('flotilla-lifecycle-');
    timers = new ManualTimers();
    leader = true;
    const log: CommandLog = {
      propose: (command) => t.log.propose(command),
      isLeader: () => leader,
    };
    lifecycle = new NodeLifecycle({ store: t.store, log, logger: silent, graceMs: 5000, timers });
    lifecycle.start();
    t.commit(nodeCommand('node-1'));
    t.commit(nodeCommand('node-2'));
    t.apply(deployment('web'));
    [rs] = t.store.list<ReplicaSet>('ReplicaSet');
    t.commit({
      op: 'createPods',
      pods: [
        podOf(rs, 'web-a', 'node-1'),
        podOf(rs, 'web-b', 'node-2'),
        podOf(rs, 'web-c', 'node-1'),
      ],
    });
  });
  afterEach(() => {
    lifecycle.stop();
    t.close();
  });

  const ready = (name: string) =>
    t.store.get<Node>('Node', name)!.status.conditions.find((c) => c.type === 'Ready')!;
  const podNames = () => t.store.list<Pod>('Pod').map((p) => p.metadata.name);
  const markNode = (name: string, status: 'True' | 'False') =>
    t.commit({
      op: 'nodeCondition',
      name,
      condition: { type: 'Ready', status, reason: NODE_UNREACHABLE_REASON },
      now: NOW,
    });

  it('marks a dead node not ready at once and removes its pods after the grace', async () => {
    lifecycle.memberDead('node-1');
    await settle();
    assert.equal(ready('node-1').status, 'False');
    assert.equal(ready('node-1').reason, NODE_UNREACHABLE_REASON);
    assert.equal(ready('node-2').status, 'True');

    await timers.advance(4999);
    assert.deepEqual(podNames(), ['web-a', 'web-b', 'web-c']);
    await timers.advance(1);
    assert.deepEqual(podNames(), ['web-b']);
  });

  it('keeps the pods of a node back within the grace period and marks it ready', async () => {
    lifecycle.memberDead('node-1');
    await timers.advance(3000);
    lifecycle.memberAlive('node-1');
    await settle();
    assert.equal(ready('node-1').status, 'True');
    assert.equal(timers.count(), 0);

    await timers.advance(10_000);
    assert.deepEqual(podNames(), ['web-a', 'web-b', 'web-c']);
  });

  it('records the transition time only when the Ready status changes', async () => {
    lifecycle = new NodeLifecycle({
      store: t.store,
      log: t.log,
      logger: silent,
      timers,
      now: () => '2030-01-01T00:01:00.000Z',
    });
    lifecycle.start();
    lifecycle.memberDead('node-1');
    await settle();
    assert.equal(ready('node-1').lastTransitionTime, '2030-01-01T00:01:00.000Z');
    t.commit({ op: 'nodeCondition', name: 'node-1', condition: ready('node-1'), now: 'later' });
    assert.equal(ready('node-1').lastTransitionTime, '2030-01-01T00:01:00.000Z');
  });

  it('leaves alone a node that reported itself not ready', async () => {
    t.commit(nodeCommand('node-2', false, 'NodeStatusUnknown'));
    lifecycle.memberAlive('node-2');
    await settle();
    assert.equal(ready('node-2').status, 'False');
    assert.equal(ready('node-2').reason, 'NodeStatusUnknown');
  });

  it('proposes nothing while this server does not lead, and evicts once it leads', async () => {
    leader = false;
    lifecycle.memberDead('node-1');
    await timers.advance(6000);
    assert.equal(ready('node-1').status, 'True');
    assert.deepEqual(podNames(), ['web-a', 'web-b', 'web-c']);

    leader = true;
    await timers.advance(1000);
    assert.equal(ready('node-1').status, 'False');
    assert.deepEqual(podNames(), ['web-b']);
  });

  it('cancels pending evictions when stopped', async () => {
    lifecycle.memberDead('node-1');
    await settle();
    lifecycle.stop();
    await timers.advance(10_000);
    assert.deepEqual(podNames(), ['web-a', 'web-b', 'web-c']);
    assert.deepEqual(lifecycle.deadNodes(), []);
  });

  it('catches up with a whole membership, leaving out itself', async () => {
    markNode('node-2', 'False');
    lifecycle.syncMembers(
      [
        { name: 'node-1', state: 'dead' },
        { name: 'node-2', state: 'alive' },
        { name: 'node-3', state: 'suspect' },
      ],
      'node-1',
    );
    await timers.advance(5000);
    assert.equal(ready('node-1').status, 'True');
    assert.equal(ready('node-2').status, 'True');
    assert.deepEqual(podNames(), ['web-a', 'web-b', 'web-c']);

    lifecycle.syncMembers([{ name: 'node-2', state: 'dead' }], 'node-1');
    await timers.advance(5000);
    assert.equal(ready('node-2').status, 'False');
    assert.deepEqual(podNames(), ['web-a', 'web-c']);
  });

  it('ignores membership events before it is started', async () => {
    const idle = new NodeLifecycle({ store: t.store, log: t.log, logger: silent, timers });
    idle.memberDead('node-2');
    await timers.advance(10_000);
    assert.equal(ready('node-2').status, 'True');
    assert.deepEqual(podNames(), ['web-a', 'web-b', 'web-c']);
  });
});

describe('endpoints of unreachable nodes', () => {
  let t: TestStore;
  let rs: ReplicaSet;

  beforeEach(() => {
    t = new TestStore('flotilla-lifecycle-ep-');
    t.commit(nodeCommand('node-1'));
    t.commit(nodeCommand('node-2'));
    const ports = [{ port: 80, targetPort: 8080 }];
    t.apply(deployment('web'), service('web', { type: 'NodePort', ports }));
    [rs] = t.store.list<ReplicaSet>('ReplicaSet');
    const pods = [podOf(rs, 'web-a', 'node-1'), podOf(rs, 'web-b', 'node-2')];
    t.commit({ op: 'createPods', pods });
    pods.forEach((p, i) => {
      const status = readyStatus(`172.17.0.${i + 2}`);
      t.commit({ op: 'podStatus', name: p.metadata.name, uid: p.metadata.uid, status });
    });
  });
  afterEach(() => t.close());

  const endpointIds = (services: BalancedService[]) =>
    services[0].ports[0].endpoints.map((e) => e.id);
  const markNode = (name: string, status: 'True' | 'False') =>
    t.commit({
      op: 'nodeCondition',
      name,
      condition: { type: 'Ready', status, reason: NODE_UNREACHABLE_REASON },
      now: NOW,
    });

  it('leaves the pods of a not-ready node out of every balancer', () => {
    assert.deepEqual(endpointIds(desiredServices(t.store, '0.0.0.0')), ['web-a', 'web-b']);
    markNode('node-1', 'False');
    assert.deepEqual(endpointIds(desiredServices(t.store, '0.0.0.0')), ['web-b']);
    markNode('node-1', 'True');
    assert.deepEqual(endpointIds(desiredServices(t.store, '0.0.0.0')), ['web-a', 'web-b']);
  });

  it('re-syncs the balancer when a node becomes not ready', async () => {
    const synced: BalancedService[][] = [];
    const balancer = {
      sync: async (services: BalancedService[]) => {
        synced.push(services);
        return { failed: [] } as never;
      },
    };
    const publisher = new EndpointsPublisher({
      store: t.store,
      balancer,
      logger: silent,
      listenHost: '0.0.0.0',
    });
    await publisher.start();
    try {
      assert.deepEqual(endpointIds(synced.at(-1)!), ['web-a', 'web-b']);
      const count = synced.length;
      markNode('node-2', 'False');
      // No flush: the Node change alone must trigger the sync.
      const deadline = Date.now() + 5000;
      while (synced.length === count && Date.now() < deadline) await settle();
      assert.deepEqual(endpointIds(synced.at(-1)!), ['web-a']);
    } finally {
      publisher.stop();
    }
  });
});

describe('a restarted node whose pods were moved away', () => {
  let t: TestStore;

  beforeEach(() => {
    t = new TestStore('flotilla-lifecycle-kubelet-');
  });
  afterEach(() => t.close());

  function newKubelet(runtime: FakeRuntime): Kubelet {
    return new Kubelet({
      store: t.store,
      log: t.log,
      snapshots: new SnapshotStore(t.db),
      runtime,
      logger: silent,
      clusterId: 'cluster-1',
      nodeName: 'node-1',
      nodeAddress: '10.0.0.1',
      drain: async () => undefined,
    });
  }

  it('removes their containers at start and puts them in no balancer', async () => {
    const image = 'registry.test/app:1';
    const runtime = new FakeRuntime();
    runtime.addImage(image);
    t.commit(nodeCommand('node-1'));
    t.apply(deployment('web', { image }), service('web'));
    const [rs] = t.store.list<ReplicaSet>('ReplicaSet');
    t.commit({ op: 'createPods', pods: [podOf(rs, 'web-a', 'node-1')] });

    const before = newKubelet(runtime);
    await before.start();
    await waitForStore(t.store, () => {
      const pod = t.store.get<Pod>('Pod', 'web-a');
      return pod && isPodReady(pod.status) ? pod : undefined;
    });
    before.stop();
    assert.equal((await runtime.listContainers({ [LABEL.pod]: 'web-a' })).length, 1);

    const timers = new ManualTimers();
    const lifecycle = new NodeLifecycle({ store: t.store, log: t.log, logger: silent, timers });
    lifecycle.start();
    lifecycle.memberDead('node-1');
    await timers.advance(5000);
    lifecycle.stop();
    assert.equal(t.store.get('Pod', 'web-a'), undefined);

    const after = newKubelet(runtime);
    await after.start();
    try {
      assert.deepEqual(await runtime.listContainers({ [LABEL.pod]: 'web-a' }), []);
      assert.deepEqual(endpointIds(desiredServices(t.store, '0.0.0.0')), []);
    } finally {
      after.stop();
    }
  });

  const endpointIds = (services: BalancedService[]) =>
    services[0].ports[0].endpoints.map((e) => e.id);
});
