/**
 * A real network partition: three agents on 127.0.X.2/.3/.4 roll a
 * Deployment from :amazing to :v2, and halfway through the leader is cut
 * off from the other two by iptables rules on the loopback interface (TCP
 * and UDP, both directions). The cut-off leader must stop acting and refuse
 * writes with "no quorum"; the majority must elect a leader and finish the
 * rollout; after healing, exactly four v2 containers must run, none twice.
 * Needs Docker and root (iptables); the steps share the cluster and run in
 * order. Every rule carries this run's comment, so cleanup removes exactly
 * those rules and no others.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  TestAgent,
  dockerAvailable,
  dockerGet,
  flotillaCommand,
  waitFor,
  type CliResult,
} from './harness';

const OLD_IMAGE = 'awesomeproduct/awsprdct:amazing';
const NEW_IMAGE = 'awesomeproduct/awsprdct:v2';
const ROLE = 'flotilla.io/role';
const RULE_COMMENT = `flotilla-test-${crypto.randomBytes(4).toString('hex')}`;

/** Why the file cannot run here, or false. */
function skipReason(): string | false {
  if (!dockerAvailable()) return 'no Docker engine on this machine';
  const probe = spawnSync('iptables', ['-S', 'INPUT'], { stdio: 'ignore' });
  return probe.status === 0 ? false : 'iptables is not usable here (needs root)';
}
const skip = skipReason();

// minReadySeconds and maxUnavailable 0 make each of the four steps take
// a few seconds, so the cut lands in the middle of the rollout.
const DEPLOYMENT = `
apiVersion: apps/v1
kind: Deployment
metadata: { name: parted }
spec:
  replicas: 4
  minReadySeconds: 2
  strategy: { type: RollingUpdate, rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } }
  selector: { matchLabels: { app: parted } }
  template:
    metadata: { labels: { app: parted } }
    spec:
      terminationGracePeriodSeconds: 3
      containers:
      - { name: web, image: "${OLD_IMAGE}", ports: [{ containerPort: 3000 }] }
`;

interface PodJson {
  metadata: { name: string; deletionTimestamp?: string };
  spec: { nodeName?: string; containers: { image: string }[] };
  status: { phase: string; containerStatuses?: { ready: boolean }[] };
}

interface NodeJson {
  metadata: { name: string; annotations?: Record<string, string> };
}

interface ContainerJson {
  Id: string;
  Image: string;
  State: string;
  Labels: Record<string, string>;
}

/** One pino record of an agent's JSON log. */
interface LogLine {
  time: number;
  msg: string;
  [field: string]: unknown;
}

/** Runs iptables; throws with its stderr when it fails. */
function iptables(args: string[]): void {
  const r = spawnSync('iptables', args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `iptables ${args.join(' ')}: ${r.stderr}`);
}

/** Drops every packet between `a` and each of `others`, in both directions. */
function cutOff(a: string, others: string[]): void {
  for (const b of others) {
    for (const [src, dst] of [
      [a, b],
      [b, a],
    ]) {
      const match = ['-s', src, '-d', dst, '-m', 'comment', '--comment', RULE_COMMENT];
      iptables(['-I', 'INPUT', ...match, '-j', 'DROP']);
    }
  }
}

/** Removes the rules carrying this run's comment, and only those. */
function removeOwnRules(): number {
  const listed = spawnSync('iptables', ['-S', 'INPUT'], { encoding: 'utf8' });
  const own = (listed.stdout ?? '')
    .split('\n')
    .filter((line) => line.startsWith('-A INPUT ') && line.includes(`--comment ${RULE_COMMENT}`));
  for (const line of own) {
    spawnSync('iptables', ['-D', ...line.split(/\s+/).slice(1)], { stdio: 'ignore' });
  }
  return own.length;
}

function ownRuleCount(): number {
  const listed = spawnSync('iptables', ['-S', 'INPUT'], { encoding: 'utf8' });
  return (listed.stdout ?? '').split('\n').filter((l) => l.includes(RULE_COMMENT)).length;
}

/** A CLI call that does not block the event loop, so polling can go on meanwhile. */
function cliAsync(agent: TestAgent, args: string[]): Promise<CliResult> {
  const [cmd, ...pre] = flotillaCommand();
  const env = { ...process.env };
  if (process.env.FLOTILLA_E2E_PATH) env.PATH = process.env.FLOTILLA_E2E_PATH;
  const child = spawn(cmd, [...pre, '--data-dir', agent.dataDir, ...args], { env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) =>
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr })),
  );
}

