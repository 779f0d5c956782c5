import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { createActor, waitFor, type Actor } from 'xstate';
import type { PodContext, PodInput } from '../../src/actors/pod';
import type { ProbeResult } from '../../src/actors/prober';
import {
  CRASH_BACKOFF_INITIAL_ANNOTATION,
  CRASH_BACKOFF_MAX_ANNOTATION,
  podBackoff,
  podEventsBetween,
} from '../../src/agent/pod-events';
import { DEFAULT_BACKOFF } from '../../src/actors/pod';
import type { Pod } from '../../src/model/types';
import { isPodReady, podStatusOf } from '../../src/agent/pod-status';
import type { Container, Probe } from '../../src/manifest/types';
import { FakeRuntime } from '../../src/runtime/fake-runtime';
import { providePodEffects } from '../../src/runtime/pod-effects';
import type { ProbeTarget } from '../../src/runtime/probes';

type PodActor = Actor<ReturnType<typeof providePodEffects>>;

const IMAGE = 'registry.test/app:1';
const WAIT = { timeout: 5000 };

function probe(path: string, extra: Partial<Probe> = {}): Probe {
  return {
    httpGet: { path, port: 8080 },
    initialDelaySeconds: 0,
    periodSeconds: 1,
    timeoutSeconds: 1,
    successThreshold: 1,
    failureThreshold: 2,
    ...extra,
  };
}

function input(c: Partial<Container>): PodInput {
  return {
    pod: { name: 'web-1', uid: 'uid-web-1', deployment: 'web', terminationGracePeriodSeconds: 1 },
    container: { name: 'main', image: IMAGE, imagePullPolicy: 'IfNotPresent', ...c },
    backoff: {
      pullInitialMs: 5,
      pullMaxMs: 20,
      crashInitialMs: 10,
      crashMaxMs: 40,
      crashResetMs: 60_000,
    },
  };
}

