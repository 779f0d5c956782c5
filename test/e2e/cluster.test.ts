/**
 * Three real agents form a Raft cluster on 127.0.X.2/.3/.4 and run the
 * AwesomeProduct example across it: one leader seen alike by all, pods
 * spread over the nodes, every node's balancer reaching every pod, a
 * dead follower's pods moved to the others (its stale containers removed
 * when it returns), a SIGKILLed leader replaced without losing
 * acknowledged changes, and a
 * clear "no quorum" error (not a hang) with two of three servers down.
 * The steps share the cluster and run in order.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { formatToken, parseToken } from '../../src/auth/token-format';
import { ROOT, TestAgent, dockerAvailable, flotillaCommand, httpGet, waitFor } from './harness';

const EXAMPLE = path.join(ROOT, 'examples', 'awesome-product.yaml');
const IMAGE = 'awesomeproduct/awsprdct:amazing';
const ROLE = 'flotilla.io/role';
const skip = dockerAvailable() ? false : 'no Docker engine on this machine';

interface NodeJson {
  metadata: { name: string; annotations?: Record<string, string> };
}

function roleOf(node: NodeJson): string | undefined {
  return node.metadata.annotations?.[ROLE];
}

interface PodJson {
  metadata: { name: string };
  spec: { nodeName?: string };
  status: { phase: string; containerStatuses?: { ready: boolean }[] };
}

/** GETs `url` and resolves with the body's length, or rejects on any failure. */
function fetchLength(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: 20_000 }, (res) => {
      let bytes = 0;
      res.on('data', (d: Buffer) => (bytes += d.length));
      res.on('end', () =>
        res.statusCode === 200 ? resolve(bytes) : reject(new Error(`HTTP ${res.statusCode}`)),
      );
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

const SLOW = `
apiVersion: apps/v1
kind: Deployment
metadata: { name: slow }
spec:
  replicas: 3
  selector: { matchLabels: { app: slow } }
  template:
    metadata: { labels: { app: slow } }
    spec:
      terminationGracePeriodSeconds: 60
      containers:
      - { name: slow, image: "flotilla-test/slowstream:1", imagePullPolicy: IfNotPresent }
---
apiVersion: v1
kind: Service
metadata: { name: slow }
spec:
  type: NodePort
  selector: { app: slow }
  ports: [{ name: http, port: 8080, targetPort: 8080 }]
`;

describe('three agents form a cluster', { skip }, () => {
  // 200-250 stays clear of freeLoopbackAddress's range used by other e2e files.
  const octet = crypto.randomInt(200, 250);
  const agents = [2, 3, 4].map((n) => new TestAgent(`127.0.${octet}.${n}`, `node-${n}-${octet}`));
  const [first] = agents;
  let nodePort = 0;

  before(async () => {
    await first.start();
    const token = first.joinToken();
    assert.ok(token, `no join token printed:\n${first.logs()}`);
    for (const agent of agents.slice(1)) {
      await agent.joinTo(`${first.address}:7946`, token).start();
    }
  });
  after(() => Promise.all(agents.map((a) => a.cleanup())));

  const nodesSeenBy = (agent: TestAgent): NodeJson[] | undefined => {
    const r = agent.cli(['get', 'nodes', '-o', 'json']);
    return r.code === 0 ? JSON.parse(r.stdout).items : undefined;
  };
  const leaderSeenBy = (agent: TestAgent): string | undefined => {
    const leaders = (nodesSeenBy(agent) ?? []).filter((n) => roleOf(n) === 'leader');
    return leaders.length === 1 ? leaders[0].metadata.name : undefined;
  };
  const pods = (agent: TestAgent): PodJson[] => {
    const r = agent.cli(['get', 'pods', '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout).items;
  };
  const isReady = (p: PodJson) =>
    p.status.phase === 'Running' && p.status.containerStatuses?.[0]?.ready === true;
  const readyPods = (agent: TestAgent) => pods(agent).filter(isReady);
  const hostsAnswering = async (url: string) => {
    const hosts = new Set<string>();
    for (let i = 0; i < 40 && hosts.size < 4; i++) {
      const body = await httpGet(url);
      hosts.add(/host=(\S+)/.exec(body)?.[1] ?? body);
    }
    return hosts;
  };
  const agreedLeader = (group: TestAgent[]) => {
    const seen = group.map(leaderSeenBy);
    return seen[0] !== undefined && seen.every((l) => l === seen[0]) ? seen[0] : undefined;
  };

  test('get nodes on each agent shows the same three nodes with exactly one leader', async () => {
    const names = agents.map((a) => a.name).sort();
    await waitFor(
      () =>
        agents.every((a) => (nodesSeenBy(a) ?? []).length === 3) &&
        agreedLeader(agents) !== undefined,
      20_000,
      () => agents.map((a) => a.cli(['get', 'nodes']).stdout).join('\n'),
    );
    for (const agent of agents) {
      const nodes = nodesSeenBy(agent)!;
      assert.deepEqual(nodes.map((n) => n.metadata.name).sort(), names);
      const roles = nodes.map((n) => n.metadata.annotations?.[ROLE]).sort();
      assert.deepEqual(roles, ['leader', 'voter', 'voter']);
    }
  });

  test('token create prints a new join token; a wrong one makes a joiner exit', async () => {
    const printed = first.cli(['token', 'create']);
    assert.equal(printed.code, 0, printed.stderr);
    const made = parseToken(printed.stdout.trim());
    const founders = parseToken(first.joinToken()!);
    assert.equal(made.caHash, founders.caHash);
    assert.notEqual(made.id, founders.id);
    const wrong = formatToken({ ...founders, secret: '0'.repeat(32) });

    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-e2e-refused-'));
    try {
      const [cmd, ...pre] = flotillaCommand();
      const args = [
        ...pre,
        'agent',
        '--data-dir',
        dataDir,
        '--name',
        `refused-${octet}`,
        '--listen',
        `127.0.${octet}.5:7946`,
        '--join',
        `${first.address}:7946`,
        '--token',
        wrong,
      ];
      const env = { ...process.env, FLOTILLA_LOG_FORMAT: 'json' };
      const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000, env });
      assert.equal(r.status, 1, r.stderr);
      const errorLines = r.stderr.split('\n').filter((l) => l.startsWith('error: '));
      assert.equal(errorLines.length, 1, r.stderr);
      assert.match(errorLines[0], /join refused/);

      // The right token but the name of a live member: refused, nothing taken over.
      const twinDir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-e2e-twin-'));
      const twin = [
        ...pre,
        'agent',
        '--data-dir',
        twinDir,
        '--name',
        agents[1].name,
        '--listen',
        `127.0.${octet}.6:7946`,
        '--join',
        `${first.address}:7946`,
        '--token',
        first.joinToken()!,
      ];
      const t = spawnSync(cmd, twin, { encoding: 'utf8', timeout: 30_000, env });
      fs.rmSync(twinDir, { recursive: true, force: true });
      assert.equal(t.status, 1, t.stderr);
      assert.match(t.stderr, new RegExp(`a member named "${agents[1].name}" is alive`));
      assert.equal(agreedLeader(agents) !== undefined, true);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('the example spreads 2/1/1 and every address reaches all 4 pods', async () => {
    const r = agents[1].cli(['apply', '-f', EXAMPLE]);
    assert.equal(r.code, 0, r.stderr);
    await waitFor(
      () => readyPods(first).length === 4,
      90_000,
      () => JSON.stringify(pods(first), null, 1),
    );
    const perNode = new Map<string, number>();
    for (const { spec } of pods(first)) {
      perNode.set(spec.nodeName!, (perNode.get(spec.nodeName!) ?? 0) + 1);
    }
    assert.deepEqual([...perNode.values()].sort(), [1, 1, 2]);

    const svc = JSON.parse(first.cli(['get', 'services', 'awesome-product', '-o', 'json']).stdout);
    nodePort = (svc.items?.[0] ?? svc).spec.ports[0].nodePort;
    for (const agent of agents) {
      const reachesAll = async (url: string) =>
        (await hostsAnswering(url).catch(() => new Set())).size === 4;
      await waitFor(
        () => reachesAll(`http://${agent.address}:${nodePort}/`),
        30_000,
        () => `NodePort on ${agent.address}`,
      );
      const hosts = await hostsAnswering(`http://${agent.address}/`);
      assert.equal(hosts.size, 4, `port 80 on ${agent.address}`);
    }
  });

  test('a restart of pods on other nodes cuts no request in flight through this one', async () => {
    const leader = agents.find((a) => a.name === agreedLeader(agents))!;
    const applied = leader.cli(['apply', '-f', '-'], SLOW);
    assert.equal(applied.code, 0, applied.stderr);
    const slowPods = () =>
      JSON.parse(leader.cli(['get', 'pods', '-l', 'app=slow', '-o', 'json']).stdout).items as any[];
    await waitFor(() => slowPods().filter(isReady).length === 3, 60_000);
    assert.equal(new Set(slowPods().map((p) => p.spec.nodeName)).size, 3, 'one per node');
    const svc = JSON.parse(leader.cli(['get', 'service', 'slow', '-o', 'json']).stdout);
    const port = (svc.items?.[0] ?? svc).spec.ports[0].nodePort;
    const url = `http://${leader.address}:${port}/cgi-bin/stream?2`;
    const before = new Set(slowPods().map((p) => p.metadata.name));

    // Three clients, each always with a two-second download in flight.
    let loading = true;
    const outcomes: string[] = [];
    const client = async () => {
      for (let i = 0; loading && i < 200; i++) {
        outcomes.push(
          await fetchLength(url).then(
            (n) => (n === 131072 ? 'ok' : `short ${n}`),
            (e) => String(e),
          ),
        );
      }
    };
    const clients = [client(), client(), client()];
    await new Promise((r) => setTimeout(r, 2500));
    const restarted = leader.cli(['rollout', 'restart', 'deployment/slow']);
    assert.equal(restarted.code, 0, restarted.stderr);
    await waitFor(
      () => {
        const now = slowPods();
        return now.length === 3 && now.every((p) => !before.has(p.metadata.name) && isReady(p));
      },
      120_000,
      () => JSON.stringify(slowPods().map((p) => [p.metadata.name, p.spec.nodeName])),
    );
    loading = false;
    await Promise.all(clients);
    const failures = outcomes.filter((o) => o !== 'ok');
    assert.ok(outcomes.length >= 6, `only ${outcomes.length} downloads ran`);
    assert.deepEqual(failures, []);
    assert.equal(leader.cli(['delete', 'deployment', 'slow']).code, 0);
  });

  test("a dead follower's pods move; on restart it removes its stale containers", async () => {
    const leaderName = agreedLeader(agents)!;
    const leader = agents.find((a) => a.name === leaderName)!;
    const victim = agents.find(
      (a) => a !== leader && pods(leader).some((p) => p.spec.nodeName === a.name),
    )!;
    const stale = (await victim.containers(false)).map((c) => c.Id);
    assert.ok(stale.length > 0, 'the victim runs no pod');

    // A steady, bounded load on the leader's NodePort for the whole step.
    const url = `http://${leader.address}:${nodePort}/`;
    const results: { at: number; ok: boolean }[] = [];
    let loading = true;
    const load = (async () => {
      for (let i = 0; loading && i < 3000; i++) {
        const at = Date.now();
        const ok = await httpGet(url, 1000).then(
          () => true,
          () => false,
        );
        results.push({ at, ok });
        await new Promise((r) => setTimeout(r, 50));
      }
    })();

    // As if the machine died: the agent is gone and its containers hang.
    await victim.kill('SIGKILL');
    assert.equal(spawnSync('docker', ['pause', ...stale]).status, 0);
    const killedAt = Date.now();
    await waitFor(
      () => {
        const now = pods(leader);
        return (
          now.filter(isReady).length === 4 && now.every((p) => p.spec.nodeName !== victim.name)
        );
      },
      60_000,
      () => JSON.stringify(pods(leader).map((p) => [p.spec.nodeName, p.status.phase])),
    );
    const movedAt = Date.now();
    const nodes = nodesSeenBy(leader) ?? [];
    const victimNode = nodes.find((n) => n.metadata.name === victim.name) as any;
    const ready = victimNode?.status?.conditions?.find((c: any) => c.type === 'Ready');
    assert.equal(ready?.status, 'False', 'the dead node is marked NotReady');

    await new Promise((r) => setTimeout(r, 2000));
    loading = false;
    await load;
    const failures = results.filter((r) => !r.ok);
    assert.ok(results.filter((r) => r.at > movedAt && r.ok).length > 5, 'load kept running');
    for (const f of failures) {
      assert.ok(f.at >= killedAt - 1000 && f.at < movedAt, `a failure outside the window`);
    }
    assert.equal((await hostsAnswering(url)).size, 4);

    // Back again: its pods now live elsewhere, so its containers must go.
    await victim.start();
    await waitFor(
      async () => (await victim.containers(true)).length === 0,
      30_000,
      () => victim.logs().slice(-3000),
    );
    await waitFor(() => {
      const node = (nodesSeenBy(leader) ?? []).find((n) => n.metadata.name === victim.name) as any;
      return node?.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True');
    }, 30_000);
  });

  test('after SIGKILL of the leader a new one keeps every change and takes writes', async () => {
    const leaderName = agreedLeader(agents)!;
    const leader = agents.find((a) => a.name === leaderName)!;
    const survivors = agents.filter((a) => a !== leader);
    const before = survivors[0].cli(['run', 'before-kill', `--image=${IMAGE}`, '--replicas=1']);
    assert.equal(before.code, 0, before.stderr);

    await leader.kill('SIGKILL');
    await waitFor(
      () => {
        const next = agreedLeader(survivors);
        return next !== undefined && next !== leaderName;
      },
      15_000,
      () => survivors.map((a) => a.cli(['get', 'nodes']).stdout).join('\n'),
    );
    for (const agent of survivors) {
      assert.equal(agent.cli(['get', 'deployment', 'before-kill']).code, 0);
    }
    const afterKill = survivors[1].cli(['run', 'after-kill', `--image=${IMAGE}`, '--replicas=1']);
    assert.equal(afterKill.code, 0, afterKill.stderr);

    await leader.start();
    await waitFor(
      () =>
        leader.cli(['get', 'deployment', 'after-kill']).code === 0 &&
        agreedLeader(agents) !== undefined,
      20_000,
      () => leader.logs().slice(-3000),
    );
    const roles = new Map((nodesSeenBy(leader) ?? []).map((n) => [n.metadata.name, roleOf(n)]));
    assert.equal(roles.get(leaderName), 'voter');
  });

  test('with two of three down a write fails with "no quorum"; the survivor serves', async () => {
    const [survivor, ...down] = agents;
    for (const agent of down) await agent.kill('SIGKILL');
    const started = Date.now();
    const r = survivor.cli(['apply', '-f', EXAMPLE]);
    const elapsed = Date.now() - started;
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /no quorum/);
    assert.ok(elapsed < 15_000, `the write took ${elapsed} ms to fail`);

    // The other servers' pods still run, but their agents (and so their
    // tunnels) are gone: the survivor serves from its own pods, without an error.
    const local = pods(survivor)
      .filter((p) => p.spec.nodeName === survivor.name && isReady(p))
      .map((p) => p.metadata.name)
      .sort();
    assert.ok(local.length > 0, 'no ready pod left on the survivor');
    const hosts = await hostsAnswering(`http://${survivor.address}:${nodePort}/`);
    assert.deepEqual([...hosts].sort(), local);
  });
});
