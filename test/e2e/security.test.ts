/**
 * Two real agents (127.0.X.2 founds, 127.0.X.3 joins) with certificates
 * that live ten seconds: traffic between nodes is mutual TLS with the
 * cluster's CA, join tokens that are wrong, revoked or expired are refused
 * (and the refusal logged), the remote API wants a token and honours its
 * role, and certificates are renewed while the cluster keeps serving
 * requests and writes. The steps share the cluster and run in order.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { formatToken, parseToken } from '../../src/auth/token-format';
import {
  TestAgent,
  dockerAvailable,
  flotillaCommand,
  httpGet,
  markerManifest,
  waitFor,
} from './harness';

const skip = dockerAvailable() ? false : 'no Docker engine on this machine';
const FIXTURES = path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'pki');
const LIFETIME_SECONDS = 10;

const MANIFEST = `
apiVersion: apps/v1
kind: Deployment
metadata: { name: secure-web }
spec:
  replicas: 2
  selector: { matchLabels: { app: secure-web } }
  template:
    metadata: { labels: { app: secure-web } }
    spec:
      containers:
      - name: web
        image: awesomeproduct/awsprdct:amazing
        imagePullPolicy: IfNotPresent
        ports: [{ containerPort: 3000 }]
---
apiVersion: v1
kind: Service
metadata: { name: secure-web }
spec:
  type: NodePort
  selector: { app: secure-web }
  ports: [{ name: http, port: 80, targetPort: 3000 }]
`;

/** A Deployment of no replicas whose annotation each step changes: a real replicated write. */
const marker = (step: number) => markerManifest('secure-marker', step);

interface Reply {
  status: number;
  body: any;
}

/** One HTTPS request on a new connection. */
function httpsCall(
  address: string,
  method: string,
  urlPath: string,
  opts: { ca?: string; cert?: string; key?: string; token?: string; body?: unknown } = {},
): Promise<Reply> {
  const [host, port] = address.split(':');
  const text = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host,
        port: Number(port),
        method,
        path: urlPath,
        agent: false,
        timeout: 10_000,
        ...(opts.ca ? { ca: opts.ca } : { rejectUnauthorized: false }),
        ...(opts.cert ? { cert: opts.cert, key: opts.key } : {}),
        headers: {
          'content-type': 'application/json',
          ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
        },
      },
      (res) => {
        let raw = '';
        res.on('data', (c: Buffer) => (raw += c.toString()));
        res.on('end', () => {
          let body: unknown = raw;
          try {
            body = JSON.parse(raw);
          } catch {
            // Not JSON: kept as text.
          }
          resolve({ status: res.statusCode ?? 0, body });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(text);
  });
}

/** The certificate `address` presents, verified against `ca`. */
function servedCertificate(address: string, ca: string): Promise<tls.PeerCertificate> {
  const [host, port] = address.split(':');
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host, port: Number(port), ca }, () => {
      const cert = socket.getPeerCertificate();
      socket.end();
      resolve(cert);
    });
    socket.on('error', reject);
  });
}

