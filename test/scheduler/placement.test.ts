import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  placePods,
  type NodeView,
  type Placement,
  type PodRequest,
} from '../../src/scheduler/placement';

const GiB = 1024 ** 3;
const GROUPS = ['web', 'api', 'db'];

const nodesArb: fc.Arbitrary<NodeView[]> = fc
  .array(
    fc.record({
      zone: fc.constantFrom('a', 'b'),
      ready: fc.boolean(),
      unschedulable: fc.boolean(),
      cpuMilli: fc.integer({ min: 0, max: 4000 }),
      memoryBytes: fc.integer({ min: 0, max: 8 }).map((g) => g * GiB),
    }),
    { maxLength: 6 },
  )
  .map((list) =>
    list.map(({ zone, ...rest }, i) => ({ name: `node-${i}`, labels: { zone }, ...rest })),
  );

const podsArb = (prefix: string): fc.Arbitrary<PodRequest[]> =>
  fc
    .array(
      fc.record({
        group: fc.constantFrom(...GROUPS),
        cpuMilli: fc.integer({ min: 0, max: 1500 }),
        memoryBytes: fc.integer({ min: 0, max: 3 * GiB }),
        zone: fc.option(fc.constantFrom('a', 'b'), { nil: undefined }),
      }),
      { maxLength: 20 },
    )
    .map((list) =>
      list.map(({ zone, ...rest }, i) => ({
        name: `${prefix}-${i}`,
        uid: `${prefix}-uid-${i}`,
        ...rest,
        ...(zone ? { nodeSelector: { zone } } : {}),
      })),
    );

function bound(placements: Placement[], pods: PodRequest[]): PodRequest[] {
  return placements.flatMap((p) => {
    if (!('nodeName' in p)) return [];
    const pod = pods.find((q) => q.uid === p.uid)!;
    return [{ ...pod, nodeName: p.nodeName }];
  });
}

function usage(pods: PodRequest[], node: string) {
  const on = pods.filter((p) => p.nodeName === node);
  return {
    cpuMilli: on.reduce((s, p) => s + p.cpuMilli, 0),
    memoryBytes: on.reduce((s, p) => s + p.memoryBytes, 0),
  };
}

function node(name: string, extra: Partial<NodeView> = {}): NodeView {
  return {
    name,
    labels: {},
    ready: true,
    unschedulable: false,
    cpuMilli: 4000,
    memoryBytes: 8 * GiB,
    ...extra,
  };
}

function pod(name: string, extra: Partial<PodRequest> = {}): PodRequest {
  return { name, uid: `uid-${name}`, group: 'web', cpuMilli: 100, memoryBytes: GiB / 8, ...extra };
}

