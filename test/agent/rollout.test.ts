/**
 * Rollouts end to end inside one process: the deployment controllers, the
 * scheduler and a kubelet on the FakeRuntime, all on a real store. Every
 * committed change is checked against the rolling-update bounds.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import pino from 'pino';
import { SnapshotStore } from '../../src/actors/snapshots';
import { DeploymentControllers } from '../../src/agent/deployments';
import { Kubelet } from '../../src/agent/kubelet';
import { isPodReady } from '../../src/agent/pod-status';
import type { Deployment } from '../../src/manifest/types';
import { validateManifest } from '../../src/manifest/validate';
import { DEPLOYMENT_ANNOTATION } from '../../src/model/names';
import type { Condition, Pod, ReplicaSet } from '../../src/model/types';
import { FakeRuntime } from '../../src/runtime/fake-runtime';
import type { StoredEvent } from '../../src/store/apply-events';
import { REVISION_ANNOTATION } from '../../src/store/apply';
import { NOW, TestStore, waitForStore } from '../store/fixtures';

const V1 = 'registry.test/app:1';
const V2 = 'registry.test/app:2';
const WAIT_MS = 20_000;

function manifest(
  replicas: number,
  image: string,
  extra: { deadline?: number; annotations?: Record<string, string>; minReady?: number } = {},
): Deployment {
  const raw = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', annotations: extra.annotations ?? {} },
    spec: {
      replicas,
      selector: { matchLabels: { app: 'web' } },
      strategy: {
        type: 'RollingUpdate',
        rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' },
      },
      ...(extra.deadline ? { progressDeadlineSeconds: extra.deadline } : {}),
      ...(extra.minReady ? { minReadySeconds: extra.minReady } : {}),
      template: {
        metadata: { labels: { app: 'web' } },
        spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'main', image }] },
      },
    },
  };
  return validateManifest(raw, { file: 'test' }).object as Deployment;
}

describe('rollouts on one node', () => {
  let t: TestStore;
  let runtime: FakeRuntime;
  let kubelet: Kubelet;
  let controllers: DeploymentControllers;
  let violations: string[];
  let bounds: { max: number; minReady: number } | undefined;

  beforeEach(async () => {
    t = new TestStore('flotilla-rollout-');
    runtime = new FakeRuntime();
    runtime.addImage(V1);
    runtime.addImage(V2);
    violations = [];
    bounds = undefined;
    const logger = pino({ level: 'silent' });
    const snapshots = new SnapshotStore(t.db);
    t.commit(nodeCommand());
    kubelet = new Kubelet({
      store: t.store,
      log: t.log,
      snapshots,
      runtime,
      logger,
      clusterId: 'cluster-1',
      nodeName: 'node-1',
      nodeAddress: '10.0.0.1',
      backoff: {
        pullInitialMs: 20,
        pullMaxMs: 50,
        crashInitialMs: 20,
        crashMaxMs: 50,
        crashResetMs: 60_000,
      },
      drain: async () => undefined,
    });
    controllers = new DeploymentControllers({ store: t.store, log: t.log, snapshots, logger });
    await kubelet.start();
    controllers.start();
    t.store.on('change', checkBounds);
  });
  afterEach(() => {
    t.store.off('change', checkBounds);
    controllers.stop();
    kubelet.stop();
    t.close();
  });

  const pods = () =>
    t.store
      .list<Pod>('Pod')
      .filter((p) => p.metadata.annotations?.[DEPLOYMENT_ANNOTATION] === 'web');
  const live = () => pods().filter((p) => !p.metadata.deletionTimestamp);
  const readyPods = (image?: string) =>
    live().filter((p) => isPodReady(p.status) && (!image || p.spec.containers[0].image === image));
  const web = () => t.store.get<Deployment>('Deployment', 'web')!;
  const progressing = () =>
    (web().status?.conditions as Condition[] | undefined)?.find((c) => c.type === 'Progressing');

  function checkBounds(): void {
    if (!bounds) return;
    const all = pods().length;
    const ready = readyPods().length;
    if (all > bounds.max) violations.push(`${all} pods, more than ${bounds.max}`);
    if (ready < bounds.minReady) {
      violations.push(`${ready} ready pods, fewer than ${bounds.minReady}`);
    }
  }

  function apply(d: Deployment): void {
    t.commit({ op: 'apply', objects: [structuredClone(d)], uids: [t.nextUid()], now: NOW });
  }

  function settled(replicas: number, image: string): Promise<true> {
    return waitForStore(
      t.store,
      () => {
        const done = pods().length === replicas && readyPods(image).length === replicas;
        return done && progressing()?.reason === 'NewReplicaSetAvailable' ? true : undefined;
      },
      WAIT_MS,
    );
  }

  for (const replicas of [1, 3, 4, 5, 10]) {
    it(`rolls ${replicas} replicas within replicas + maxSurge and - maxUnavailable`, async () => {
      apply(manifest(replicas, V1));
      await settled(replicas, V1);
      bounds = {
        max: replicas + Math.ceil(replicas * 0.25),
        minReady: replicas - Math.floor(replicas * 0.25),
      };
      apply(manifest(replicas, V2));
      await settled(replicas, V2);
      assert.deepEqual(violations, []);
      assert.equal(live().filter((p) => p.spec.containers[0].image === V2).length, replicas);
    });
  }

  it('reports ProgressDeadlineExceeded for a missing image, keeping old pods', async () => {
    apply(manifest(4, V1, { deadline: 2 }));
    await settled(4, V1);
    bounds = { max: 5, minReady: 3 };
    runtime.failPull('registry.test/app:missing', 'manifest unknown');
    apply(manifest(4, 'registry.test/app:missing', { deadline: 2 }));
    await waitForStore(
      t.store,
      () => (progressing()?.reason === 'ProgressDeadlineExceeded' ? true : undefined),
      WAIT_MS,
    );
    assert.equal(progressing()?.status, 'False');
    assert.ok(readyPods(V1).length >= 3, 'old pods keep serving');
    assert.ok(live().filter((p) => p.spec.containers[0].image !== V1).length <= 2);
    assert.deepEqual(violations, []);
    const events = t.store.list<StoredEvent>('Event');
    await waitForStore(
      t.store,
      () => t.store.list<StoredEvent>('Event').find((e) => e.reason === 'ProgressDeadlineExceeded'),
      WAIT_MS,
    );
    assert.ok(events.some((e) => e.reason === 'ScalingReplicaSet'));
  });

  it('rolls back on its own to the last completed revision when new pods crash-loop', async () => {
    const annotations = { 'flotilla.io/auto-rollback': 'true' };
    apply(manifest(2, V1, { annotations }));
    await settled(2, V1);
    const crasher = 'registry.test/crasher:1';
    runtime.addImage(crasher);
    runtime.failStart(crasher, 'exec format error');
    apply(manifest(2, crasher, { annotations }));

    const rolledBack = await waitForStore(
      t.store,
      () => t.store.list<StoredEvent>('Event').find((e) => e.reason === 'RolledBack'),
      WAIT_MS,
    );
    assert.match(rolledBack.message, /revision 2 to revision 1/);
    assert.match(rolledBack.message, /crash-looping/);
    assert.equal(web().spec.template.spec.containers[0].image, V1);
    assert.equal(web().metadata.annotations?.[REVISION_ANNOTATION], '3', 'renumbered as newest');
    await settled(2, V1);
    const revisions = t.store
      .list<ReplicaSet>('ReplicaSet')
      .map((rs) => [
        rs.spec.template.spec.containers[0].image,
        rs.metadata.annotations?.[REVISION_ANNOTATION],
      ]);
    assert.deepEqual(
      revisions.sort(),
      [
        [V1, '3'],
        [crasher, '2'],
      ].sort(),
    );
  });

  it('counts a pod as available only after minReadySeconds', async () => {
    apply(manifest(1, V1, { minReady: 1 }));
    const ready = await waitForStore(t.store, () => readyPods(V1)[0], WAIT_MS);
    assert.ok(ready);
    assert.equal(web().status?.availableReplicas ?? 0, 0);
    const available = () => ((web().status?.availableReplicas ?? 0) === 1 ? true : undefined);
    await waitForStore(t.store, available, WAIT_MS);
  });
});

function nodeCommand() {
  return {
    op: 'registerNode' as const,
    node: {
      metadata: { name: 'node-1', uid: '', resourceVersion: '', creationTimestamp: '' },
      status: {
        conditions: [{ type: 'Ready', status: 'True' as const, reason: 'FlotillaReady' }],
        addresses: [{ type: 'InternalIP', address: '10.0.0.1' }],
        capacity: { cpu: '64', memory: '64Gi', pods: '110' },
        allocatable: { cpu: '64', memory: '64Gi', pods: '110' },
        nodeInfo: { kubeletVersion: 'v0' },
      },
    },
    uid: 'uid-node-1',
    now: NOW,
  };
}
