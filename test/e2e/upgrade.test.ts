/**
 * Agent restarts and a binary replacement on a two-node cluster of real
 * agents (127.0.X.2 founder, 127.0.X.3 joiner) under steady load: neither
 * may restart a healthy container (same IDs, same StartedAt, no restart
 * counted) and not one request through a NodePort may fail. Node B is
 * restarted as is, then from a copy of the executable; node A, whose
 * NodePort takes the load, is restarted from the copy only after the load
 * has moved to B, because its own balancer runs inside the agent process.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import {
  ROOT,
  TestAgent,
  dockerAvailable,
  dockerGet,
  flotillaCommand,
  httpGet,
  markerManifest,
  waitFor,
} from './harness';

const skip = dockerAvailable() ? false : 'no Docker engine on this machine';

const MANIFEST = `
apiVersion: apps/v1
kind: Deployment
metadata: { name: upgrade-web }
spec:
  replicas: 2
  selector: { matchLabels: { app: upgrade-web } }
  template:
    metadata: { labels: { app: upgrade-web } }
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: web
        image: awesomeproduct/awsprdct:amazing
        imagePullPolicy: IfNotPresent
        ports: [{ containerPort: 3000 }]
        readinessProbe:
          httpGet: { path: /, port: 3000 }
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: { name: upgrade-web }
spec:
  type: NodePort
  selector: { app: upgrade-web }
  ports: [{ name: http, port: 80, targetPort: 3000 }]
`;

/** A Deployment of no replicas whose annotation each step changes: a real replicated write. */
const marker = (step: number) => markerManifest('upgrade-marker', step);

interface PodJson {
  metadata: { name: string; uid: string; deletionTimestamp?: string };
  spec: { nodeName?: string };
  status: {
    phase: string;
    containerStatuses?: { ready: boolean; restartCount: number; containerID?: string }[];
  };
}

interface NodeJson {
  metadata: { name: string; annotations?: Record<string, string> };
  status?: { conditions?: { type: string; status: string }[] };
}

/** What must not change across a restart: one line per container. */
interface ContainerRecord {
  id: string;
  startedAt: string;
  restartCount: number;
  running: boolean;
}

/** One request of the load: when it started, where it went, and why it failed. */
interface Outcome {
  at: number;
  target: string;
  error?: string;
}

/**
 * The load's code, run in a worker thread: the test's CLI calls use
 * spawnSync, which would stall a generator on the main thread for hundreds
 * of milliseconds at a time. Open loop: a request every `intervalMs` on a
 * fresh connection (no keep-alive) whatever the earlier ones are doing, so a
 * stall shows up as failures rather than as a lower rate; in-flight requests
 * are capped so that a hang cannot pile up.
 */
