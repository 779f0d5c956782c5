import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { createActor, waitFor, type Actor, type SnapshotFrom } from 'xstate';
import { nextDelay, type BackoffSettings, type PodInput } from '../../src/actors/pod';
import type { Container } from '../../src/manifest/types';
import { FakeRuntime } from '../../src/runtime/fake-runtime';
import { LABEL, nodeSelector } from '../../src/runtime/labels';
import { providePodEffects } from '../../src/runtime/pod-effects';

type PodMachine = ReturnType<typeof providePodEffects>;
type PodActor = Actor<PodMachine>;
type PodSnapshot = SnapshotFrom<PodMachine>;

const CLUSTER = 'cluster-1';
const NODE = 'node-1';
const IMAGE = 'registry.test/app:1';
const WAIT = { timeout: 2000 };

/** Tiny delays so that backoff is observable yet fast. */
const FAST: BackoffSettings = {
  pullInitialMs: 5,
  pullMaxMs: 40,
  crashInitialMs: 40,
  crashMaxMs: 200,
  crashResetMs: 60_000,
};

function container(extra: Partial<Container> = {}): Container {
  return { name: 'main', image: IMAGE, imagePullPolicy: 'IfNotPresent', ...extra };
}

function input(c: Container = container()): PodInput {
  return {
    pod: {
      name: 'web-abc12',
      uid: '0123456789ab-uid',
      deployment: 'web',
      terminationGracePeriodSeconds: 5,
    },
    container: c,
    backoff: FAST,
  };
}

/** Resolves after the next call of `op` on the runtime has settled. */
function afterNextCall(runtime: FakeRuntime, op: 'inspectContainer'): Promise<void> {
  const original = runtime[op].bind(runtime);
  return new Promise((resolve) => {
    runtime[op] = async (...args: Parameters<typeof original>) => {
      try {
        return await original(...args);
      } finally {
        runtime[op] = original;
        // Let the actor handle the answer before the test looks.
        setImmediate(resolve);
      }
    };
  });
}

const ops = (runtime: FakeRuntime, from = 0) => runtime.calls.slice(from).map((c) => c.op);

/** True for a finished checkContainer child of a pod actor. */
function checkDone(child: unknown): boolean {
  const ref = child as { src?: unknown; getSnapshot(): { status: string } };
  return ref.src === 'checkContainer' && ref.getSnapshot().status === 'done';
}

