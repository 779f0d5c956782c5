#!/usr/bin/env node
'use strict';
/**
 * Measures, in one process on loopback, how fast the gossip layer and the
 * leader's node lifecycle react to a node that stops: three Membership
 * instances on 127.0.0.1, the "leader" one feeding a NodeLifecycle on a
 * temp store with a Service whose pods run on the node that is stopped.
 *
 *   npm run build && node scripts/bench/gossip-failover.js [rounds]
 *
 * For each round it prints the time from stopping the node to: every
 * survivor seeing it dead, the balancer's desired endpoints losing its pods
 * (NotReady), and its pods being removed (grace period). Ratios are given
 * against the goal (3 s to drop endpoints) and in probe periods (the
 * configured interval, read from a Membership started in the same run).
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { performance } = require('node:perf_hooks');

const build = path.resolve(__dirname, '..', '..', 'build', 'src');
const { Membership } = require(path.join(build, 'gossip', 'membership'));
const { NodeLifecycle } = require(path.join(build, 'agent', 'node-lifecycle'));
const { desiredServices } = require(path.join(build, 'agent', 'endpoints'));
const { openDatabase } = require(path.join(build, 'db', 'open'));
const { Store } = require(path.join(build, 'store', 'store'));
const { LocalCommandLog } = require(path.join(build, 'store', 'command-log'));
const { validateManifest } = require(path.join(build, 'manifest', 'validate'));

const GOAL_DROP_MS = 3000;
const GRACE_MS = 5000;
const silent = { debug() {}, info() {}, warn() {}, error() {}, child() { return silent; } };

function manifest(raw) {
  return validateManifest(raw, { file: 'bench' }).object;
}

function seedStore(log) {
  const now = new Date().toISOString();
  for (const name of ['n1', 'n2', 'n3']) {
    log.commit({
      op: 'registerNode',
      node: {
        metadata: { name, uid: '', resourceVersion: '', creationTimestamp: '' },
        status: {
          conditions: [{ type: 'Ready', status: 'True', reason: 'FlotillaReady' }],
          addresses: [], capacity: {}, allocatable: {}, nodeInfo: { kubeletVersion: 'v0' },
        },
      },
      uid: `uid-${name}`,
      now,
    });
  }
  const labels = { app: 'web' };
  const svc = manifest({
    apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' },
    spec: { type: 'NodePort', selector: labels, ports: [{ port: 80, targetPort: 8080 }] },
  });
  log.commit({ op: 'apply', objects: [svc], uids: ['uid-svc'], now });
  const pods = ['n1', 'n3', 'n3'].map((node, i) => ({
    apiVersion: 'v1', kind: 'Pod',
    metadata: {
      name: `web-${i}`, uid: `uid-web-${i}`, resourceVersion: '', creationTimestamp: now, labels,
    },
    spec: { containers: [{ name: 'main', image: 'x' }], nodeName: node },
    status: {},
  }));
  log.commit({ op: 'createPods', pods });
  pods.forEach((p, i) => log.commit({
    op: 'podStatus', name: p.metadata.name, uid: p.metadata.uid,
    status: {
      phase: 'Running', podIP: `172.17.0.${i + 2}`,
      conditions: [{ type: 'Ready', status: 'True' }],
    },
  }));
}

function until(check) {
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      if (check()) {
        clearInterval(timer);
        resolve(performance.now());
      }
    }, 5);
  });
}

async function round(secret) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-bench-gossip-'));
  const db = openDatabase(path.join(dir, 'state.db'));
  const store = new Store(db);
  const log = new LocalCommandLog(store);
  seedStore(log);
  const members = [];
  for (const name of ['n1', 'n2', 'n3']) {
    const m = new Membership({ name, host: '127.0.0.1', port: 0, secret });
    await m.start();
    if (members.length > 0) m.join([members[0].address()]);
    members.push(m);
  }
  const lifecycle = new NodeLifecycle({ store, log, logger: silent, graceMs: GRACE_MS });
  lifecycle.start();
  members[0].on('dead', (e) => lifecycle.memberDead(e.name));
  const alive = (m) => m.members().filter((x) => x.state === 'alive').length;
  await until(() => members.every((m) => alive(m) === 3));
  await new Promise((resolve) => setTimeout(resolve, 1000));

  const endpoints = () => desiredServices(store, '127.0.0.1')[0].ports[0].endpoints.length;
  const deadSeen = (m) => m.members().find((x) => x.name === 'n3')?.state === 'dead';
  const start = performance.now();
  await members[2].stop();
  const [dead, drop, evict] = await Promise.all([
    until(() => deadSeen(members[0]) && deadSeen(members[1])),
    until(() => endpoints() === 1),
    until(() => store.list('Pod').length === 1),
  ]);
  lifecycle.stop();
  await members[0].stop();
  await members[1].stop();
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return { deadMs: dead - start, dropMs: drop - start, evictMs: evict - start };
}

async function main() {
  const rounds = Number(process.argv[2] ?? 3);
  const probeMs = new Membership({ name: 'x', host: '127.0.0.1', port: 0, secret: 's' });
  await probeMs.start();
  const period = probeMs['core'].config.probeIntervalMs;
  await probeMs.stop();
  const results = [];
  for (let i = 0; i < rounds; i++) {
    const r = await round(`bench-secret-${i}`);
    results.push(r);
    console.log(
      `round ${i + 1}: dead everywhere ${r.deadMs.toFixed(0)} ms, endpoints dropped ` +
        `${r.dropMs.toFixed(0)} ms, pods removed ${r.evictMs.toFixed(0)} ms (grace ${GRACE_MS} ms)`,
    );
  }
  const worst = Math.max(...results.map((r) => r.dropMs));
  console.log(
    `worst endpoints drop ${worst.toFixed(0)} ms: ${(worst / GOAL_DROP_MS).toFixed(2)} of the ` +
      `3 s goal, ${(worst / period).toFixed(1)} probe periods of ${period} ms`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