const LOAD_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const { intervalMs, maxInFlight, timeoutMs } = workerData;
let target = workerData.target;
const outcomes = [];
const inFlight = new Set();
const probe = (url) => new Promise((resolve) => {
  const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
    res.resume();
    res.on('end', () => resolve(res.statusCode === 200 ? undefined : 'HTTP ' + res.statusCode));
    res.on('error', (err) => resolve(String(err)));
  });
  req.on('timeout', () => req.destroy(new Error('timeout after ' + timeoutMs + ' ms')));
  req.on('error', (err) => resolve(String(err)));
});
const timer = setInterval(() => {
  const at = Date.now();
  const to = target;
  if (inFlight.size >= maxInFlight) {
    outcomes.push({ at, target: to, error: 'over ' + maxInFlight + ' requests in flight' });
    return;
  }
  const done = probe(to).then((error) => {
    outcomes.push(error === undefined ? { at, target: to } : { at, target: to, error });
    inFlight.delete(done);
  });
  inFlight.add(done);
}, intervalMs);
parentPort.on('message', (m) => {
  if (m.target) target = m.target;
  if (m.stop) {
    clearInterval(timer);
    Promise.all([...inFlight]).then(() => parentPort.postMessage(outcomes));
  }
});
`;

/** A bounded load of 1000 / intervalMs requests a second, in a worker thread. */
class Load {
  outcomes: Outcome[] = [];
  private readonly worker: Worker;
  private stopped?: Promise<void>;

  constructor(target: string, intervalMs = 50) {
    this.worker = new Worker(LOAD_WORKER, {
      eval: true,
      workerData: { target, intervalMs, maxInFlight: 40, timeoutMs: 5000 },
    });
  }

  /** Sends the following requests to `url`. */
  retarget(url: string): void {
    this.worker.postMessage({ target: url });
  }

  /** Stops firing, waits for the requests in flight, and collects every outcome. */
  stop(): Promise<void> {
    this.stopped ??= new Promise<void>((resolve, reject) => {
      this.worker.once('message', (outcomes: Outcome[]) => {
        this.outcomes = outcomes.sort((x, y) => x.at - y.at);
        void this.worker.terminate().then(() => resolve());
      });
      this.worker.once('error', reject);
      this.worker.postMessage({ stop: true });
    });
    return this.stopped;
  }

  failures(): Outcome[] {
    return this.outcomes.filter((o) => o.error !== undefined);
  }
}

/**
 * A second copy of the executable on disk, in a fresh directory: the single
 * executable itself, or the compiled build/src tree with node_modules linked
 * beside it and a wrapper that execs node on it, so that the agent's code
 * really is loaded from other files than the ones it was started from.
 */
function copyExecutable(dir: string): string {
  const [cmd, ...args] = flotillaCommand();
  if (args.length === 0) {
    const copy = path.join(dir, 'flotilla');
    fs.copyFileSync(cmd, copy);
    fs.chmodSync(copy, 0o755);
    return copy;
  }
  const copiedSrc = path.join(dir, 'build', 'src');
  fs.cpSync(path.join(ROOT, 'build', 'src'), copiedSrc, { recursive: true });
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  const wrapper = path.join(dir, 'flotilla');
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  // exec keeps the pid, so the harness's signals reach node itself.
  fs.writeFileSync(
    wrapper,
    `#!/bin/sh\nexec ${quote(cmd)} ${quote(path.join(copiedSrc, 'main.js'))} "$@"\n`,
    { mode: 0o755 },
  );
  return wrapper;
}

/** The command line of the agent process running on `dataDir`, from /proc. */
function agentProcess(dataDir: string): { pid: number; exe: string; argv: string[] } | undefined {
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').slice(0, -1);
      const at = argv.indexOf('--data-dir');
      if (argv.includes('agent') && at >= 0 && argv[at + 1] === dataDir) {
        return { pid: Number(entry), exe: fs.readlinkSync(`/proc/${entry}/exe`), argv };
      }
    } catch {
      // The process ended while we looked.
    }
  }
  return undefined;
}