describe('pod actor', () => {
  let runtime: FakeRuntime;
  let machine: PodMachine;
  let drained: number[];
  let actors: PodActor[];

  beforeEach(() => {
    runtime = new FakeRuntime();
    drained = [];
    actors = [];
    machine = providePodEffects({
      runtime,
      clusterId: CLUSTER,
      nodeName: NODE,
      drain: async () => void drained.push(runtime.calls.length),
    });
  });
  afterEach(() => actors.forEach((a) => a.stop()));

  function start(c?: Container, snapshot?: unknown): PodActor {
    const actor = createActor(machine, {
      input: input(c),
      ...(snapshot ? { snapshot: snapshot as never } : {}),
    });
    actors.push(actor);
    actor.start();
    return actor;
  }

  const running = (actor: PodActor, restarts = 0) =>
    waitFor(actor, (s) => s.matches('running') && s.context.restartCount === restarts, WAIT);

  it('uses a present image without pulling when the policy is IfNotPresent', async () => {
    runtime.addImage(IMAGE);
    await running(start());
    assert.ok(ops(runtime).includes('hasImage'));
    assert.ok(!ops(runtime).includes('pullImage'));
  });

  it('pulls a missing image when the policy is IfNotPresent', async () => {
    await running(start());
    assert.equal(ops(runtime).filter((op) => op === 'pullImage').length, 1);
  });

  it('pulls a present image when the policy is Always', async () => {
    runtime.addImage(IMAGE);
    await running(start(container({ imagePullPolicy: 'Always' })));
    assert.ok(ops(runtime).includes('pullImage'));
    assert.ok(!ops(runtime).includes('hasImage'));
  });

  it('never pulls when the policy is Never and the image is missing', async () => {
    const actor = start(container({ imagePullPolicy: 'Never' }));
    const snap = await waitFor(actor, (s) => s.matches('pullBackoff'), WAIT);
    assert.ok(!ops(runtime).includes('pullImage'));
    assert.match(snap.context.message ?? '', /imagePullPolicy is Never/);
  });

  it('creates and starts a labelled container and reaches running', async () => {
    runtime.addImage(IMAGE);
    const snap = await running(start());
    const [info] = await runtime.listContainers(nodeSelector(CLUSTER, NODE));
    assert.equal(info.id, snap.context.containerId);
    assert.equal(info.state, 'running');
    assert.equal(info.name, 'flotilla_web-abc12_01234567_0');
    assert.equal(info.labels[LABEL.pod], 'web-abc12');
    assert.equal(info.labels[LABEL.podUid], '0123456789ab-uid');
    assert.equal(info.labels[LABEL.deployment], 'web');
    assert.equal(snap.context.ip, info.ipAddress);
    assert.ok(snap.context.startedAt);
    assert.equal(snap.context.reason, undefined);
  });

  it('restarts an exited container at once, then after the crash backoff', async () => {
    runtime.addImage(IMAGE);
    const actor = start();
    const first = (await running(actor)).context.containerId!;

    runtime.crash(first, 1);
    actor.send({ type: 'CONTAINER_EXITED', containerId: first, exitCode: 1 });
    const exited = actor.getSnapshot().context;
    assert.equal(exited.delayMs, 0);
    assert.equal(exited.restartCount, 1);
    assert.deepEqual([exited.lastExit?.exitCode, exited.lastExit?.reason], [1, 'Error']);
    const second = (await running(actor, 1)).context.containerId!;
    assert.notEqual(second, first);
    assert.equal(await runtime.inspectContainer(first), undefined, 'the old attempt is removed');

    runtime.crash(second, 2);
    const crashedAt = Date.now();
    actor.send({ type: 'CONTAINER_EXITED', containerId: second, exitCode: 2 });
    const backoff = actor.getSnapshot();
    assert.ok(backoff.matches('crashBackoff'));
    assert.equal(backoff.context.delayMs, FAST.crashInitialMs);
    assert.equal(backoff.context.reason, 'CrashLoopBackOff');
    const third = await running(actor, 2);
    assert.ok(Date.now() - crashedAt >= FAST.crashInitialMs - 2, 'waited for the backoff');
    const containers = await runtime.listContainers(nodeSelector(CLUSTER, NODE));
    assert.deepEqual(containers.map((c) => c.id), [third.context.containerId]);
    assert.equal(containers[0].name, 'flotilla_web-abc12_01234567_2');
  });

  it('ignores exit events about a container it no longer runs', async () => {
    runtime.addImage(IMAGE);
    const actor = start();
    await running(actor);
    actor.send({ type: 'CONTAINER_EXITED', containerId: 'someone-else', exitCode: 1 });
    actor.send({ type: 'CONTAINER_GONE', containerId: 'someone-else' });
    assert.ok(actor.getSnapshot().matches('running'));
    assert.equal(actor.getSnapshot().context.restartCount, 0);
  });

  it('backs off pulls with ErrImagePull, then ImagePullBackOff with growing delays', async () => {
    runtime.failPull(IMAGE, 'manifest unknown');
    const actor = start();
    const seen: { reason?: string; delayMs: number }[] = [];
    let failures = 0;
    const fifth = new Promise<void>((resolve) => {
      actor.subscribe((s: PodSnapshot) => {
        if (!s.matches('pullBackoff') || s.context.pullFailures === failures) return;
        failures = s.context.pullFailures;
        seen.push({ reason: s.context.reason, delayMs: s.context.delayMs });
        if (seen.length === 5) resolve();
      });
    });
    await fifth;
    assert.deepEqual(seen, [
      { reason: 'ErrImagePull', delayMs: 5 },
      { reason: 'ImagePullBackOff', delayMs: 10 },
      { reason: 'ImagePullBackOff', delayMs: 20 },
      { reason: 'ImagePullBackOff', delayMs: 40 },
      { reason: 'ImagePullBackOff', delayMs: 40 },
    ]);
    assert.match(actor.getSnapshot().context.message ?? '', /manifest unknown/);

    runtime.clearPullFailure(IMAGE);
    const snap = await running(actor);
    assert.equal(snap.context.pullFailures, 0);
  });

  it('drains, stops and removes its container on TERMINATE and then finishes', async () => {
    runtime.addImage(IMAGE);
    const actor = start();
    const id = (await running(actor)).context.containerId!;
    const from = runtime.calls.length;

    actor.send({ type: 'TERMINATE' });
    await waitFor(actor, (s) => s.status === 'done', WAIT);

    assert.equal(drained.length, 1);
    const after = runtime.calls.slice(from);
    const stop = after.findIndex((c) => c.op === 'stopContainer' && c.target === id);
    const remove = after.findIndex((c) => c.op === 'removeContainer' && c.target === id);
    assert.ok(drained[0] <= from + stop, 'drained before stopping');
    assert.ok(stop >= 0 && remove > stop, `stop then remove: ${ops(runtime, from)}`);
    assert.deepEqual(await runtime.listContainers(nodeSelector(CLUSTER, NODE)), []);
  });

  it('finishes on TERMINATE while the image pull is backing off', async () => {
    runtime.failPull(IMAGE, 'manifest unknown');
    const actor = start();
    await waitFor(actor, (s) => s.matches('pullBackoff'), WAIT);
    actor.send({ type: 'TERMINATE' });
    await waitFor(actor, (s) => s.status === 'done', WAIT);
    assert.ok(!ops(runtime).includes('createContainer'));
  });

  it(
    'leaves no container behind when TERMINATE arrives while the container is being created',
    async () => {
      runtime.addImage(IMAGE);
      const actor = createActor(machine, { input: input() });
      actors.push(actor);
      let sent = false;
      actor.subscribe((s: PodSnapshot) => {
        if (sent || !s.matches('creating')) return;
        sent = true;
        actor.send({ type: 'TERMINATE' });
      });
      actor.start();
      await waitFor(actor, (s) => s.status === 'done', WAIT);
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(await runtime.listContainers(nodeSelector(CLUSTER, NODE)), []);
    },
  );

  /**
   * Runs a pod to `running`, waits until its container check has finished
   * (as it has long before any agent stops), saves its snapshot as the
   * kubelet does, and stops it.
   */
  async function settledSnapshot(): Promise<{ id: string; saved: unknown }> {
    runtime.addImage(IMAGE);
    const first = start();
    const snap = await waitFor(
      first,
      (s) => s.matches('running') && Object.values(s.children).some(checkDone),
      WAIT,
    );
    const saved = JSON.parse(JSON.stringify(first.getPersistedSnapshot()));
    first.stop();
    return { id: snap.context.containerId!, saved };
  }

  /** Restores a pod actor the way the kubelet does: start, then RESYNC. */
  function restore(saved: unknown): PodActor {
    const actor = start(undefined, saved);
    actor.send({ type: 'RESYNC' });
    return actor;
  }

  it('adopts its running container when restored from a snapshot', async () => {
    const { id, saved } = await settledSnapshot();
    const from = runtime.calls.length;

    const checked = afterNextCall(runtime, 'inspectContainer');
    const restored = restore(saved);
    await checked;

    const snap = restored.getSnapshot();
    assert.ok(snap.matches('running'));
    assert.equal(snap.context.containerId, id);
    assert.equal(snap.context.restartCount, 0);
    assert.deepEqual(ops(runtime, from), ['inspectContainer']);
    assert.equal((await runtime.listContainers(nodeSelector(CLUSTER, NODE))).length, 1);
  });

  it('replaces its container when restored and the container is gone', async () => {
    const { id, saved } = await settledSnapshot();
    runtime.removeExternally(id);

    const snap = await running(restore(saved), 1);
    assert.notEqual(snap.context.containerId, id);
    assert.equal(snap.context.lastExit?.exitCode, 137);
    const containers = await runtime.listContainers(nodeSelector(CLUSTER, NODE));
    assert.deepEqual(containers.map((c) => c.id), [snap.context.containerId]);
  });

  it('restarts a container that exited while nobody was watching', async () => {
    const { id, saved } = await settledSnapshot();
    runtime.crash(id, 3);

    const snap = await running(restore(saved), 1);
    assert.equal(snap.context.lastExit?.exitCode, 3);
    assert.equal(await runtime.inspectContainer(id), undefined);
  });

  it('finishes a container check that was in flight when the snapshot was taken', async () => {
    runtime.addImage(IMAGE);
    const first = start();
    const id = (await running(first)).context.containerId!;
    const saved = JSON.parse(JSON.stringify(first.getPersistedSnapshot()));
    first.stop();
    runtime.removeExternally(id);

    const snap = await running(start(undefined, saved), 1);
    assert.notEqual(snap.context.containerId, id);
  });

  it('does not check again when restored after its check finished, without a RESYNC', async () => {
    // This is why the kubelet sends RESYNC to every actor it restores.
    const { id, saved } = await settledSnapshot();
    runtime.removeExternally(id);
    const from = runtime.calls.length;

    const restored = start(undefined, saved);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(ops(runtime, from), []);
    assert.equal(restored.getSnapshot().context.containerId, id);
  });
});

describe('pod actor: nextDelay', () => {
  it('is zero before any failure and doubles up to the cap', () => {
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5].map((n) => nextDelay(10, 50, n)),
      [0, 10, 20, 40, 50, 50],
    );
  });
});
