/**
 * The AwesomeProduct example on one real agent with real Docker: apply,
 * serve, self-heal, roll out, survive SIGKILL, re-apply unchanged, and refuse
 * bad input without storing anything. The steps share one agent and run in
 * order; each asserts what the step before left.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ROOT, TestAgent, dockerAvailable, freeLoopbackAddress, httpGet, waitFor } from './harness';

const EXAMPLE = path.join(ROOT, 'examples', 'awesome-product.yaml');
const FIXTURES = path.join(ROOT, 'test', 'fixtures');
const skip = dockerAvailable() ? false : 'no Docker engine on this machine';

interface PodJson {
  metadata: { name: string; uid: string; labels: Record<string, string> };
  spec: { nodeName: string };
  status: {
    phase: string;
    containerStatuses?: { containerID?: string; ready: boolean; restartCount: number }[];
  };
}

describe('one agent runs the AwesomeProduct example', { skip }, () => {
  const agent = new TestAgent(freeLoopbackAddress());
  let nodePort = 0;

  before(() => agent.start());
  after(() => agent.cleanup());

  const pods = (): PodJson[] => {
    const r = agent.cli(['get', 'pods', '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout).items;
  };
  const readyPods = () =>
    pods().filter((p) => p.status.phase === 'Running' && p.status.containerStatuses?.[0]?.ready);
  const waitForReady = (n: number, ms = 60_000) =>
    waitFor(
      () => readyPods().length === n && pods().length === n,
      ms,
      () =>
        JSON.stringify(
          pods().map((p) => [p.metadata.name, p.status]),
          null,
          1,
        ),
    );
  const containerIds = () =>
    pods()
      .map((p) => p.status.containerStatuses?.[0]?.containerID ?? '')
      .sort();
  const hostsAnswering = async (url: string, attempts = 24) => {
    const hosts = new Set<string>();
    for (let i = 0; i < attempts; i++) {
      const body = await httpGet(url);
      hosts.add(/host=(\S+)/.exec(body)?.[1] ?? body);
    }
    return hosts;
  };

  test('the file starts 4 ready pods reachable on the NodePort and on port 80', async () => {
    const r = agent.cli(['apply', '-f', EXAMPLE]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), [
      'deployment.apps/awesome-product created',
      'service/awesome-product-balancer created',
      'service/awesome-product created',
    ]);
    await waitForReady(4);
    const running = (await agent.containers(false)).filter((c) => c.State === 'running');
    assert.equal(running.length, 4);

    const svc = JSON.parse(agent.cli(['get', 'services', 'awesome-product', '-o', 'json']).stdout);
    nodePort = svc.items?.[0]?.spec.ports[0].nodePort ?? svc.spec.ports[0].nodePort;
    assert.ok(nodePort >= 30000 && nodePort <= 32767, `nodePort ${nodePort}`);

    const names = new Set(pods().map((p) => p.metadata.name));
    assert.deepEqual(await hostsAnswering(`http://${agent.address}:${nodePort}/`), names);
    assert.deepEqual(await hostsAnswering(`http://${agent.address}:80/`), names);
  });

  test('a second agent on the same data dir is refused; the first keeps serving', async () => {
    const r = agent.cli(['agent', '--name', agent.name, '--listen', `${agent.address}:7947`]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /an agent is already running on .*; stop it first/);
    assert.equal(agent.cli(['get', 'pods']).code, 0);
  });

  test('a container removed with docker rm -f is replaced', async () => {
    const victim = (await agent.containers(false))[0];
    const { spawnSync } = await import('node:child_process');
    assert.equal(spawnSync('docker', ['rm', '-f', victim.Id]).status, 0);
    await waitFor(
      async () =>
        (await agent.containers(false)).filter((c) => c.State === 'running').length === 4 &&
        readyPods().length === 4 &&
        !containerIds().some((id) => id.includes(victim.Id)),
      30_000,
      () => JSON.stringify(pods().map((p) => p.status.containerStatuses)),
    );
    assert.ok(pods().some((p) => p.status.containerStatuses![0].restartCount === 1));
  });

  test('applying the same file again changes nothing', async () => {
    const before = agent.cli(['get', 'deployments,services', '-o', 'json']).stdout;
    const ids = containerIds();
    const r = agent.cli(['apply', '-f', EXAMPLE]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), [
      'deployment.apps/awesome-product unchanged',
      'service/awesome-product-balancer unchanged',
      'service/awesome-product unchanged',
    ]);
    const versions = (text: string) =>
      JSON.parse(text).items.map((o: any) => [
        o.metadata.name,
        o.metadata.resourceVersion,
        o.metadata.generation,
      ]);
    assert.deepEqual(
      versions(agent.cli(['get', 'deployments,services', '-o', 'json']).stdout),
      versions(before),
    );
    assert.deepEqual(containerIds(), ids);
  });

  test('the same content reformatted as JSON is unchanged too', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-json-'));
    const docs = agent.cli(['get', 'deployment', 'awesome-product', '-o', 'json']);
    assert.equal(docs.code, 0, docs.stderr);
    const yamlText = fs.readFileSync(EXAMPLE, 'utf8').split(/^---$/m)[0];
    const { parse } = require('yaml') as typeof import('yaml');
    fs.writeFileSync(path.join(dir, 'd.json'), JSON.stringify(parse(yamlText), null, 4));
    const r = agent.cli(['apply', '-f', path.join(dir, 'd.json')]);
    fs.rmSync(dir, { recursive: true });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'deployment.apps/awesome-product unchanged');
  });

  test('SIGKILL and restart keep the same containers, state and nodePorts', async () => {
    const ids = containerIds();
    const restarts = pods()
      .map((p) => p.status.containerStatuses![0].restartCount)
      .sort();
    const objects = agent.cli(['get', 'deployments,services', '-o', 'json']).stdout;
    await agent.kill('SIGKILL');
    await agent.start();
    await waitForReady(4);
    assert.deepEqual(containerIds(), ids);
    assert.deepEqual(
      pods()
        .map((p) => p.status.containerStatuses![0].restartCount)
        .sort(),
      restarts,
    );
    const pick = (text: string) =>
      JSON.parse(text).items.map((o: any) => ({
        name: o.metadata.name,
        rv: o.metadata.resourceVersion,
        revision: o.metadata.annotations?.['deployment.kubernetes.io/revision'],
        nodePorts: o.spec.ports?.map((p: any) => p.nodePort),
      }));
    assert.deepEqual(
      pick(agent.cli(['get', 'deployments,services', '-o', 'json']).stdout),
      pick(objects),
    );
    const running = (await agent.containers(false)).map((c) => c.Id).sort();
    assert.deepEqual(running, ids.map((id) => id.replace('docker://', '')).sort());
    assert.equal((await hostsAnswering(`http://${agent.address}:${nodePort}/`, 8)).size, 4);
  });

  test('set image rolls over to v2 within 5 containers and at least 3 ready', async () => {
    let maxContainers = 0;
    let minReady = Infinity;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const containers = await agent.containers(true);
        const list = await agent.apiGet('/api/v1/namespaces/default/pods');
        const ready = (list?.items ?? []).filter(
          (p: PodJson & { metadata: { deletionTimestamp?: string } }) =>
            !p.metadata.deletionTimestamp && p.status.containerStatuses?.[0]?.ready,
        ).length;
        maxContainers = Math.max(maxContainers, containers.length);
        minReady = Math.min(minReady, ready);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();

    const r = agent.cli([
      'set',
      'image',
      'deployment/awesome-product',
      'awsprdct=awesomeproduct/awsprdct:v2',
    ]);
    assert.equal(r.code, 0, r.stderr);
    await waitFor(async () => {
      const bodies = await Promise.all(
        [0, 1, 2, 3, 4, 5, 6, 7].map(() => httpGet(`http://${agent.address}:${nodePort}/`)),
      );
      return (
        readyPods().length === 4 &&
        pods().length === 4 &&
        bodies.every((b) => b.includes('version=v2'))
      );
    }, 60_000);
    await waitFor(async () => (await agent.containers(true)).length === 4, 30_000);
    sampling = false;
    await sampler;

    assert.ok(maxContainers <= 5, `saw ${maxContainers} containers`);
    assert.ok(maxContainers >= 5, `a surge of one was expected, saw at most ${maxContainers}`);
    assert.ok(minReady >= 3, `saw only ${minReady} ready pods`);
    const hosts = await hostsAnswering(`http://${agent.address}:${nodePort}/`, 12);
    assert.equal(hosts.size, 4);
    const deploy = JSON.parse(
      agent.cli(['get', 'deployment', 'awesome-product', '-o', 'json']).stdout,
    );
    const d = deploy.items?.[0] ?? deploy;
    assert.equal(d.metadata.annotations['deployment.kubernetes.io/revision'], '2');
  });

  describe('bad input is refused with a clear message and nothing stored', () => {
    const snapshot = () =>
      JSON.parse(agent.cli(['get', 'deployments,services', '-o', 'json']).stdout).items.map(
        (o: any) => [o.kind, o.metadata.name, o.metadata.resourceVersion],
      );
    const cases: [string, RegExp][] = [
      ['manifests/bad-tab.yaml', /bad-tab\.yaml:\d+:\d+: .*tab/],
      [
        'manifests/bad-duplicate-key.yaml',
        /bad-duplicate-key\.yaml:\d+:\d+: .*duplicate key "replicas"/,
      ],
      [
        'manifests/bad-selector.yaml',
        /bad-selector\.yaml:\d+:\d+: spec\.selector: .*does not match/,
      ],
      [
        'manifests/bad-zero-surge.yaml',
        /bad-zero-surge\.yaml:\d+:\d+: .*maxSurge and maxUnavailable/,
      ],
      [
        'manifests/bad-missing-image.yaml',
        /bad-missing-image\.yaml:\d+:\d+: spec\.template\.spec\.containers\[\d\]\.image/,
      ],
      [
        'manifests/bad-env-number.yaml',
        /bad-env-number\.yaml:\d+:\d+: .*env\[\d\]\.value: expected string, got number/,
      ],
      [
        'manifests/bad-nodeport-range.yaml',
        /bad-nodeport-range\.yaml:\d+:\d+: spec\.ports\[0\]\.nodePort: .*30000 and 32767/,
      ],
      ['e2e/half-valid.yaml', /half-valid\.yaml:\d+:\d+: .*image/],
    ];
    for (const [file, message] of cases) {
      test(`${path.basename(file)} is refused`, () => {
        const before = snapshot();
        const r = agent.cli(['apply', '-f', path.join(FIXTURES, file)]);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, message);
        assert.equal(r.stderr.trim().split('\n').length, 1, `one line expected:\n${r.stderr}`);
        assert.doesNotMatch(r.stderr, /\n\s+at /);
        assert.deepEqual(snapshot(), before);
      });
    }

    test('a nodePort that another Service has is refused', () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-port-'));
      const file = path.join(dir, 'taken.yaml');
      const text = fs.readFileSync(path.join(FIXTURES, 'e2e', 'taken-nodeport.yaml'), 'utf8');
      fs.writeFileSync(file, text.replace('NODEPORT', String(nodePort)));
      const before = snapshot();
      const r = agent.cli(['apply', '-f', file]);
      fs.rmSync(dir, { recursive: true });
      assert.notEqual(r.code, 0);
      assert.match(
        r.stderr,
        new RegExp(`spec\\.ports\\[0\\]\\.nodePort: .*${nodePort} is already allocated`),
      );
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      assert.deepEqual(snapshot(), before);
    });

    test('a document separator carrying a comment still applies', () => {
      const r = agent.cli([
        'apply',
        '-f',
        path.join(FIXTURES, 'manifests', 'good-separator-comment.yaml'),
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /created/);
    });
  });
});