/** The agent's JSON log records; other output (the join token line) is skipped. */
function logLines(agent: TestAgent): LogLine[] {
  const lines: LogLine[] = [];
  for (const text of agent.logs().split('\n')) {
    if (!text.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(text) as LogLine);
    } catch {
      // A record cut in half by a chunk boundary is still being written.
    }
  }
  return lines;
}

const isReady = (p: PodJson) =>
  p.status.phase === 'Running' && p.status.containerStatuses?.[0]?.ready === true;
const imageOf = (p: PodJson) => p.spec.containers[0].image;

describe('a leader cut off during a rolling update', { skip }, () => {
  const octet = crypto.randomInt(150, 200);
  const agents = [2, 3, 4].map((n) => new TestAgent(`127.0.${octet}.${n}`, `part-${n}-${octet}`));
  let oldLeader: TestAgent;
  let majority: TestAgent[];
  let cutAt = 0;
  let newLeaderName = '';

  const removeOnExit = () => removeOwnRules();
  const removeOnSignal = (signal: NodeJS.Signals) => {
    removeOwnRules();
    process.kill(process.pid, signal);
  };

  const nodesSeenBy = (agent: TestAgent): NodeJson[] | undefined => {
    const r = agent.cli(['get', 'nodes', '-o', 'json']);
    return r.code === 0 ? JSON.parse(r.stdout).items : undefined;
  };
  const leaderSeenBy = (agent: TestAgent): string | undefined => {
    const leaders = (nodesSeenBy(agent) ?? []).filter(
      (n) => n.metadata.annotations?.[ROLE] === 'leader',
    );
    return leaders.length === 1 ? leaders[0].metadata.name : undefined;
  };
  const agreedLeader = (group: TestAgent[]) => {
    const seen = group.map(leaderSeenBy);
    return seen[0] !== undefined && seen.every((l) => l === seen[0]) ? seen[0] : undefined;
  };
  const pods = (agent: TestAgent): PodJson[] => {
    const r = agent.cli(['get', 'pods', '-l', 'app=parted', '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout).items;
  };
  const podSummary = (agent: TestAgent) =>
    JSON.stringify(
      pods(agent).map((p) => [p.metadata.name, p.spec.nodeName, imageOf(p), p.status.phase]),
    );
  const rolledOut = (agent: TestAgent) => {
    const now = pods(agent);
    return now.length === 4 && now.every((p) => isReady(p) && imageOf(p) === NEW_IMAGE);
  };
  const allContainers = async (): Promise<ContainerJson[]> => {
    const labels = agents.map((a) => `io.flotilla.test-run=${a.runId}`);
    const lists = await Promise.all(
      labels.map((label) => {
        const filters = encodeURIComponent(JSON.stringify({ label: [label] }));
        return dockerGet(`/containers/json?all=1&filters=${filters}`);
      }),
    );
    return (lists as ContainerJson[][]).flat();
  };

  before(async () => {
    process.once('exit', removeOnExit);
    process.once('SIGINT', removeOnSignal);
    process.once('SIGTERM', removeOnSignal);
    const [first] = agents;
    await first.start();
    const token = first.joinToken();
    assert.ok(token, `no join token printed:\n${first.logs()}`);
    for (const agent of agents.slice(1)) {
      await agent.joinTo(`${first.address}:7946`, token).start();
    }
  });

  after(async () => {
    removeOwnRules();
    process.off('exit', removeOnExit);
    process.off('SIGINT', removeOnSignal);
    process.off('SIGTERM', removeOnSignal);
    await Promise.all(agents.map((a) => a.cleanup()));
  });

  test('the cluster runs four ready pods of the old version', async () => {
    await waitFor(
      () => agreedLeader(agents) !== undefined,
      30_000,
      () => agents.map((a) => a.cli(['get', 'nodes']).stdout).join('\n'),
    );
    oldLeader = agents.find((a) => a.name === agreedLeader(agents))!;
    majority = agents.filter((a) => a !== oldLeader);
    const applied = oldLeader.cli(['apply', '-f', '-'], DEPLOYMENT);
    assert.equal(applied.code, 0, applied.stderr);
    // Available, not just ready: old pods still inside minReadySeconds
    // count as unavailable and a rolling update would replace them all at once.
    const available = () => {
      const r = oldLeader.cli(['get', 'deployment', 'parted', '-o', 'json']);
      return r.code === 0 && JSON.parse(r.stdout).status?.availableReplicas === 4;
    };
    await waitFor(available, 60_000, () => podSummary(oldLeader));
  });

  const CUT = 'cut off mid-rollout, the leader stops leading and refuses a write with "no quorum"';
  test(CUT, async (t) => {
    const set = oldLeader.cli(['set', 'image', 'deployment/parted', `web=${NEW_IMAGE}`]);
    assert.equal(set.code, 0, set.stderr);
    await waitFor(
      () => pods(oldLeader).some((p) => imageOf(p) === NEW_IMAGE && p.status.phase === 'Running'),
      30_000,
      () => podSummary(oldLeader),
    );
    assert.ok(!rolledOut(oldLeader), 'the rollout finished before the cut');

    cutAt = Date.now();
    cutOff(
      oldLeader.address,
      majority.map((a) => a.address),
    );
    assert.equal(ownRuleCount(), 4);
    // Sent at once, so that it most likely lands in the old leader's log
    // in its old term, before it notices it is alone.
    const write = cliAsync(oldLeader, ['scale', 'deployment', 'parted', '--replicas=6']);

    const lapsed = (l: LogLine) => l.msg === 'stopped leading' && l.time >= cutAt;
    await waitFor(
      () => logLines(oldLeader).some(lapsed),
      8_000,
      () => JSON.stringify(logLines(oldLeader).slice(-20)),
    );
    await waitFor(
      () => leaderSeenBy(oldLeader) !== oldLeader.name,
      8_000,
      () => oldLeader.cli(['get', 'nodes']).stdout,
    );
    const stopped = logLines(oldLeader).find(lapsed)!;

    const r = await write;
    const failedAfterMs = Date.now() - cutAt;
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /no quorum/);
    t.diagnostic(`the write failed after ${failedAfterMs} ms: ${r.stderr.trim()}`);
    assert.ok(failedAfterMs < 20_000, `the write took ${failedAfterMs} ms to fail`);

    // Whatever a reconcile had under way when the lease lapsed, no new
    // rollout step may start afterwards.
    const steps = logLines(oldLeader).filter(
      (l) => (l.msg === 'creating pods' || l.msg === 'terminating pods') && l.time > stopped.time,
    );
    assert.deepEqual(steps, []);
    t.diagnostic(`lease lapsed ${stopped.time - cutAt} ms after the cut`);
  });

  test('the majority elects a new leader and finishes the rollout', async () => {
    await waitFor(
      () => {
        const next = agreedLeader(majority);
        if (next === undefined || next === oldLeader.name) return false;
        newLeaderName = next;
        return true;
      },
      20_000,
      () => majority.map((a) => a.cli(['get', 'nodes']).stdout).join('\n'),
    );
    const newLeader = majority.find((a) => a.name === newLeaderName)!;
    await waitFor(
      () => rolledOut(newLeader),
      60_000,
      () => podSummary(newLeader),
    );
    const placed = pods(newLeader).map((p) => p.spec.nodeName);
    assert.ok(!placed.includes(oldLeader.name), `pods left on the cut-off node: ${placed}`);
    assert.equal(ownRuleCount(), 4, 'the partition held for the whole step');
  });

  test('after healing the old leader follows and exactly four v2 containers run', async () => {
    assert.equal(removeOwnRules(), 4);
    await waitFor(
      () => agreedLeader(agents) === newLeaderName,
      30_000,
      () => agents.map((a) => a.cli(['get', 'nodes']).stdout).join('\n'),
    );
    const roles = new Map(
      (nodesSeenBy(oldLeader) ?? []).map((n) => [n.metadata.name, n.metadata.annotations?.[ROLE]]),
    );
    assert.equal(roles.get(oldLeader.name), 'voter');

    let seen = '';
    const exact = async () => {
      const all = await allContainers();
      const pods = all.map((c) => c.Labels['io.flotilla.pod']);
      seen = JSON.stringify(all.map((c) => [pods[all.indexOf(c)], c.Image, c.State]));
      return (
        all.length === 4 &&
        all.every((c) => c.State === 'running' && c.Image === NEW_IMAGE) &&
        new Set(pods).size === 4
      );
    };
    await waitFor(exact, 45_000, () => seen);
    for (const agent of agents) {
      await waitFor(
        () => rolledOut(agent),
        20_000,
        () => `${agent.name}: ${podSummary(agent)}`,
      );
      const got = agent.cli(['get', 'deployment', 'parted', '-o', 'json']);
      const deployment = JSON.parse(got.stdout);
      assert.equal(deployment.spec.replicas, 4, `the stale-term scale reached ${agent.name}`);
    }
    const live = new Set(pods(oldLeader).map((p) => p.metadata.name));
    const labelled = (await allContainers()).map((c) => c.Labels['io.flotilla.pod']);
    assert.deepEqual([...live].sort(), [...labelled].sort());
  });
});