describe('pod actor probes', () => {
  let runtime: FakeRuntime;
  let healthy: Record<string, boolean>;
  let probed: { path: string; ip?: string }[];
  let actors: PodActor[];

  beforeEach(() => {
    runtime = new FakeRuntime();
    runtime.addImage(IMAGE);
    healthy = { '/ready': true, '/live': true };
    probed = [];
    actors = [];
  });
  afterEach(() => actors.forEach((a) => a.stop()));

  function start(c: Partial<Container>): PodActor {
    const machine = providePodEffects({
      runtime,
      clusterId: 'cluster-1',
      nodeName: 'node-1',
      drain: async () => undefined,
      probeSecondMs: 5,
      runProbe: async (target: ProbeTarget, p: Probe): Promise<ProbeResult> => {
        const path = p.httpGet?.path ?? '';
        probed.push({ path, ip: target.ip });
        return healthy[path] ? { ok: true } : { ok: false, message: `${path} answered 503` };
      },
    });
    const actor = createActor(machine, { input: input(c) });
    actors.push(actor);
    actor.start();
    return actor;
  }

  const statusOf = (actor: PodActor) => {
    const snap = actor.getSnapshot();
    return podStatusOf(String(snap.value), snap.context as PodContext, '10.0.0.1');
  };

  it('reports a pod ready only while its readiness probe passes', async () => {
    healthy['/ready'] = false;
    const actor = start({ readinessProbe: probe('/ready') });
    await waitFor(actor, (s) => s.matches('running') && s.context.probeFailures >= 2, WAIT);
    assert.equal(isPodReady(statusOf(actor)), false);
    assert.equal(statusOf(actor).containerStatuses?.[0].ready, false);

    healthy['/ready'] = true;
    const snap = await waitFor(actor, (s) => s.context.ready, WAIT);
    assert.equal(isPodReady(statusOf(actor)), true);
    assert.ok(snap.context.readySince, 'the Ready condition carries its transition time');
    assert.equal(probed[0].ip, snap.context.ip, 'probes go to the pod IP');

    healthy['/ready'] = false;
    await waitFor(actor, (s) => !s.context.ready, WAIT);
    assert.equal(isPodReady(statusOf(actor)), false);
    assert.equal(actor.getSnapshot().context.restartCount, 0, 'readiness never restarts');
  });

  it('restarts the container when its liveness probe keeps failing', async () => {
    const actor = start({ livenessProbe: probe('/live') });
    const first = await waitFor(actor, (s) => s.matches('running') && s.context.ready, WAIT);
    const firstId = first.context.containerId;

    healthy['/live'] = false;
    await waitFor(actor, (s) => s.matches('killing'), WAIT);
    healthy['/live'] = true;
    const after = await waitFor(
      actor,
      (s) => s.matches('running') && s.context.restartCount === 1,
      WAIT,
    );
    assert.notEqual(after.context.containerId, firstId);
    assert.ok(runtime.calls.some((c) => c.op === 'stopContainer' && c.target === firstId));
    assert.equal(after.context.lastExit?.exitCode, 137);
  });

  it('does not run readiness or liveness before the startup probe passed', async () => {
    healthy['/startup'] = false;
    const actor = start({
      startupProbe: probe('/startup', { failureThreshold: 100 }),
      readinessProbe: probe('/ready'),
      livenessProbe: probe('/live'),
    });
    await waitFor(actor, (s) => s.context.probeFailures >= 3, WAIT);
    assert.ok(probed.every((p) => p.path === '/startup'));
    assert.equal(isPodReady(statusOf(actor)), false);
    assert.equal(statusOf(actor).containerStatuses?.[0].started, false);

    healthy['/startup'] = true;
    await waitFor(actor, (s) => s.context.ready && s.context.started, WAIT);
    assert.ok(probed.some((p) => p.path === '/ready'));
    assert.equal(statusOf(actor).containerStatuses?.[0].started, true);
  });

  it('turns probe failures and kills into Unhealthy and Killing events', () => {
    const base = {
      state: 'running',
      context: {
        ...input({}),
        container: input({}).container,
        probeFailures: 0,
      } as unknown as PodContext,
    };
    const failed = {
      state: 'running',
      context: {
        ...base.context,
        probeFailures: 1,
        lastProbeFailure: {
          probe: 'liveness' as const,
          message: 'HTTP probe failed with statuscode: 500',
        },
      },
    };
    const killing = {
      state: 'killing',
      context: {
        ...failed.context,
        killMessage: 'Container main failed liveness probe, will be restarted',
      },
    };
    assert.deepEqual(podEventsBetween(base, failed), [
      {
        type: 'Warning',
        reason: 'Unhealthy',
        message: 'Liveness probe failed: HTTP probe failed with statuscode: 500',
      },
    ]);
    assert.deepEqual(podEventsBetween(failed, killing), [
      { reason: 'Killing', message: 'Container main failed liveness probe, will be restarted' },
    ]);
  });

  it('takes crash backoff from the pod annotations a Deployment passes on', () => {
    const pod = (annotations: Record<string, string>) =>
      ({ metadata: { annotations } }) as unknown as Pod;
    const tuned = podBackoff(
      pod({ [CRASH_BACKOFF_INITIAL_ANNOTATION]: '2', [CRASH_BACKOFF_MAX_ANNOTATION]: '30' }),
      DEFAULT_BACKOFF,
    );
    assert.equal(tuned.crashInitialMs, 2000);
    assert.equal(tuned.crashMaxMs, 30_000);
    assert.equal(tuned.crashResetMs, DEFAULT_BACKOFF.crashResetMs);
    const ignored = podBackoff(
      pod({ [CRASH_BACKOFF_INITIAL_ANNOTATION]: 'soon' }),
      DEFAULT_BACKOFF,
    );
    assert.deepEqual(ignored, DEFAULT_BACKOFF);
  });
});
