/**
 * Rollouts, probes and crash backoff on one real agent with real Docker.
 * The steps share the agent and run in order. Rolling-update bounds for more
 * sizes are checked in-process in test/agent/rollout.test.ts and by the
 * planner's property tests; here the real thing runs for one size.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import {
  TestAgent,
  dockerAvailable,
  flotillaCommand,
  freeLoopbackAddress,
  waitFor,
} from './harness';

const skip = dockerAvailable() ? false : 'no Docker engine on this machine';
const V1 = 'awesomeproduct/awsprdct:amazing';
const V2 = 'awesomeproduct/awsprdct:v2';
const CRASHER = 'flotilla-test/crasher:1';
// Only the local registry is asked for it, and it does not have it.
const MISSING = '127.0.0.1:5000/flotilla-test/missing:1';

interface PodJson {
  metadata: { name: string; deletionTimestamp?: string; labels: Record<string, string> };
  spec: { containers: { image: string; env?: { name: string; value: string }[] }[] };
  status: {
    phase: string;
    conditions?: { type: string; status: string }[];
    containerStatuses?: {
      ready: boolean;
      restartCount: number;
      state: { waiting?: { reason: string; message?: string } };
      lastState: { terminated?: { exitCode: number } };
    }[];
  };
}

interface DeploymentOptions {
  replicas?: number;
  image?: string;
  env?: Record<string, string>;
  annotations?: Record<string, string>;
  deadline?: number;
  minReady?: number;
  extraContainer?: string;
}

/** A Deployment manifest; the `app` label is the name. */
function deploymentYaml(name: string, o: DeploymentOptions = {}): string {
  const entries = Object.entries(o.annotations ?? {});
  const annotations = entries.length
    ? '\n  annotations:' + entries.map(([k, v]) => `\n    ${k}: "${v}"`).join('')
    : '';
  const env = Object.entries(o.env ?? {})
    .map(([k, v]) => `\n            - name: ${k}\n              value: "${v}"`)
    .join('');
  return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}${annotations}
spec:
  replicas: ${o.replicas ?? 1}
  progressDeadlineSeconds: ${o.deadline ?? 600}
  minReadySeconds: ${o.minReady ?? 0}
  selector:
    matchLabels: { app: ${name} }
  strategy:
    type: RollingUpdate
    rollingUpdate: { maxSurge: 25%, maxUnavailable: 25% }
  template:
    metadata:
      labels: { app: ${name} }
    spec:
      terminationGracePeriodSeconds: 2
      containers:
        - name: main
          image: ${o.image ?? V1}${env ? `\n          env:${env}` : ''}${o.extraContainer ?? ''}