/** Sends CONNECT `target` to `address` over TLS; resolves with the answer's status. */
function connectThrough(
  address: string,
  target: string,
  opts: { ca: string; cert?: string; key?: string },
): Promise<number> {
  const [host, port] = address.split(':');
  return new Promise((resolve, reject) => {
    const req = https.request({
      host,
      port: Number(port),
      method: 'CONNECT',
      path: target,
      agent: false,
      ...opts,
    });
    req.on('connect', (res, socket) => {
      socket.destroy();
      resolve(res.statusCode ?? 0);
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

/** A request over the agent's unix socket (the admin's way in). */
function socketCall(agent: TestAgent, method: string, urlPath: string, body?: unknown) {
  return new Promise<Reply>((resolve, reject) => {
    const socketPath = path.join(agent.dataDir, 'flotilla.sock');
    const req = http.request(
      { socketPath, method, path: urlPath, headers: { 'content-type': 'application/json' } },
      (res) => {
        let raw = '';
        res.on('data', (c: Buffer) => (raw += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(raw) }));
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

describe('a cluster secured by its own CA', { skip }, () => {
  const octet = crypto.randomInt(20, 40);
  const a = new TestAgent(`127.0.${octet}.2`, `secure-a-${octet}`);
  const b = new TestAgent(`127.0.${octet}.3`, `secure-b-${octet}`);
  const listenOf = (agent: TestAgent) => `${agent.address}:7946`;
  const pki = (agent: TestAgent, file: string) =>
    fs.readFileSync(path.join(agent.dataDir, 'pki', file), 'utf8');
  let ca = '';
  let nodePort = 0;

  /** Starts an agent that tries to join with `token`; resolves with its exit and output. */
  const tryJoin = (token: string, last: number) => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-e2e-badjoin-'));
    try {
      const [cmd, ...pre] = flotillaCommand();
      const args = [
        ...pre,
        'agent',
        '--data-dir',
        dataDir,
        '--name',
        `intruder-${last}`,
        '--listen',
        `127.0.${octet}.${last}:7946`,
        '--join',
        listenOf(a),
        '--token',
        token,
      ];
      const env = { ...process.env, FLOTILLA_LOG_FORMAT: 'json' };
      return spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000, env });
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  };

  before(async () => {
    for (const agent of [a, b])
      agent.env = { FLOTILLA_CERT_LIFETIME_SECONDS: `${LIFETIME_SECONDS}` };
    await a.start();
    const token = a.joinToken();
    assert.ok(token, `no join token printed:\n${a.logs()}`);
    await b.joinTo(listenOf(a), token).start();
    ca = pki(a, 'ca.crt');
    const applied = a.cli(['apply', '-f', '-'], MANIFEST);
    assert.equal(applied.code, 0, applied.stderr);
    const svc = JSON.parse(a.cli(['get', 'service', 'secure-web', '-o', 'json']).stdout);
    nodePort = svc.spec.ports[0].nodePort;
    await waitFor(
      async () => {
        const answers = await Promise.all(
          [a, b].map((n) =>
            httpGet(`http://${n.address}:${nodePort}/`).then(
              () => true,
              () => false,
            ),
          ),
        );
        return answers.every(Boolean);
      },
      60_000,
      () => a.cli(['get', 'pods', '-o', 'wide']).stdout,
    );
  });
  after(() => Promise.all([a, b].map((agent) => agent.cleanup())));

  test('members talk mutual TLS with the cluster CA and refuse anything else', async () => {
    assert.equal(pki(b, 'ca.crt'), ca, 'the joiner holds the cluster CA');
    const served = await servedCertificate(listenOf(b), ca);
    assert.equal(served.subject.CN, b.name);
    assert.equal(fs.statSync(path.join(b.dataDir, 'pki', 'node.key')).mode & 0o777, 0o600);

    // Plain HTTP gets no HTTP answer at all.
    const plain = await fetch(`http://${listenOf(a)}/cluster/v1/raft`, { method: 'POST' }).then(
      (r) => r.status,
      () => 'no answer',
    );
    assert.equal(plain, 'no answer');
    // TLS without a certificate, or with one from another CA: refused.
    const batch = { from: 'x', address: '127.0.0.1:1', messages: [] };
    const bare = await httpsCall(listenOf(a), 'POST', '/cluster/v1/raft', { body: batch });
    assert.equal(bare.status, 403);
    const foreign = await httpsCall(listenOf(a), 'POST', '/cluster/v1/raft', {
      body: batch,
      cert: fs.readFileSync(path.join(FIXTURES, 'other-node.crt'), 'utf8'),
      key: fs.readFileSync(path.join(FIXTURES, 'other-node.key'), 'utf8'),
    });
    assert.equal(foreign.status, 403);
    // A member's own certificate is accepted.
    const member = await httpsCall(listenOf(a), 'POST', '/cluster/v1/raft', {
      ca,
      body: { from: b.name, address: listenOf(b), messages: [] },
      cert: pki(b, 'node.crt'),
      key: pki(b, 'node.key'),
    });
    assert.equal(member.status, 204, JSON.stringify(member.body));
    // Certify takes callers without a certificate, so it reads little: a
    // large body is cut off (413, or a reset while the client still writes)
    // instead of being read and then refused for its token.
    const big = await httpsCall(listenOf(a), 'POST', '/cluster/v1/certify', {
      ca,
      body: { token: 'x'.repeat(100_000) },
    }).then(
      (r) => String(r.status),
      (err: NodeJS.ErrnoException) => err.code ?? err.message,
    );
    assert.ok(['413', 'ECONNRESET', 'EPIPE'].includes(big), big);
  });

  test("a server's tunnel reaches only its own pods, and only for members", async () => {
    const pods = JSON.parse(a.cli(['get', 'pods', '-o', 'json']).stdout).items as any[];
    const podOn = (agent: TestAgent) => pods.find((p) => p.spec.nodeName === agent.name);
    const onA = podOn(a).status.podIP as string;
    const onB = podOn(b).status.podIP as string;
    const member = { cert: pki(b, 'node.crt'), key: pki(b, 'node.key') };
    assert.equal(await connectThrough(listenOf(a), `${onA}:3000`, { ca, ...member }), 200);
    assert.equal(await connectThrough(listenOf(a), `${onB}:3000`, { ca, ...member }), 403);
    assert.equal(await connectThrough(listenOf(a), `${a.address}:7946`, { ca, ...member }), 403);
    assert.equal(await connectThrough(listenOf(a), `${onA}:3000`, { ca }), 403);
  });

  test('wrong, revoked and expired join tokens are refused, and the leader logs why', async () => {
    const founders = parseToken(a.joinToken()!);
    const expiring = await socketCall(a, 'POST', '/apis/flotilla.io/v1/tokens', { ttlSeconds: 1 });
    assert.equal(expiring.status, 201, JSON.stringify(expiring.body));
    const forged = await socketCall(a, 'POST', '/apis/flotilla.io/v1/tokens', {
      description: 'x\nID  ROLE  fake',
    });
    assert.equal(forged.status, 422, JSON.stringify(forged.body));
    const revoked = await socketCall(a, 'POST', '/apis/flotilla.io/v1/tokens', {});
    const gone = await socketCall(a, 'DELETE', `/apis/flotilla.io/v1/tokens/${revoked.body.id}`);
    assert.equal(gone.status, 200, JSON.stringify(gone.body));
    await new Promise((resolve) => setTimeout(resolve, 1500));

    const cases = [
      { token: formatToken({ ...founders, secret: 'f'.repeat(32) }), reason: 'unknown' },
      { token: revoked.body.token as string, reason: 'unknown' },
      { token: expiring.body.token as string, reason: 'expired' },
    ];
    for (const [i, c] of cases.entries()) {
      const r = tryJoin(c.token, 10 + i);
      assert.equal(r.status, 1, `${c.reason}: ${r.stderr}`);
      assert.match(r.stderr, /^error: join refused/m);
      await waitFor(
        () => a.logs().includes(`"name":"intruder-${10 + i}"`),
        5000,
        () => a.logs().slice(-2000),
      );
      const line = a
        .logs()
        .split('\n')
        .find((l) => l.includes(`"name":"intruder-${10 + i}"`))!;
      assert.match(line, /join refused: bad token/);
      assert.match(line, new RegExp(`"reason":"${c.reason}"`));
    }
    // A token pinning another CA is refused by the joiner before it sends anything.
    const foreign = tryJoin(formatToken({ ...founders, caHash: '0'.repeat(64) }), 20);
    assert.equal(foreign.status, 1);
    assert.match(foreign.stderr, /does not present the CA that the token pins/);
    const nodes = JSON.parse(a.cli(['get', 'nodes', '-o', 'json']).stdout).items;
    assert.deepEqual(nodes.map((n: any) => n.metadata.name).sort(), [a.name, b.name].sort());
  });

  test('the remote API: 401 without a token, 403 read-only writes, admin writes', async () => {
    const make = async (role: string) =>
      (await socketCall(a, 'POST', '/apis/flotilla.io/v1/tokens', { role })).body.token as string;
    const admin = await make('admin');
    const readOnly = await make('read-only');
    const deployments = '/apis/apps/v1/namespaces/default/deployments';
    const body = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'remote-write' },
      spec: {
        replicas: 0,
        selector: { matchLabels: { app: 'remote-write' } },
        template: {
          metadata: { labels: { app: 'remote-write' } },
          spec: { containers: [{ name: 'c', image: 'awesomeproduct/awsprdct:amazing' }] },
        },
      },
    };
    for (const agent of [a, b]) {
      const none = await httpsCall(listenOf(agent), 'GET', deployments, { ca });
      assert.equal(none.status, 401);
      const read = await httpsCall(listenOf(agent), 'GET', deployments, { ca, token: readOnly });
      assert.equal(read.status, 200);
      const denied = await httpsCall(listenOf(agent), 'POST', deployments, {
        ca,
        token: readOnly,
        body,
      });
      assert.equal(denied.status, 403);
    }
    const created = await httpsCall(listenOf(b), 'POST', deployments, { ca, token: admin, body });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const removed = await httpsCall(listenOf(a), 'DELETE', `${deployments}/remote-write`, {
      ca,
      token: admin,
    });
    assert.equal(removed.status, 200, JSON.stringify(removed.body));
  });

  test('certificates living 10 s are renewed while requests and writes go on', async () => {
    const first = await Promise.all([a, b].map((n) => servedCertificate(listenOf(n), ca)));
    let requests = 0;
    let writes = 0;
    const failures: string[] = [];
    const until = Date.now() + (LIFETIME_SECONDS + 4) * 1000;
    const load = (async () => {
      while (Date.now() < until) {
        for (const n of [a, b]) {
          requests += 1;
          await httpGet(`http://${n.address}:${nodePort}/`).catch((err: Error) =>
            failures.push(`request to ${n.name}: ${err.message}`),
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    const served: tls.PeerCertificate[] = [];
    // Writes through the follower travel to the leader over mutual TLS.
    for (let i = 0; Date.now() < until; i++) {
      const follower = i % 2 === 0 ? b : a;
      const r = follower.cli(['apply', '-f', '-'], marker(i));
      writes += 1;
      if (r.code !== 0) failures.push(`write ${i} on ${follower.name}: ${r.stderr}`);
      for (const n of [a, b]) served.push(await servedCertificate(listenOf(n), ca));
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    await load;
    assert.deepEqual(failures, [], `${failures.length} of ${requests + writes} failed`);
    const last = await Promise.all([a, b].map((n) => servedCertificate(listenOf(n), ca)));
    for (const [i, n] of [a, b].entries()) {
      assert.notEqual(
        last[i].serialNumber,
        first[i].serialNumber,
        `${n.name} kept its certificate`,
      );
      assert.match(n.logs(), /certificate renewed/);
    }
    // Every certificate seen during the run was within its validity when seen.
    for (const cert of served) assert.ok(new Date(cert.valid_to).getTime() > Date.now() - 15_000);
    const renewed = new Set(served.map((c) => c.serialNumber)).size;
    assert.ok(renewed >= 4, `only ${renewed} certificates seen`);
  });

  test('a removed member is refused everywhere; wiped, it comes back by name', async () => {
    const removed = a.cli(['node', 'remove', b.name]);
    assert.equal(removed.code, 0, removed.stderr);
    const oldCert = { cert: pki(b, 'node.crt'), key: pki(b, 'node.key') };
    const api = await httpsCall(listenOf(a), 'GET', '/api/v1/nodes', { ca, ...oldCert });
    assert.equal(api.status, 401);
    const raft = await httpsCall(listenOf(a), 'POST', '/cluster/v1/raft', {
      ca,
      ...oldCert,
      body: { from: b.name, address: listenOf(b), messages: [] },
    });
    assert.equal(raft.status, 403);
    const pods = JSON.parse(a.cli(['get', 'pods', '-o', 'json']).stdout).items as any[];
    const onA = pods.find((p) => p.spec.nodeName === a.name && p.status.podIP);
    assert.ok(onA, 'no pod on the founder');
    const target = `${onA.status.podIP}:3000`;
    assert.equal(await connectThrough(listenOf(a), target, { ca, ...oldCert }), 403);

    // The removed server itself says so, at once, instead of waiting for a quorum.
    await waitFor(
      () => /was removed from the cluster/.test(b.cli(['apply', '-f', '-'], marker(99)).stderr),
      10_000,
      () => b.cli(['apply', '-f', '-'], marker(99)).stderr,
    );
    await b.kill('SIGTERM');
    fs.rmSync(b.dataDir, { recursive: true, force: true });
    fs.mkdirSync(b.dataDir, { mode: 0o700 });
    const token = await socketCall(a, 'POST', '/apis/flotilla.io/v1/tokens', {});
    await b.joinTo(listenOf(a), token.body.token).start();
    await waitFor(
      () => {
        const nodes = JSON.parse(a.cli(['get', 'nodes', '-o', 'json']).stdout).items as any[];
        const back = nodes.find((n) => n.metadata.name === b.name);
        return back?.status.conditions.some((c: any) => c.type === 'Ready' && c.status === 'True');
      },
      30_000,
      () => a.cli(['get', 'nodes']).stdout + b.logs().slice(-2000),
    );
  });
});
