import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import pino from 'pino';
import { SnapshotStore } from '../../src/actors/snapshots';
import { Kubelet } from '../../src/agent/kubelet';
import { isPodReady } from '../../src/agent/pod-status';
import type { Pod, ReplicaSet } from '../../src/model/types';
import { FakeRuntime } from '../../src/runtime/fake-runtime';
import { LABEL, buildContainerLabels } from '../../src/runtime/labels';
import { NOW, TestStore, deployment, podOf, waitForStore } from '../store/fixtures';

const CLUSTER = 'cluster-1';
const NODE = 'node-1';
const IMAGE = 'registry.test/app:1';

describe('kubelet', () => {
  let t: TestStore;
  let runtime: FakeRuntime;
  let snapshots: SnapshotStore;
  let kubelets: Kubelet[];
  let rs: ReplicaSet;

  beforeEach(() => {
    t = new TestStore('flotilla-kubelet-');
    runtime = new FakeRuntime();
    runtime.addImage(IMAGE);
    snapshots = new SnapshotStore(t.db);
    kubelets = [];
    t.apply(deployment('web', { image: IMAGE }));
    [rs] = t.store.list<ReplicaSet>('ReplicaSet');
  });
  afterEach(() => {
    kubelets.forEach((k) => k.stop());
    t.close();
  });

  function newKubelet(): Kubelet {
    const kubelet = new Kubelet({
      store: t.store,
      log: t.log,
      snapshots,
      runtime,
      logger: pino({ level: 'silent' }),
      clusterId: CLUSTER,
      nodeName: NODE,
      nodeAddress: '10.0.0.1',
      backoff: {
        pullInitialMs: 5,
        pullMaxMs: 20,
        crashInitialMs: 5,
        crashMaxMs: 20,
        crashResetMs: 60_000,
      },
      drain: async () => undefined,
    });
    kubelets.push(kubelet);
    return kubelet;
  }

  const pod = (name: string) => t.store.get<Pod>('Pod', name);

  function runningPod(name: string, restarts = 0): Promise<Pod> {
    return waitForStore(t.store, () => {
      const p = pod(name);
      const cs = p?.status.containerStatuses?.[0];
      const up = p?.status.phase === 'Running' && isPodReady(p.status);
      return up && cs?.restartCount === restarts ? p : undefined;
    });
  }

  async function container(podName: string) {
    const all = await runtime.listContainers({ [LABEL.pod]: podName });
    assert.equal(all.length, 1, `one container for ${podName}`);
    return all[0];
  }

  /** A container made by someone else, with these labels, running. */
  async function foreignContainer(name: string, labels: Record<string, string>): Promise<string> {
    const id = await runtime.createContainer({ name, image: IMAGE, labels, env: [] });
    await runtime.startContainer(id);
    return id;
  }

  function flotillaLabels(clusterId: string, nodeName: string, podName: string) {
    return buildContainerLabels({
      clusterId,
      nodeName,
      podName,
      podUid: `uid-${podName}`,
      namespace: 'default',
      containerName: 'main',
      specHash: '0123456789abcdef',
    });
  }

  it('runs the pods bound to its node and reports them Running and Ready', async () => {
    t.commit({
      op: 'createPods',
      pods: [podOf(rs, 'web-a', NODE), podOf(rs, 'web-b', 'node-2'), podOf(rs, 'web-c')],
    });
    const kubelet = newKubelet();
    await kubelet.start();

    const a = await runningPod('web-a');
    const info = await container('web-a');
    const [status] = a.status.containerStatuses!;
    assert.equal(status.containerID, `docker://${info.id}`);
    assert.equal(a.status.podIP, info.ipAddress);
    assert.equal(a.status.hostIP, '10.0.0.1');
    assert.deepEqual(kubelet.podNames(), ['web-a']);
    assert.deepEqual(await runtime.listContainers({ [LABEL.pod]: 'web-b' }), []);

    t.commit({ op: 'bindPods', bindings: [{ name: 'web-c', uid: 'uid-web-c', nodeName: NODE }] });
    await runningPod('web-c');
    assert.deepEqual(kubelet.podNames().sort(), ['web-a', 'web-c']);
  });

  it('restarts a pod whose container exits, as the engine reports it', async () => {
    t.commit({ op: 'createPods', pods: [podOf(rs, 'web-a', NODE)] });
    await newKubelet().start();
    await runningPod('web-a');
    const first = await container('web-a');

    runtime.crash(first.id, 1);
    const restarted = await runningPod('web-a', 1);
    const [status] = restarted.status.containerStatuses!;
    assert.equal(status.lastState.terminated?.exitCode, 1);
    assert.notEqual((await container('web-a')).id, first.id);
  });

  it('removes orphan containers of its cluster and node when it starts', async () => {
    const orphan = await foreignContainer('orphan', flotillaLabels(CLUSTER, NODE, 'ghost'));
    const kept = [
      await foreignContainer('other-node', flotillaLabels(CLUSTER, 'node-2', 'ghost')),
      await foreignContainer('other-cluster', flotillaLabels('cluster-2', NODE, 'ghost')),
      await foreignContainer('unlabelled', { app: 'ghost' }),
      await foreignContainer('half-labelled', { [LABEL.pod]: 'ghost', [LABEL.node]: NODE }),
    ];
    const kubelet = newKubelet();
    await kubelet.start();

    assert.equal(await runtime.inspectContainer(orphan), undefined);
    for (const id of kept) assert.equal((await runtime.inspectContainer(id))?.state, 'running');

    // The sweep after the engine comes back touches them no more.
    runtime.setAvailable(false);
    runtime.setAvailable(true);
    await kubelet.sweepOrphans();
    for (const id of kept) assert.equal((await runtime.inspectContainer(id))?.state, 'running');
    const touched = runtime.calls.filter(
      (c) => (c.op === 'stopContainer' || c.op === 'removeContainer') && kept.includes(c.target),
    );
    assert.deepEqual(touched, []);
  });

  it('stops and removes the container of a deleted pod, then removes the pod', async () => {
    t.commit({ op: 'createPods', pods: [podOf(rs, 'web-a', NODE)] });
    const kubelet = newKubelet();
    await kubelet.start();
    await runningPod('web-a');
    const { id } = await container('web-a');
    const from = runtime.calls.length;

    t.commit({ op: 'terminatePods', pods: [{ name: 'web-a', uid: 'uid-web-a' }], now: NOW });
    await waitForStore(t.store, () => (pod('web-a') ? undefined : true));

    const after = runtime.calls.slice(from);
    const stop = after.findIndex((c) => c.op === 'stopContainer' && c.target === id);
    const remove = after.findIndex((c) => c.op === 'removeContainer' && c.target === id);
    assert.ok(stop >= 0 && remove > stop, 'stopped, then removed');
    assert.equal(await runtime.inspectContainer(id), undefined);
    assert.deepEqual(kubelet.podNames(), []);
    assert.deepEqual(snapshots.ids('pod'), []);
  });

  it('adopts its running containers after a restart instead of making new ones', async () => {
    t.commit({ op: 'createPods', pods: [podOf(rs, 'web-a', NODE)] });
    const first = newKubelet();
    await first.start();
    await runningPod('web-a');
    const { id } = await container('web-a');
    first.stop();
    const from = runtime.calls.length;

    await newKubelet().start();
    await new Promise((resolve) => setImmediate(resolve));

    const ops = runtime.calls.slice(from).map((c) => c.op);
    assert.ok(ops.includes('inspectContainer'), `checked the container: ${ops}`);
    for (const op of ['createContainer', 'stopContainer', 'removeContainer'] as const) {
      assert.ok(!ops.includes(op), `no ${op} after restart`);
    }
    assert.equal((await container('web-a')).id, id);
    assert.ok(isPodReady(pod('web-a')!.status));
  });

  it('notices after a restart a container that died while it was down', async () => {
    t.commit({ op: 'createPods', pods: [podOf(rs, 'web-a', NODE)] });
    const first = newKubelet();
    await first.start();
    await runningPod('web-a');
    const { id } = await container('web-a');
    first.stop();
    // The agent is down: nobody hears this container exit.
    runtime.crash(id, 2);

    await newKubelet().start();
    const restarted = await runningPod('web-a', 1);
    assert.equal(restarted.status.containerStatuses![0].lastState.terminated?.exitCode, 2);
    assert.notEqual((await container('web-a')).id, id);
  });
});