describe('placement: properties', () => {
  it('never places pods beyond a node\u2019s allocatable CPU or memory', () => {
    fc.assert(
      fc.property(nodesArb, podsArb('first'), podsArb('second'), (nodes, first, second) => {
        // The pods placed by a first pass are the load the second pass sees.
        const placed = bound(placePods(nodes, [], first), first);
        const all = [...placed, ...bound(placePods(nodes, placed, second), second)];
        for (const n of nodes) {
          const used = usage(all, n.name);
          assert.ok(used.cpuMilli <= n.cpuMilli, `${n.name} cpu ${used.cpuMilli}`);
          assert.ok(used.memoryBytes <= n.memoryBytes, `${n.name} memory ${used.memoryBytes}`);
        }
      }),
      { numRuns: 400 },
    );
  });

  it('never chooses an unready, unschedulable or non-matching node', () => {
    fc.assert(
      fc.property(nodesArb, podsArb('p'), (nodes, pending) => {
        for (const p of bound(placePods(nodes, [], pending), pending)) {
          const n = nodes.find((x) => x.name === p.nodeName)!;
          assert.ok(n.ready && !n.unschedulable, `${n.name} cannot take pods`);
          for (const [k, v] of Object.entries(p.nodeSelector ?? {})) assert.equal(n.labels[k], v);
        }
      }),
      { numRuns: 400 },
    );
  });

  it('answers every pending pod once, in order, with a node or a reason', () => {
    fc.assert(
      fc.property(nodesArb, podsArb('p'), (nodes, pending) => {
        const result = placePods(nodes, [], pending);
        assert.deepEqual(
          result.map((r) => r.uid),
          pending.map((p) => p.uid),
        );
        for (const r of result) {
          if ('nodeName' in r) continue;
          const m = /^0\/(\d+) nodes are available(: (.*))?\.$/.exec(r.unschedulable);
          assert.ok(m, r.unschedulable);
          assert.equal(Number(m[1]), nodes.length);
          const counted = (m[3] ?? '').split(', ').filter(Boolean);
          const total = counted.reduce((s, part) => s + Number(part.split(' ')[0]), 0);
          assert.equal(total, nodes.length);
        }
      }),
      { numRuns: 400 },
    );
  });

  it('spreads the replicas of each group within one of even over equal nodes', () => {
    const equalNodes = fc.integer({ min: 1, max: 6 }).map((n) =>
      Array.from({ length: n }, (_, i) => node(`node-${i}`, { cpuMilli: 1e6, memoryBytes: 1e15 })),
    );
    const others = fc.array(fc.nat(5), { maxLength: 15 });
    fc.assert(
      fc.property(equalNodes, podsArb('p'), others, (nodes, requests, otherNodes) => {
        const pending = requests.map(({ nodeSelector: _, ...rest }) => rest);
        // Pods of an unrelated group already placed anywhere must not skew the spread.
        const placed = otherNodes.map((i, k) =>
          pod(`other-${k}`, { group: 'other', nodeName: nodes[i % nodes.length].name }),
        );
        const all = bound(placePods(nodes, placed, pending), pending);
        assert.equal(all.length, pending.length);
        for (const group of GROUPS) {
          const mine = all.filter((p) => p.group === group);
          const counts = nodes.map((n) => mine.filter((p) => p.nodeName === n.name).length);
          assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `${group}: ${counts}`);
        }
      }),
      { numRuns: 400 },
    );
  });

  it('gives the same answer for the same input', () => {
    fc.assert(
      fc.property(nodesArb, podsArb('p'), (nodes, pending) => {
        assert.deepEqual(placePods(nodes, [], pending), placePods(nodes, [], pending));
      }),
    );
  });
});

describe('placement: examples', () => {
  it('explains in Kubernetes words why no node fits', () => {
    const nodes = [
      node('a', { ready: false }),
      node('b', { unschedulable: true }),
      node('c', { cpuMilli: 50 }),
      node('d', { memoryBytes: 1 }),
      node('e', { labels: { zone: 'b' } }),
    ];
    const [result] = placePods(nodes, [], [pod('web-1', { nodeSelector: { zone: 'a' } })]);
    assert.deepEqual(result, {
      name: 'web-1',
      uid: 'uid-web-1',
      unschedulable:
        '0/5 nodes are available: 1 node(s) were not ready, 1 node(s) were unschedulable, ' +
        "3 node(s) didn't match Pod's node affinity/selector.",
    });
  });

  it('counts pods placed earlier in the same pass against capacity', () => {
    const nodes = [node('a', { cpuMilli: 1000 })];
    const result = placePods(nodes, [], [pod('x', { cpuMilli: 600 }), pod('y', { cpuMilli: 600 })]);
    assert.equal('nodeName' in result[0] && result[0].nodeName, 'a');
    assert.deepEqual(result[1], {
      name: 'y',
      uid: 'uid-y',
      unschedulable: '0/1 nodes are available: 1 Insufficient cpu.',
    });
  });

  it('says so when there are no nodes at all', () => {
    const [result] = placePods([], [], [pod('x')]);
    assert.equal('unschedulable' in result && result.unschedulable, '0/0 nodes are available.');
  });

  it('prefers the node with fewer pods of the group, then fewer pods, then the name', () => {
    const nodes = [node('c'), node('b'), node('a')];
    const placed = [
      pod('w1', { nodeName: 'a' }),
      pod('o1', { group: 'other', nodeName: 'b' }),
      pod('o2', { group: 'other', nodeName: 'b' }),
    ];
    const result = placePods(nodes, placed, [pod('w2'), pod('w3'), pod('w4')]);
    assert.deepEqual(
      result.map((r) => ('nodeName' in r ? r.nodeName : r.unschedulable)),
      ['c', 'b', 'a'],
    );
  });
});
