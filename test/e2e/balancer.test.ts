/**
 * The balancer under change, on one real agent with real Docker: a steady
 * load against the NodePort sees no failed request and no reset while a
 * Deployment rolls over to a new image or scales down, a long download
 * started before an update arrives whole, and a container reaches a
 * ClusterIP Service through its NAME_SERVICE_HOST/PORT variables. The steps
 * share one agent and run in order.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import http from 'node:http';
import { after, before, describe, test, type TestContext } from 'node:test';
import { TestAgent, dockerAvailable, freeLoopbackAddress, httpGet, waitFor } from './harness';

const skip = dockerAvailable() ? false : 'no Docker engine on this machine';

// Requests per second, split evenly over the client kinds of a load.
const RATE = 200;
const DOWNLOAD_BLOCKS = 30;
const BLOCK_BYTES = 65536;

interface PodJson {
  metadata: {
    name: string;
    labels: Record<string, string>;
    annotations?: Record<string, string>;
    deletionTimestamp?: string;
  };
  spec: { containers: { image: string; env?: { name: string; value: string }[] }[] };
  status: {
    containerStatuses?: { ready: boolean; state?: { waiting?: { reason?: string } } }[];
  };
}

function webManifest(image: string, replicas: number): string {
  return `
apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
spec:
  replicas: ${replicas}
  selector: { matchLabels: { app: web } }
  strategy:
    type: RollingUpdate
    rollingUpdate: { maxSurge: 25%, maxUnavailable: 25% }
  template:
    metadata: { labels: { app: web } }
    spec:
      containers:
      - name: web
        image: ${image}
        imagePullPolicy: IfNotPresent
---
apiVersion: v1
kind: Service
metadata: { name: web }
spec:
  type: NodePort
  selector: { app: web }
  ports:
  - { name: http, port: 80, targetPort: 3000 }
  - { name: raw, port: 81, targetPort: 80 }
`;
}

function slowManifest(revision: string, replicas: number): string {
  return `
apiVersion: apps/v1
kind: Deployment
metadata: { name: slow }
spec:
  replicas: ${replicas}
  selector: { matchLabels: { app: slow } }
  template:
    metadata: { labels: { app: slow } }
    spec:
      terminationGracePeriodSeconds: 90
      containers:
      - name: slow
        image: flotilla-test/slowstream:1
        imagePullPolicy: IfNotPresent
        env: [{ name: REVISION, value: "${revision}" }]
---
apiVersion: v1
kind: Service
metadata: { name: slow }
spec:
  type: NodePort
  selector: { app: slow }
  ports: [{ name: http, port: 8080, targetPort: 8080 }]
`;
}

/** What a load run saw. */
interface LoadSummary {
  sent: number;
  ok: number;
  failures: string[];
  /** Answers per version= value in the body. */
  versions: Map<string, number>;
}

/**
 * Sends GETs at a fixed rate, alternating over `clients`, until stopped;
 * every answer other than a complete 200 is recorded as a failure.
 */
class SteadyLoad {
  private readonly summary: LoadSummary = { sent: 0, ok: 0, failures: [], versions: new Map() };
  private readonly pending = new Set<Promise<void>>();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly url: string,
    private readonly clients: http.Agent[],
    private readonly rate: number,
  ) {}

  start(): void {
    const perTick = Math.max(1, Math.round(this.rate / 50));
    this.timer = setInterval(() => {
      for (let i = 0; i < perTick; i++) this.fire();
    }, 20);
  }

  async stop(): Promise<LoadSummary> {
    clearInterval(this.timer);
    while (this.pending.size > 0) await Promise.all([...this.pending]);
    return this.summary;
  }

  private fire(): void {
    const agent = this.clients[this.summary.sent++ % this.clients.length];
    const done = this.request(agent).then(
      (body) => {
        this.summary.ok++;
        const version = /version=(\S+)/.exec(body)?.[1] ?? 'none';
        this.summary.versions.set(version, (this.summary.versions.get(version) ?? 0) + 1);
      },
      (err: Error & { code?: string }) => {
        this.summary.failures.push(`${err.code ?? ''} ${err.message}`.trim());
      },
    );
    this.pending.add(done);
    void done.finally(() => this.pending.delete(done));
  }

  private request(agent: http.Agent): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = http.get(this.url, { agent, timeout: 10_000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('error', reject);
        res.on('end', () => {
          if (res.statusCode === 200 && res.complete) resolve(body);
          else reject(new Error(`HTTP ${res.statusCode}: ${body.trim()}`));
        });
      });
      req.on('timeout', () => req.destroy(new Error('timed out after 10 s')));
      req.on('error', reject);
    });
  }
}