describe('agent restarts and a binary replacement keep containers and requests', { skip }, () => {
  // 50-99: clear of the third octets other e2e files and freeLoopbackAddress use.
  const octet = crypto.randomInt(50, 100);
  const a = new TestAgent(`127.0.${octet}.2`, `upg-a-${octet}`);
  const b = new TestAgent(`127.0.${octet}.3`, `upg-b-${octet}`);
  const agents = [a, b];
  const copyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-e2e-upgrade-'));
  const originalBin = process.env.FLOTILLA_E2E_BIN;
  let load: Load | undefined;

  before(async () => {
    await a.start();
    // The token line is printed just after the socket starts answering.
    await waitFor(
      () => a.joinToken() !== undefined,
      5000,
      () => a.logs(),
    );
    const token = a.joinToken();
    assert.ok(token, `no join token printed:\n${a.logs()}`);
    await b.joinTo(`${a.address}:7946`, token).start();
  });
  after(async () => {
    await load?.stop();
    if (originalBin === undefined) delete process.env.FLOTILLA_E2E_BIN;
    else process.env.FLOTILLA_E2E_BIN = originalBin;
    await Promise.all(agents.map((x) => x.cleanup()));
    fs.rmSync(copyDir, { recursive: true, force: true });
  });

  const nodes = (agent: TestAgent): NodeJson[] => {
    const r = agent.cli(['get', 'nodes', '-o', 'json']);
    return r.code === 0 ? JSON.parse(r.stdout).items : [];
  };
  const pods = (agent: TestAgent): PodJson[] => {
    const r = agent.cli(['get', 'pods', '-l', 'app=upgrade-web', '-o', 'json']);
    return r.code === 0 ? JSON.parse(r.stdout).items : [];
  };
  const isReady = (p: PodJson) =>
    !p.metadata.deletionTimestamp &&
    p.status.phase === 'Running' &&
    p.status.containerStatuses?.[0]?.ready === true;
  const leaderSeenBy = (agent: TestAgent) =>
    nodes(agent)
      .filter((n) => n.metadata.annotations?.['flotilla.io/role'] === 'leader')
      .map((n) => n.metadata.name);
  const bothReady = (agent: TestAgent) => {
    const seen = nodes(agent);
    return (
      seen.length === 2 &&
      seen.every((n) =>
        n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
      )
    );
  };
  const describeCluster = () =>
    agents
      .map((x) => `${x.name}:\n${x.cli(['get', 'nodes']).stdout}${x.cli(['get', 'pods']).stdout}`)
      .join('\n');

  let nodePort = 0;
  let podsBefore: PodJson[] = [];
  let containersBefore = new Map<string, ContainerRecord>();

  /** Every container of both agents, by ID, as Docker reports it now. */
  const containerRecords = async (): Promise<Map<string, ContainerRecord>> => {
    const records = new Map<string, ContainerRecord>();
    for (const agent of agents) {
      for (const c of await agent.containers(true)) {
        const info = (await dockerGet(`/containers/${c.Id}/json`)) as any;
        records.set(c.Id, {
          id: c.Id,
          startedAt: info.State.StartedAt,
          restartCount: info.RestartCount,
          running: info.State.Running,
        });
      }
    }
    return records;
  };

  /** Both agents agree on one leader, both nodes Ready, both pods ready and unchanged. */
  const settled = async (): Promise<boolean> => {
    const leaders = agents.map(leaderSeenBy);
    if (!leaders.every((l) => l.length === 1 && l[0] === leaders[0][0])) return false;
    if (!agents.every(bothReady)) return false;
    const names = podsBefore
      .map((p) => p.metadata.uid)
      .sort()
      .join();
    for (const agent of agents) {
      const now = pods(agent);
      if (now.length !== 2 || !now.every(isReady)) return false;
      if (
        now
          .map((p) => p.metadata.uid)
          .sort()
          .join() !== names
      )
        return false;
    }
    return true;
  };

  /** Answers on `agent`'s NodePort come from both pods. */
  const reachesBothPods = async (agent: TestAgent): Promise<boolean> => {
    const hosts = new Set<string>();
    for (let i = 0; i < 20 && hosts.size < 2; i++) {
      const body = await httpGet(`http://${agent.address}:${nodePort}/`, 2000).catch(() => '');
      const host = /host=(\S+)/.exec(body)?.[1];
      if (host) hosts.add(host);
    }
    return hosts.size === 2;
  };

  /**
   * A change written through `writer` is committed and seen by every agent:
   * the restarted agent is back in the cluster, not just serving its own copy
   * of the state.
   */
  let step = 0;
  const writesCommit = async (writer: TestAgent): Promise<void> => {
    step += 1;
    await waitFor(
      () => writer.cli(['apply', '-f', '-'], marker(step)).code === 0,
      30_000,
      () =>
        `no write through ${writer.name}: ${writer.cli(['apply', '-f', '-'], marker(step)).stderr}`,
    );
    const seen = (agent: TestAgent) => {
      const r = agent.cli(['get', 'deployment', 'upgrade-marker', '-o', 'json']);
      if (r.code !== 0) return undefined;
      const d = JSON.parse(r.stdout);
      return (d.items?.[0] ?? d).metadata.annotations?.step;
    };
    await waitFor(
      () => agents.every((x) => seen(x) === String(step)),
      15_000,
      () => agents.map((x) => `${x.name} sees step ${seen(x)}`).join(', '),
    );
  };

  /** SIGTERM, wait for the exit (bounded), start again on the same data dir, wait until settled. */
  const restart = async (agent: TestAgent, bin?: string): Promise<number> => {
    const started = Date.now();
    const exited = await Promise.race([
      agent.kill('SIGTERM').then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), 15_000).unref()),
    ]);
    assert.ok(exited, `${agent.name} outlived SIGTERM by 15 s:\n${agent.logs().slice(-3000)}`);
    // The harness picks its executable from FLOTILLA_E2E_BIN at each start.
    if (bin) process.env.FLOTILLA_E2E_BIN = bin;
    try {
      await agent.start();
    } finally {
      if (originalBin === undefined) delete process.env.FLOTILLA_E2E_BIN;
      else process.env.FLOTILLA_E2E_BIN = originalBin;
    }
    await writesCommit(agent);
    await waitFor(settled, 30_000, describeCluster);
    await waitFor(
      () => reachesBothPods(agent),
      15_000,
      () => `NodePort on ${agent.address}`,
    );
    return Date.now() - started;
  };

  test('two nodes, two replicas one per node, NodePort answering from both', async () => {
    await waitFor(() => agents.every(bothReady), 30_000, describeCluster);
    const r = b.cli(['apply', '-f', '-'], MANIFEST);
    assert.equal(r.code, 0, r.stderr);
    await waitFor(() => pods(a).filter(isReady).length === 2, 60_000, describeCluster);
    podsBefore = pods(a);
    assert.deepEqual(
      podsBefore.map((p) => p.spec.nodeName).sort(),
      [a.name, b.name].sort(),
      'one replica per node',
    );
    const svc = JSON.parse(a.cli(['get', 'service', 'upgrade-web', '-o', 'json']).stdout);
    nodePort = (svc.items?.[0] ?? svc).spec.ports[0].nodePort;
    for (const agent of agents) {
      await waitFor(
        () => reachesBothPods(agent),
        20_000,
        () => `NodePort on ${agent.address}`,
      );
    }
    await writesCommit(a);
    containersBefore = await containerRecords();
    assert.equal(containersBefore.size, 2, JSON.stringify([...containersBefore.values()]));
    assert.ok([...containersBefore.values()].every((c) => c.running));
    // The pods name the very containers Docker lists.
    const podContainers = podsBefore
      .map((p) => p.status.containerStatuses?.[0]?.containerID?.replace(/^docker:\/\//, ''))
      .sort();
    assert.deepEqual(podContainers, [...containersBefore.keys()].sort());
  });

  const scenario = 'restart B, B from a copied binary, then A from it: nothing restarts or fails';
  test(scenario, async (t) => {
    assert.ok(nodePort > 0, 'the setup step failed');
    const copy = copyExecutable(copyDir);
    const urlOf = (agent: TestAgent) => `http://${agent.address}:${nodePort}/`;
    load = new Load(urlOf(a));
    await new Promise((r) => setTimeout(r, 1500));

    const plain = await restart(b);
    t.diagnostic(`B restarted and settled in ${plain} ms`);
    const replaced = await restart(b, copy);
    t.diagnostic(`B restarted from ${copy} and settled in ${replaced} ms`);
    const running = agentProcess(b.dataDir);
    assert.ok(running, 'no process runs B');
    assert.ok(
      running.exe === copy || running.argv.some((arg) => arg.startsWith(copyDir)),
      `B does not run from the copy: ${running.exe} ${running.argv.join(' ')}`,
    );

    // A's NodePort is served by A's agent process: the load moves to B first.
    load.retarget(urlOf(b));
    await new Promise((r) => setTimeout(r, 1000));
    const founder = await restart(a, copy);
    t.diagnostic(`A restarted from the copy and settled in ${founder} ms`);
    load.retarget(urlOf(a));
    await new Promise((r) => setTimeout(r, 1500));
    await load.stop();

    const containersAfter = await containerRecords();
    assert.deepEqual(
      [...containersAfter.keys()].sort(),
      [...containersBefore.keys()].sort(),
      'a container was recreated',
    );
    for (const [id, before] of containersBefore) {
      assert.deepEqual(containersAfter.get(id), before, `container ${id} was restarted`);
    }
    const podsAfter = pods(a);
    assert.ok(podsAfter.every(isReady), JSON.stringify(podsAfter));
    assert.deepEqual(
      podsAfter.map((p) => [p.metadata.uid, p.spec.nodeName]).sort(),
      podsBefore.map((p) => [p.metadata.uid, p.spec.nodeName]).sort(),
    );
    for (const p of podsAfter) assert.equal(p.status.containerStatuses?.[0]?.restartCount, 0);

    const total = load.outcomes.length;
    const failures = load.failures();
    const first = load.outcomes[0]?.at ?? 0;
    const spanS = ((load.outcomes.at(-1)?.at ?? first) - first) / 1000;
    t.diagnostic(
      `requests: ${total} over ${spanS.toFixed(1)} s (${(total / spanS).toFixed(1)}/s, ` +
        `keep-alive off), failed: ${failures.length}`,
    );
    // The generator must really have run at its rate across every restart.
    assert.ok(total >= spanS * 20 * 0.75 && spanS > 5, `only ${total} requests in ${spanS} s`);
    assert.deepEqual(
      failures.map((f) => `+${f.at - first} ms ${f.target}: ${f.error}`),
      [],
      `${failures.length} of ${total} requests failed`,
    );
  });
});