`;
}

describe('rollouts, probes and crash backoff on one agent', { skip }, () => {
  const agent = new TestAgent(freeLoopbackAddress());
  before(() => agent.start());
  after(() => agent.cleanup());

  const cli = (...args: string[]) => agent.cli(args);
  const ok = (...args: string[]) => {
    const r = agent.cli(args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  };
  const apply = (yaml: string, ...flags: string[]) => {
    const r = agent.cli(['apply', '-f', '-', ...flags], yaml);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    return r;
  };
  const pods = async (app: string): Promise<PodJson[]> => {
    const list = await agent.apiGet(`/api/v1/namespaces/default/pods?labelSelector=app%3D${app}`);
    return ((list?.items ?? []) as PodJson[]).filter((p) => p.metadata.labels.app === app);
  };
  const isReady = (p: PodJson) =>
    !p.metadata.deletionTimestamp &&
    (p.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
  const imageOf = (p: PodJson) => p.spec.containers[0].image;
  const settled = (app: string, n: number, image: string, ms = 60_000) =>
    waitFor(
      async () => {
        const all = await pods(app);
        return all.length === n && all.every((p) => isReady(p) && imageOf(p) === image);
      },
      ms,
      () => `pods of ${app}: ${agent.cli(['get', 'pods']).stdout}`,
    );
  const deployment = async (name: string) =>
    agent.apiGet(`/apis/apps/v1/namespaces/default/deployments/${name}`);
  const events = async (name: string) => {
    const list = await agent.apiGet('/api/v1/namespaces/default/events');
    type EventJson = { reason: string; message: string; involvedObject: { name: string } };
    const about = (e: EventJson) =>
      e.involvedObject.name === name || e.involvedObject.name.startsWith(`${name}-`);
    return ((list?.items ?? []) as EventJson[]).filter(about);
  };

  /** Runs the CLI without blocking, so that the test can watch meanwhile. */
  function cliAsync(args: string[], input?: string) {
    const [cmd, ...pre] = flotillaCommand();
    const child = spawn(cmd, [...pre, '--data-dir', agent.dataDir, ...args]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.stdin.end(input ?? '');
    return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr })),
    );
  }

  test('a rolling update of 4 stays within 5 pods and 3 ready; apply --wait waits', async () => {
    apply(deploymentYaml('web', { replicas: 4 }), '--wait', '--timeout', '90s');
    await settled('web', 4, V1);

    const seen = { maxPods: 0, minReady: 4 };
    let rolling = true;
    const watching = (async () => {
      while (rolling) {
        const all = await pods('web');
        seen.maxPods = Math.max(seen.maxPods, all.length);
        seen.minReady = Math.min(seen.minReady, all.filter(isReady).length);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const v2 = deploymentYaml('web', { replicas: 4, image: V2 });
    const r = await cliAsync(['apply', '-f', '-', '--wait'], v2);
    rolling = false;
    await watching;

    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /deployment "web" successfully rolled out/);
    const all = await pods('web');
    assert.equal(all.length, 4);
    assert.ok(all.every((p) => imageOf(p) === V2 && isReady(p)));
    assert.ok(seen.maxPods <= 5, `saw ${seen.maxPods} pods`);
    assert.ok(seen.minReady >= 3, `saw only ${seen.minReady} ready pods`);
  });

  test('rollout restart replaces every pod and keeps the image', async () => {
    const before = new Set((await pods('web')).map((p) => p.metadata.name));
    assert.match(ok('rollout', 'restart', 'deployment/web'), /deployment.apps\/web restarted/);
    ok('rollout', 'status', 'deployment/web', '--timeout', '90s');
    await settled('web', 4, V2);
    const after = await pods('web');
    assert.ok(
      after.every((p) => !before.has(p.metadata.name)),
      'every pod is new',
    );
  });

  test('a missing image exceeds the deadline, old pods serve, undo restores', async () => {
    apply(deploymentYaml('bad', { replicas: 2, deadline: 4 }));
    await settled('bad', 2, V1);
    apply(deploymentYaml('bad', { replicas: 2, deadline: 4, image: MISSING }));

    const status = cli('rollout', 'status', 'deployment/bad', '--timeout', '60s');
    assert.notEqual(status.code, 0);
    assert.match(status.stderr, /deployment "bad" exceeded its progress deadline/);
    const now = await pods('bad');
    const serving = now.filter((p) => imageOf(p) === V1 && isReady(p));
    assert.equal(serving.length, 2, 'old pods still ready');
    assert.ok(now.filter((p) => imageOf(p) === MISSING).length <= 1, 'at most maxSurge new pods');

    assert.match(ok('rollout', 'undo', 'deployment/bad'), /rolled back/);
    ok('rollout', 'status', 'deployment/bad', '--timeout', '60s');
    await settled('bad', 2, V1);
    const { annotations } = (await deployment('bad')).metadata;
    assert.equal(annotations['deployment.kubernetes.io/revision'], '3');
  });

  test('auto-rollback returns a crash-looping rollout to the last complete one', async () => {
    // The crasher is ready for the second it runs: minReadySeconds keeps
    // that second from counting as available, as in Kubernetes.
    const spec = { replicas: 2, minReady: 3, annotations: { 'flotilla.io/auto-rollback': 'true' } };
    // --wait: only a completed revision is a target for auto-rollback.
    apply(deploymentYaml('auto', spec), '--wait', '--timeout', '60s');
    apply(deploymentYaml('auto', { ...spec, image: CRASHER }));

    const status = cli('rollout', 'status', 'deployment/auto', '--timeout', '60s');
    assert.notEqual(status.code, 0, status.stdout);
    const tried = (await pods('auto')).filter((p) => imageOf(p) === CRASHER);
    assert.ok(tried.length <= 1, 'at most maxSurge new pods');
    assert.match(status.stderr, /rolled back from revision 2/);
    await settled('auto', 2, V1);
    // Events reach the log in batches, about once a second.
    const recorded = async () =>
      (await events('auto')).some(
        (e) => e.reason === 'RolledBack' && /crash-looping/.test(e.message),
      );
    await waitFor(recorded, 10_000, () => ok('get', 'events'));
    assert.match(ok('get', 'events'), /Warning\s+RolledBack\s+deployment\/auto/);
  });

  test('auto-rollback returns a rollout past its deadline to the last complete one', async () => {
    const annotations = { 'flotilla.io/auto-rollback': 'true' };
    apply(deploymentYaml('late', { replicas: 1, annotations, deadline: 3 }), '--wait');
    apply(deploymentYaml('late', { replicas: 1, annotations, deadline: 3, image: MISSING }));
    const rolledBack = async () => (await events('late')).some((e) => e.reason === 'RolledBack');
    await waitFor(rolledBack, 60_000);
    await settled('late', 1, V1);
    const why = (await events('late')).find((e) => e.reason === 'RolledBack');
    assert.match(why?.message ?? '', /progress deadline/);
  });

  test('revisions follow kubectl: v1, v2, v3, undo, undo, undo --to-revision=1', async () => {
    const v = (n: number) =>
      deploymentYaml('hist', { image: n === 1 ? V1 : V2, env: { REV: String(n) } });
    const current = async () => {
      const d = await deployment('hist');
      const c = d.spec.template.spec.containers[0];
      return [c.env[0].value, d.metadata.annotations['deployment.kubernetes.io/revision']];
    };
    const history = () =>
      ok('rollout', 'history', 'deployment/hist')
        .trim()
        .split('\n')
        .slice(2)
        .map((line) => line.split(/\s+/)[0]);

    apply(v(1));
    const none = cli('rollout', 'undo', 'deployment/hist');
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /no rollout history found for deployment "hist"/);
    for (const n of [2, 3]) {
      apply(v(n));
      ok('rollout', 'status', 'deployment/hist', '--timeout', '60s');
    }
    assert.deepEqual(await current(), ['3', '3']);
    assert.deepEqual(history(), ['1', '2', '3']);

    ok('rollout', 'undo', 'deployment/hist');
    ok('rollout', 'status', 'deployment/hist', '--timeout', '60s');
    assert.deepEqual(await current(), ['2', '4']);
    assert.deepEqual(history(), ['1', '3', '4']);

    ok('rollout', 'undo', 'deployment/hist');
    ok('rollout', 'status', 'deployment/hist', '--timeout', '60s');
    assert.deepEqual(await current(), ['3', '5']);
    assert.deepEqual(history(), ['1', '4', '5']);

    ok('rollout', 'undo', 'deployment/hist', '--to-revision=1');
    ok('rollout', 'status', 'deployment/hist', '--timeout', '60s');
    assert.deepEqual(await current(), ['1', '6']);
    assert.deepEqual(history(), ['4', '5', '6']);
    const missing = cli('rollout', 'undo', 'deployment/hist', '--to-revision=2');
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /unable to find specified revision 2/);
    const [pod] = await pods('hist');
    assert.equal(pod.spec.containers[0].env?.[0].value, '1');
  });

  test('a failing readiness probe takes the pod out; a passing one brings it back', async () => {
    const port = 20000 + Math.floor(Math.random() * 9000);
    const probes = `
          readinessProbe:
            httpGet: { path: /index.html, port: 80 }
            periodSeconds: 1
            failureThreshold: 1
          livenessProbe:
            exec: { command: [sh, -c, "test ! -f /tmp/die"] }
            periodSeconds: 1
            failureThreshold: 2`;
    const service = `---
