/**
 * Node operations on three real agents (127.0.X.2/.3/.4): cordon keeps new
 * pods off a node, drain moves its pods away and leaves it empty, uncordon
 * makes it schedulable again, and node remove takes it out of the cluster
 * so that no member lists it. The steps share the cluster and run in order.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TestAgent, dockerAvailable, flotillaCommand, waitFor } from './harness';

const skip = dockerAvailable() ? false : 'no Docker engine on this machine';
const KUBECTL = '/usr/bin/kubectl';

const manifest = (replicas: number) => `
apiVersion: apps/v1
kind: Deployment
metadata: { name: spread }
spec:
  replicas: ${replicas}
  selector: { matchLabels: { app: spread } }
  template:
    metadata: { labels: { app: spread } }
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: web
        image: awesomeproduct/awsprdct:amazing
        imagePullPolicy: IfNotPresent
`;

interface NodeMeta {
  name: string;
  annotations?: Record<string, string>;
}

interface PodJson {
  metadata: { name: string; deletionTimestamp?: string };
  spec: { nodeName?: string };
  status: { phase: string; containerStatuses?: { ready: boolean }[] };
}

describe('cordon, drain, uncordon and node remove with real agents', { skip }, () => {
  // 100-149: clear of the ranges other e2e files pick from.
  const octet = crypto.randomInt(100, 150);
  const agents = [2, 3, 4].map((n) => new TestAgent(`127.0.${octet}.${n}`, `ops-${n}-${octet}`));
  const [a, b, c] = agents;
  // Started by the promotion step: a voter in c's place, then a non-voter.
  const late = [5, 6].map((n) => new TestAgent(`127.0.${octet}.${n}`, `ops-${n}-${octet}`));

  before(async () => {
    await a.start();
    const token = a.joinToken();
    assert.ok(token, `no join token printed:\n${a.logs()}`);
    for (const agent of [b, c]) await agent.joinTo(`${a.address}:7946`, token).start();
    await waitFor(
      () => agents.every((x) => nodeNames(x).length === 3),
      30_000,
      () => agents.map((x) => x.cli(['get', 'nodes']).stdout).join('\n'),
    );
  });
  after(() => Promise.all([...agents, ...late].map((x) => x.cleanup())));

  const roles = (agent: TestAgent): Record<string, string> => {
    const r = agent.cli(['get', 'nodes', '-o', 'json']);
    if (r.code !== 0) return {};
    const items = JSON.parse(r.stdout).items as { metadata: NodeMeta }[];
    const role = (m: NodeMeta) => m.annotations?.['flotilla.io/role'] ?? '';
    return Object.fromEntries(items.map((n) => [n.metadata.name, role(n.metadata)]));
  };
  const nodeNames = (agent: TestAgent): string[] => {
    const r = agent.cli(['get', 'nodes', '-o', 'json']);
    if (r.code !== 0) return [];
    return (JSON.parse(r.stdout).items as PodJson[]).map((n) => n.metadata.name).sort();
  };
  const pods = (agent: TestAgent): PodJson[] => {
    const r = agent.cli(['get', 'pods', '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout).items;
  };
  const isReady = (p: PodJson) =>
    !p.metadata.deletionTimestamp && p.status.containerStatuses?.[0]?.ready === true;
  const readyOn = (agent: TestAgent, count: number) => {
    const all = pods(agent);
    return all.length === count && all.every(isReady);
  };
  const nodesOfPods = (agent: TestAgent) => new Set(pods(agent).map((p) => p.spec.nodeName));
  const statusLine = (agent: TestAgent, node: string) =>
    agent
      .cli(['get', 'nodes'])
      .stdout.split('\n')
      .find((l) => l.startsWith(`${node} `)) ?? '';
  const apply = (agent: TestAgent, replicas: number) => {
    const r = agent.cli(['apply', '-f', '-'], manifest(replicas));
    assert.equal(r.code, 0, r.stderr);
  };

  test('a cordoned node shows SchedulingDisabled and gets no new pods', async () => {
    const r = a.cli(['cordon', c.name]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `node/${c.name} cordoned\n`);
    await waitFor(
      () => /\bReady,SchedulingDisabled\b/.test(statusLine(b, c.name)),
      10_000,
      () => b.cli(['get', 'nodes']).stdout,
    );

    apply(b, 4);
    await waitFor(
      () => readyOn(a, 4),
      60_000,
      () => JSON.stringify(pods(a), null, 1),
    );
    assert.equal(nodesOfPods(a).has(c.name), false);
  });

  test('drain evicts the pods of a node, which end up elsewhere', async () => {
    const before = pods(a)
      .filter((p) => p.spec.nodeName === b.name)
      .map((p) => p.metadata.name);
    assert.ok(before.length > 0, 'the spread deployment has pods on the drained node');

    const r = a.cli(['drain', b.name, '--timeout', '60s']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines[0], `node/${b.name} cordoned`);
    assert.deepEqual(lines.slice(1, -1).sort(), before.map((n) => `pod/${n} evicted`).sort());
    assert.equal(lines.at(-1), `node/${b.name} drained`);

    await waitFor(
      () => readyOn(a, 4),
      60_000,
      () => JSON.stringify(pods(a), null, 1),
    );
    assert.deepEqual([...nodesOfPods(a)], [a.name]);
  });

  test('uncordoned nodes take new pods again', async () => {
    for (const node of [b.name, c.name]) {
      const r = a.cli(['uncordon', node]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `node/${node} uncordoned\n`);
    }
    assert.doesNotMatch(statusLine(a, b.name), /SchedulingDisabled/);
    apply(a, 7);
    await waitFor(
      () => readyOn(a, 7),
      60_000,
      () => JSON.stringify(pods(a), null, 1),
    );
    const used = nodesOfPods(a);
    assert.ok(used.has(b.name) || used.has(c.name), `pods only on ${[...used]}`);
  });

  const noKubectl = !fs.existsSync(KUBECTL) && 'kubectl is not installed';
  const kubectlStep = 'kubectl cordon, drain and uncordon work on the same field and pods';
  test(kubectlStep, { skip: noKubectl }, () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-ops-kubectl-'));
    try {
      const kubeconfig = path.join(home, 'config');
      fs.writeFileSync(kubeconfig, a.cli(['kubeconfig']).stdout);
      const kubectl = (args: string[]) => {
        const env = { ...process.env, HOME: home };
        const r = spawnSync(KUBECTL, ['--kubeconfig', kubeconfig, ...args], {
          env,
          encoding: 'utf8',
          timeout: 60_000,
        });
        assert.equal(r.status, 0, `kubectl ${args.join(' ')}: ${r.stderr}`);
        return r.stdout;
      };
      assert.equal(kubectl(['cordon', b.name]), `node/${b.name} cordoned\n`);
      assert.match(statusLine(a, b.name), /\bReady,SchedulingDisabled\b/);
      assert.match(kubectl(['get', 'node', b.name]), /Ready,SchedulingDisabled/);
      const drained = kubectl(['drain', b.name, '--timeout=60s']);
      assert.match(drained, new RegExp(`node/${b.name} drained`));
      assert.equal(nodesOfPods(a).has(b.name), false);
      assert.equal(kubectl(['uncordon', b.name]), `node/${b.name} uncordoned\n`);
      assert.doesNotMatch(statusLine(a, b.name), /SchedulingDisabled/);
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });

  test('node remove takes a node off every member and its pods move', async () => {
    const self = a.cli(['node', 'remove', a.name]);
    assert.notEqual(self.code, 0);
    assert.match(self.stderr, /server you are talking to/);

    const r = a.cli(['node', 'remove', c.name]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `node/${c.name} removed\n`);
    const rest = [a.name, b.name].sort();
    await waitFor(
      () => [a, b].every((x) => nodeNames(x).join() === rest.join()),
      20_000,
      () => [a, b].map((x) => x.cli(['get', 'nodes']).stdout).join('\n'),
    );
    await waitFor(
      () => readyOn(b, 7),
      60_000,
      () => JSON.stringify(pods(b), null, 1),
    );
    assert.equal(nodesOfPods(b).has(c.name), false);
  });

  test('the removed server, restarted with its data, exits saying it was removed', async () => {
    await c.kill();
    const [cmd, ...pre] = flotillaCommand();
    const args = [
      ...pre,
      'agent',
      '--data-dir',
      c.dataDir,
      '--name',
      c.name,
      '--listen',
      `${c.address}:7946`,
      '--join',
      `${a.address}:7946`,
      '--token',
      a.joinToken()!,
    ];
    const env = { ...process.env, FLOTILLA_LOG_FORMAT: 'json' };
    const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000, env });
    assert.equal(r.status, 1, `${r.signal ?? ''}\n${r.stdout}\n${r.stderr}`);
    const errorLines = r.stderr.split('\n').filter((l) => l.startsWith('error: '));
    assert.equal(errorLines.length, 1, r.stderr);
    assert.match(errorLines[0], /was removed from the cluster.*--join/);
  });

  test('a voter dead for 30 s is replaced by the Ready non-voter', async () => {
    const token = a.joinToken()!;
    for (const agent of late) await agent.joinTo(`${a.address}:7946`, token).start();
    const [d, e] = late;
    await waitFor(
      () => roles(a)[e.name] === 'non-voter' && roles(a)[d.name] === 'voter',
      30_000,
      () => a.cli(['get', 'nodes']).stdout,
    );
    const leader = Object.entries(roles(a)).find(([, role]) => role === 'leader')?.[0];
    const victim = [a, b, d].find((x) => x.name !== leader)!;
    const observer = [a, b, d].find((x) => x !== victim)!;
    await victim.kill();
    // Gossip marks it dead in about 2 s; promotion waits DEFAULT_PROMOTE_AFTER_MS (30 s).
    await waitFor(
      () => roles(observer)[e.name] === 'voter',
      60_000,
      () => observer.cli(['get', 'nodes']).stdout,
    );
    await waitFor(
      () => roles(observer)[victim.name] === 'non-voter',
      10_000,
      () => observer.cli(['get', 'nodes']).stdout,
    );
  });
});
