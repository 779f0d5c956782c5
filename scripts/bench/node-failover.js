#!/usr/bin/env node
'use strict';
/**
 * The measuring half of node-failover.sh; run it through that script, which
 * checks the machine, owns the temp dir and removes the agents and the
 * containers of the run whatever happens.
 *
 * Starts three agents on 127.0.X.2-4, applies the example and times it
 * until every replica is ready (the baseline: a container start in this
 * run). Then, while two clients per survivor send requests to its
 * LoadBalancer on port 80, kills a follower that runs pods with SIGKILL and
 * pauses its containers, as if the machine had died, and reports the time
 * from the kill until
 *   - both survivors mark it NotReady,
 *   - the last request that a balancer sent to it (the last one to fail),
 *   - every replica is ready again on the survivors.
 */
const { spawnSync } = require('node:child_process');
const http = require('node:http');
const path = require('node:path');
const { agreedLeader, fail, poll, sleep, startCluster } = require('./cluster-agents');

const MAIN = path.resolve(__dirname, '..', '..', 'build', 'src', 'main.js');
const GOAL_DROP_MS = 3000;
const GOAL_READY_MS = 10_000;
const REQUEST_TIMEOUT_MS = 500;
const [workDir, pidFile, octet, runId, labelKey, manifest] = process.argv.slice(2);
if (!manifest) {
  fail(
    'node-failover',
    'usage: node-failover.js WORK_DIR PID_FILE OCTET RUN_ID LABEL_KEY MANIFEST',
  );
}

const isReady = (p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');

async function pods(agent) {
  return (await agent.get('/api/v1/namespaces/default/pods'))?.items ?? [];
}

/** Resolves when `replicas` pods are ready and none is on `avoid`; the time it took. */
async function replicasReady(agent, replicas, t0, avoid) {
  const done = await poll(
    async () => {
      const now = await pods(agent);
      const ready = now.filter(isReady).filter((p) => p.spec.nodeName !== avoid);
      return ready.length === replicas && now.every((p) => p.spec.nodeName !== avoid);
    },
    120_000,
    50,
  );
  if (!done) throw new Error('the replicas did not become ready within 120 s');
  return performance.now() - t0;
}

/** True when the node `name` is NotReady as `agent` sees it. */
async function notReady(agent, name) {
  const node = ((await agent.nodes()) ?? []).find((n) => n.metadata.name === name);
  const ready = node?.status?.conditions?.find((c) => c.type === 'Ready');
  return ready?.status === 'False';
}

function probe(address) {
  return new Promise((resolve) => {
    const req = http.get({ host: address, port: 80, path: '/', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
      res.on('error', () => resolve(false));
    });
    req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error('timed out')));
    req.on('error', () => resolve(false));
  });
}

/** Two clients per address until stopped; every request's start time and outcome. */
function startLoad(addresses) {
  const results = [];
  let running = true;
  const client = async (address) => {
    for (let i = 0; running && i < 20_000; i++) {
      const at = performance.now();
      results.push({ at, ok: await probe(address) });
      await sleep(20);
    }
  };
  const clients = addresses.flatMap((a) => [client(a), client(a)]);
  return { results, stop: () => ((running = false), Promise.all(clients)) };
}

function containersOf(agent) {
  const r = spawnSync('docker', ['ps', '-q', '--filter', `label=${labelKey}=${agent.label()}`], {
    encoding: 'utf8',
  });
  return r.stdout.split('\n').filter(Boolean);
}

async function main() {
  const common = { workDir, pidFile, octet, runId, labelKey };
  const agents = await startCluster(common, 3);
  const leaderName = await agreedLeader(agents, 30_000);
  const leader = agents.find((a) => a.name === leaderName);

  const applyAt = performance.now();
  const applied = spawnSync(
    process.execPath,
    [MAIN, '--data-dir', leader.dataDir, 'apply', '-f', manifest],
    { encoding: 'utf8' },
  );
  if (applied.status !== 0) throw new Error(`apply failed: ${applied.stderr}`);
  const replicas = 4;
  const startMs = await replicasReady(leader, replicas, applyAt);

  const podsNow = await pods(leader);
  const victim = agents
    .filter((a) => a !== leader)
    .map((a) => ({ a, n: podsNow.filter((p) => p.spec.nodeName === a.name).length }))
    .sort((x, y) => y.n - x.n)[0];
  if (!victim || victim.n === 0) throw new Error('no follower runs a pod');
  const survivors = agents.filter((a) => a !== victim.a);
  const load = startLoad(survivors.map((a) => a.address));
  await sleep(1000);

  const stale = containersOf(victim.a);
  await victim.a.kill();
  const t0 = performance.now();
  if (spawnSync('docker', ['pause', ...stale]).status !== 0) throw new Error('docker pause failed');
  const marked = poll(
    async () => {
      const seen = await Promise.all(survivors.map((s) => notReady(s, victim.a.name)));
      return seen.every(Boolean) && performance.now() - t0;
    },
    60_000,
    50,
  );
  const readyMs = await replicasReady(leader, replicas, t0, victim.a.name);
  const notReadyMs = await marked;
  await sleep(2000);
  await load.stop();

  const after = load.results.filter((r) => r.at >= t0);
  const failed = after.filter((r) => !r.ok);
  const lastFail = Math.max(0, ...failed.map((r) => r.at - t0));
  const out = (text) => process.stdout.write(text);
  const ms = (v) => `${(v / 1000).toFixed(2)} s`;
  const verdict = (v, goal) => (v <= goal ? 'met' : 'MISSED');
  out(`apply -> 4 replicas ready (baseline, container start): ${ms(startMs)}\n`);
  out(`killed ${victim.a.name} (${victim.n} pods, ${stale.length} containers paused)\n`);
  out(`  marked NotReady by both survivors:   ${ms(notReadyMs)}\n`);
  out(
    `  last request a balancer sent to it:  ${ms(lastFail)}` +
      `   goal ${ms(GOAL_DROP_MS)}: ${verdict(lastFail, GOAL_DROP_MS)}\n`,
  );
  out(
    `  replacements ready:                  ${ms(readyMs)}` +
      `   goal ${ms(GOAL_READY_MS)} + container start = ${ms(GOAL_READY_MS + startMs)}: ` +
      `${verdict(readyMs, GOAL_READY_MS + startMs)}\n`,
  );
  out(`  requests after the kill: ${after.length}, failed: ${failed.length}\n`);
  process.exit(0);
}

main().catch((err) => fail('node-failover', err.stack ?? String(err)));