apiVersion: v1
kind: Service
metadata: { name: probed }
spec:
  type: LoadBalancer
  selector: { app: probed }
  ports: [{ name: http, port: ${port}, targetPort: 80 }]
`;
    apply(deploymentYaml('probed', { extraContainer: probes }) + service);
    await settled('probed', 1, V1);
    const url = `http://${agent.address}:${port}/`;
    await waitFor(async () => (await status(url)) === 200, 30_000);
    const id = await containerOf('probed');

    docker('exec', id, 'mv', '/www/index.html', '/www/gone.html');
    await waitFor(
      async () => (await status(url)) === 503,
      30_000,
      () => ok('get', 'pods'),
    );
    assert.ok(!(await pods('probed')).some(isReady));
    docker('exec', id, 'mv', '/www/gone.html', '/www/index.html');
    await waitFor(
      async () => (await status(url)) === 200,
      30_000,
      () => ok('get', 'pods'),
    );
    const unhealthy = async () =>
      (await events('probed')).some(
        (e) => e.reason === 'Unhealthy' && /^Readiness probe failed/.test(e.message),
      );
    await waitFor(unhealthy, 10_000, () => ok('get', 'events'));
  });

  test('a failing liveness probe restarts the container', async () => {
    const id = await containerOf('probed');
    docker('exec', id, 'touch', '/tmp/die');
    await waitFor(
      async () => {
        const [p] = await pods('probed');
        return p?.status.containerStatuses?.[0].restartCount === 1 && isReady(p);
      },
      60_000,
      () => ok('get', 'pods'),
    );
    assert.notEqual(await containerOf('probed'), id);
    const killed = async () =>
      (await events('probed')).some(
        (e) => e.reason === 'Killing' && /failed liveness probe/.test(e.message),
      );
    await waitFor(killed, 10_000, () => ok('get', 'events'));
  });

  test('a crashing container shows CrashLoopBackOff, growing back-off, exit code', async () => {
    apply(deploymentYaml('crash', { image: CRASHER }));
    const delays = new Set<number>();
    let last: PodJson | undefined;
    // With FLOTILLA_BACKOFF_SCALE=0.1: restart at once, then after 1 s, 2 s, 4 s...
    await waitFor(
      async () => {
        [last] = await pods('crash');
        const message = last?.status.containerStatuses?.[0].state.waiting?.message ?? '';
        const delay = Number(/back-off (\d+)s/.exec(message)?.[1]);
        if (delay > 0) delays.add(delay);
        return delays.has(1) && delays.has(2);
      },
      60_000,
      () => `back-off delays seen: ${[...delays]}`,
    );
    assert.ok(!delays.has(4) || delays.has(2), 'the delay doubles');
    assert.ok((last?.status.containerStatuses?.[0].restartCount ?? 0) >= 3);
    assert.equal(last?.status.containerStatuses?.[0].lastState.terminated?.exitCode, 3);
    await waitFor(() => /CrashLoopBackOff/.test(ok('get', 'pods')), 30_000);
    const line =
      ok('get', 'pods')
        .split('\n')
        .find((l) => l.startsWith('crash-')) ?? '';
    assert.match(line, /\s[3-9]( \(.* ago\))?\s/);
  });

  async function containerOf(app: string): Promise<string> {
    const containers = await agent.containers(false);
    const running = containers.filter(
      (c) => c.State === 'running' && c.Labels['io.flotilla.pod']?.startsWith(`${app}-`),
    );
    assert.equal(running.length, 1, JSON.stringify(containers.map((c) => c.Labels)));
    return running[0].Id;
  }
});

function docker(...args: string[]): void {
  const r = spawnSync('docker', args, { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

function status(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}