/** One keep-alive client and one that opens a connection per request. */
function httpClients(): http.Agent[] {
  return [
    new http.Agent({ keepAlive: true, maxSockets: 16 }),
    new http.Agent({ keepAlive: false, maxSockets: Infinity }),
  ];
}

/** Downloads `url` and checks every 64 KiB block carries its own number. */
function download(url: string): Promise<{ bytes: number; badBlocks: number[] }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        if (res.statusCode !== 200 || !res.complete) {
          reject(new Error(`HTTP ${res.statusCode}, complete ${res.complete}`));
          return;
        }
        const body = Buffer.concat(chunks);
        const badBlocks: number[] = [];
        for (let i = 0; i * BLOCK_BYTES < body.length; i++) {
          const line = `${String(i).padStart(15, '0')}\n`;
          const block = body.subarray(i * BLOCK_BYTES, (i + 1) * BLOCK_BYTES);
          if (!block.equals(Buffer.from(line.repeat(BLOCK_BYTES / 16)))) badBlocks.push(i);
        }
        resolve({ bytes: body.length, badBlocks });
      });
    });
    req.on('error', reject);
  });
}

describe('the balancer drops nothing while a Deployment changes', { skip }, () => {
  const agent = new TestAgent(freeLoopbackAddress());
  const ports = { http: 0, raw: 0, slow: 0 };

  before(() => agent.start());
  after(() => agent.cleanup());

  const apply = (manifest: string): void => {
    const r = agent.cli(['apply', '-f', '-'], manifest);
    assert.equal(r.code, 0, r.stderr);
  };
  const pods = (app: string): PodJson[] => {
    const r = agent.cli(['get', 'pods', '-l', `app=${app}`, '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout).items;
  };
  /** True once exactly `n` pods of `app` exist, all ready and matching. */
  const settled = (app: string, n: number, ok: (p: PodJson) => boolean = () => true) => {
    const list = pods(app);
    return (
      list.length === n &&
      list.every(
        (p) => !p.metadata.deletionTimestamp && p.status.containerStatuses?.[0]?.ready && ok(p),
      )
    );
  };
  const nodePorts = (name: string): Record<string, number> => {
    const r = agent.cli(['get', 'services', name, '-o', 'json']);
    const svc = JSON.parse(r.stdout);
    const spec = (svc.items?.[0] ?? svc).spec;
    return Object.fromEntries(spec.ports.map((p: any) => [p.name, p.nodePort]));
  };
  const containersOf = async (deployment: string) =>
    (await agent.containers(true)).filter((c) => c.Labels['io.flotilla.deployment'] === deployment);
  const webLoads = () => [
    new SteadyLoad(`http://${agent.address}:${ports.http}/`, httpClients(), RATE),
    new SteadyLoad(`http://${agent.address}:${ports.raw}/`, httpClients(), RATE / 4),
  ];
  /** Requests that each take a second, so that some are always in flight. */
  const streamLoad = () =>
    new SteadyLoad(`http://${agent.address}:${ports.slow}/cgi-bin/stream?2`, httpClients(), 10);

  /**
   * Runs `change` to Deployment `app` under `loads` until `done` and until
   * only `replicas` containers are left: old containers are removed only
   * after their drain, so the load runs through every drain.
   */
  const underLoad = async <T extends Record<string, SteadyLoad>>(
    app: string,
    loads: T,
    change: () => void,
    done: () => boolean,
    replicas: number,
  ): Promise<Record<keyof T, LoadSummary>> => {
    const entries = Object.entries(loads);
    const stopAll = async () => {
      const seen = await Promise.all(entries.map(([, l]) => l.stop()));
      return Object.fromEntries(entries.map(([name], i) => [name, seen[i]]));
    };
    for (const [, load] of entries) load.start();
    try {
      await new Promise((r) => setTimeout(r, 1000));
      change();
      await waitFor(done, 90_000, () => JSON.stringify(pods(app), null, 1));
      await waitFor(async () => (await containersOf(app)).length === replicas, 90_000);
      await new Promise((r) => setTimeout(r, 1000));
    } catch (err) {
      await stopAll();
      throw err;
    }
    return (await stopAll()) as Record<keyof T, LoadSummary>;
  };
  const assertNoFailures = (t: TestContext, seen: Record<string, LoadSummary>) => {
    for (const [name, s] of Object.entries(seen)) {
      t.diagnostic(`${name}: ${s.sent} sent, versions ${JSON.stringify([...s.versions])}`);
      assert.deepEqual(s.failures, [], `${name}: ${s.failures.length} of ${s.sent} failed`);
      assert.equal(s.ok, s.sent);
    }
  };
  const revisionIs = (revision: string) => (p: PodJson) =>
    p.spec.containers[0].env?.[0]?.value === revision;

  test('4 web replicas and 2 slow ones start and answer on their NodePorts', async () => {
    apply(webManifest('awesomeproduct/awsprdct:amazing', 4));
    apply(slowManifest('1', 2));
    await waitFor(
      () => settled('web', 4) && settled('slow', 2),
      60_000,
      () => JSON.stringify([...pods('web'), ...pods('slow')], null, 1),
    );
    const web = nodePorts('web');
    ports.http = web.http;
    ports.raw = web.raw;
    ports.slow = nodePorts('slow').http;
    assert.match(await httpGet(`http://${agent.address}:${ports.http}/`), /version=amazing/);
    assert.match(await httpGet(`http://${agent.address}:${ports.raw}/`), /version=amazing/);
    assert.match(await httpGet(`http://${agent.address}:${ports.slow}/`), /revision=1/);
  });

  test('a rolling update to v2 under load fails no request on either port', async (t) => {
    const isV2 = (p: PodJson) => p.spec.containers[0].image.endsWith(':v2');
    const [http80, raw] = webLoads();
    const seen = await underLoad(
      'web',
      { http: http80, raw },
      () => apply(webManifest('awesomeproduct/awsprdct:v2', 4)),
      () => settled('web', 4, isV2),
      4,
    );
    assertNoFailures(t, seen);
    for (const [name, s] of Object.entries(seen)) {
      assert.ok((s.versions.get('amazing') ?? 0) > 0, `${name} never saw the old version`);
      assert.ok((s.versions.get('v2') ?? 0) > 0, `${name} never saw v2`);
    }
  });

  test('a scale from 4 replicas to 1 under load fails no request on either port', async (t) => {
    const [http80, raw] = webLoads();
    const seen = await underLoad(
      'web',
      { http: http80, raw },
      () => apply(webManifest('awesomeproduct/awsprdct:v2', 1)),
      () => settled('web', 1),
      1,
    );
    assertNoFailures(t, seen);
  });

  test('rollout restart under load replaces pods, keeps the image, fails nothing', async (t) => {
    const before = new Set(pods('web').map((p) => p.metadata.name));
    const [http80, raw] = webLoads();
    const restarted = (p: PodJson) =>
      !before.has(p.metadata.name) &&
      Boolean(p.metadata.annotations?.['kubectl.kubernetes.io/restartedAt']) &&
      p.spec.containers[0].image.endsWith(':v2');
    const seen = await underLoad(
      'web',
      { http: http80, raw },
      () => {
        const r = agent.cli(['rollout', 'restart', 'deployment/web']);
        assert.equal(r.code, 0, r.stderr);
      },
      () => settled('web', 1, restarted),
      1,
    );
    assertNoFailures(t, seen);
  });

  test('a rollout to a missing image under load fails no request; undo restores it', async (t) => {
    const missing = 'awesomeproduct/awsprdct:does-not-exist';
    const [http80, raw] = webLoads();
    let stuckSince = 0;
    const stuck = () => {
      const list = pods('web');
      const pulling = list.some(
        (p) =>
          p.spec.containers[0].image === missing &&
          /ImagePull/.test(p.status.containerStatuses?.[0]?.state?.waiting?.reason ?? ''),
      );
      const old = list.filter(
        (p) => p.spec.containers[0].image.endsWith(':v2') && p.status.containerStatuses?.[0]?.ready,
      );
      if (!pulling || old.length !== 1) return false;
      stuckSince ||= Date.now();
      // Keep the load on for a while after the new pod got stuck.
      return Date.now() - stuckSince > 3000;
    };
    const seen = await underLoad(
      'web',
      { http: http80, raw },
      () => apply(webManifest(missing, 1)),
      stuck,
      1,
    );
    assertNoFailures(t, seen);
    const undo = agent.cli(['rollout', 'undo', 'deployment/web']);
    assert.equal(undo.code, 0, undo.stderr);
    await waitFor(
      () => settled('web', 1, (p) => p.spec.containers[0].image.endsWith(':v2')),
      60_000,
    );
  });

  test('a 30-second download started before an update arrives whole', async (t) => {
    const url = `http://${agent.address}:${ports.slow}/cgi-bin/stream?${DOWNLOAD_BLOCKS}`;
    const result = download(url);
    // One-second requests run all along, so that every drain has some in flight.
    const seen = await underLoad(
      'slow',
      { streams: streamLoad() },
      () => apply(slowManifest('2', 2)),
      () => settled('slow', 2, revisionIs('2')),
      2,
    );
    assertNoFailures(t, seen);

    const { bytes, badBlocks } = await result;
    assert.equal(bytes, DOWNLOAD_BLOCKS * BLOCK_BYTES);
    assert.deepEqual(badBlocks, []);
    assert.match(await httpGet(`http://${agent.address}:${ports.slow}/`), /revision=2/);
  });

  test('a scale-down under a load of one-second requests fails none', async (t) => {
    const seen = await underLoad(
      'slow',
      { streams: streamLoad() },
      () => apply(slowManifest('2', 1)),
      () => settled('slow', 1),
      1,
    );
    assertNoFailures(t, seen);
  });

  test('a container started after a ClusterIP Service reaches it by its variables', async () => {
    // A port no other test's Service uses: every agent serves ClusterIP on
    // the same bridge gateway address.
    const port = crypto.randomInt(20000, 29000);
    apply(`
apiVersion: v1
kind: Service
metadata: { name: web-inside }
spec:
  selector: { app: web }
  ports: [{ name: http, port: ${port}, targetPort: 3000 }]
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: probe }
spec:
  replicas: 1
  selector: { matchLabels: { app: probe } }
  template:
    metadata: { labels: { app: probe } }
    spec:
      containers:
      - { name: probe, image: "awesomeproduct/awsprdct:amazing", imagePullPolicy: IfNotPresent }
`);
    await waitFor(() => settled('probe', 1), 60_000);
    const [probe] = await containersOf('probe');
    const exec = (script: string) =>
      spawnSync('docker', ['exec', probe.Id, 'sh', '-c', script], { encoding: 'utf8' });

    const env = exec('echo $WEB_INSIDE_SERVICE_HOST $WEB_INSIDE_SERVICE_PORT_HTTP');
    const [host, named] = env.stdout.trim().split(' ');
    assert.match(host, /^\d+\.\d+\.\d+\.\d+$/, env.stdout + env.stderr);
    assert.equal(named, String(port));
    // busybox-static's wget crashes in its resolver; nc takes the address as it is.
    const get =
      'printf "GET / HTTP/1.0\\r\\n\\r\\n" | ' +
      'nc -w 5 $WEB_INSIDE_SERVICE_HOST $WEB_INSIDE_SERVICE_PORT';
    let answer = exec(get);
    // The listener opens with the Service; the container may have started first.
    for (let i = 0; i < 20 && !answer.stdout.includes('200 OK'); i++) {
      await new Promise((r) => setTimeout(r, 250));
      answer = exec(get);
    }
    const lines = agent
      .logs()
      .split('\n')
      .filter((l) => l.includes('web-inside'));
    assert.match(answer.stdout, /^HTTP\/1\.1 200 OK[\s\S]*version=v2/, lines.join('\n'));
  });
});
