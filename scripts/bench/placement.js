#!/usr/bin/env node
'use strict';
/**
 * Placements per second of the scheduler's pure placement
 * (src/scheduler/placement.ts) for 1000 pods of 10 Deployments on 50
 * simulated nodes, against a naive loop measured in the same run: for each
 * pod, every node's load is recounted from every pod placed so far.
 *
 *   npx tsc -p . && node scripts/bench/placement.js [rounds]
 *
 * Two shapes: one pass placing all 1000 pods (a scale-up), and 1000 passes
 * of one pod each with everything before it already placed (pods arriving
 * one by one, the scheduler's worst case). Goal: 1000 placements/s.
 * Prints the median of the rounds and checks that both placements agree on
 * how many pods land on each node.
 */
const path = require('node:path');
const { performance } = require('node:perf_hooks');

const build = path.resolve(__dirname, '..', '..', 'build', 'src');
const { placePods } = require(path.join(build, 'scheduler', 'placement'));

const NODES = 50;
const PODS = 1000;
const GROUPS = 10;
const GOAL_PER_S = 1000;
const ROUNDS = Number(process.argv[2] ?? 5);

function makeNodes() {
  return Array.from({ length: NODES }, (_, i) => ({
    name: `node-${String(i).padStart(2, '0')}`,
    labels: { zone: i % 2 === 0 ? 'a' : 'b' },
    ready: i !== 7,
    unschedulable: i === 13,
    cpuMilli: 16_000,
    memoryBytes: 64 * 2 ** 30,
  }));
}

function makePods() {
  return Array.from({ length: PODS }, (_, i) => ({
    name: `pod-${i}`,
    uid: `uid-${i}`,
    group: `deploy-${i % GROUPS}`,
    cpuMilli: 100,
    memoryBytes: 128 * 2 ** 20,
    nodeSelector: i % 5 === 0 ? { zone: 'a' } : undefined,
  }));
}

/** The baseline: what one writes first, recounting every node's load per pod. */
function naivePlace(nodes, placed, pending) {
  const all = placed.slice();
  const out = [];
  for (const pod of pending) {
    let best;
    let bestKey;
    for (const node of nodes) {
      if (!node.ready || node.unschedulable) continue;
      const sel = pod.nodeSelector ?? {};
      if (!Object.keys(sel).every((k) => node.labels[k] === sel[k])) continue;
      const mine = all.filter((p) => p.nodeName === node.name);
      const cpu = mine.reduce((s, p) => s + p.cpuMilli, 0);
      const mem = mine.reduce((s, p) => s + p.memoryBytes, 0);
      if (cpu + pod.cpuMilli > node.cpuMilli || mem + pod.memoryBytes > node.memoryBytes) continue;
      const key = [mine.filter((p) => p.group === pod.group).length, mine.length, node.name];
      if (!best || compareKeys(key, bestKey) < 0) [best, bestKey] = [node, key];
    }
    const decision = best
      ? { name: pod.name, uid: pod.uid, nodeName: best.name }
      : { name: pod.name, uid: pod.uid, unschedulable: 'no node fits' };
    if (best) all.push({ ...pod, nodeName: best.name });
    out.push(decision);
  }
  return out;
}

function compareKeys(a, b) {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  return 0;
}

/** All pods in one call. */
function onePass(place, nodes, pods) {
  return place(nodes, [], pods);
}

/** One call per pod, with the pods before it already bound. */
function podByPod(place, nodes, pods) {
  const placed = [];
  const out = [];
  for (const pod of pods) {
    const [d] = place(nodes, placed, [pod]);
    if ('nodeName' in d) placed.push({ ...pod, nodeName: d.nodeName });
    out.push(d);
  }
  return out;
}

function perSecond(fn) {
  const rates = [];
  let decisions;
  for (let r = 0; r < ROUNDS; r++) {
    const nodes = makeNodes();
    const pods = makePods();
    const t0 = performance.now();
    decisions = fn(nodes, pods);
    rates.push(PODS / ((performance.now() - t0) / 1000));
  }
  rates.sort((a, b) => a - b);
  return { rate: rates[Math.floor(rates.length / 2)], decisions };
}

function spread(decisions) {
  const counts = new Map();
  for (const d of decisions)
    if (d.nodeName) counts.set(d.nodeName, (counts.get(d.nodeName) ?? 0) + 1);
  return [...counts.entries()]
    .sort()
    .map(([n, c]) => `${n}:${c}`)
    .join(',');
}

function main() {
  const shapes = [
    ['one pass of 1000 pods', onePass],
    ['1000 passes of 1 pod', podByPod],
  ];
  const col = (v) => String(v).padStart(14);
  process.stdout.write(`${''.padEnd(24)}${col('naive /s')}${col('placement /s')}  ratio  goal\n`);
  for (const [label, shape] of shapes) {
    const naive = perSecond((n, p) => shape(naivePlace, n, p));
    const real = perSecond((n, p) => shape(placePods, n, p));
    if (spread(naive.decisions) !== spread(real.decisions)) {
      process.stderr.write(`placement: the two placements disagree on "${label}"\n`);
      process.exitCode = 1;
    }
    const ratio = (real.rate / naive.rate).toFixed(2).padStart(6);
    const goal = real.rate >= GOAL_PER_S ? 'met' : 'MISSED';
    process.stdout.write(
      `${label.padEnd(24)}${col(naive.rate.toFixed(0))}${col(real.rate.toFixed(0))}` +
        ` ${ratio}  ${goal}\n`,
    );
  }
}

main();
