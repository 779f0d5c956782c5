import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SimNetwork } from '../../src/gossip/simulator';
import {
  expectedConfirmations,
  retransmitLimit,
  suspicionTimeoutMs,
} from '../../src/gossip/suspicion';
import { SwimNode } from '../../src/gossip/swim';

const PERIOD = 400;
const NAMES = ['a', 'b', 'c', 'd', 'e'];

/** A cluster of `names` that all joined through the first one and settled. */
function cluster(names = NAMES, opts: ConstructorParameters<typeof SimNetwork>[0] = {}) {
  const net = new SimNetwork({ seed: 7, ...opts });
  const [seed, ...rest] = names;
  net.add(seed);
  for (const name of rest) net.add(name, [seed]);
  net.run(5000);
  return net;
}

function deadEvents(net: SimNetwork, name: string) {
  return net.events.filter((e) => e.type === 'dead' && e.name === name);
}

describe('suspicion timeout', () => {
  it('waits longest with no confirmation and shrinks to the minimum with enough', () => {
    const timeouts = [0, 1, 2, 3].map((c) => suspicionTimeoutMs(1000, 4000, 3, c));
    assert.equal(timeouts[0], 4000);
    assert.ok(timeouts[1] < timeouts[0] && timeouts[2] < timeouts[1]);
    assert.equal(timeouts[3], 1000);
    assert.equal(suspicionTimeoutMs(1000, 4000, 3, 10), 1000);
  });

  it('uses the minimum at once when nobody else could confirm', () => {
    assert.equal(suspicionTimeoutMs(1000, 4000, 0, 0), 1000);
    assert.equal(expectedConfirmations(2, 2), 0);
    assert.equal(expectedConfirmations(3, 2), 1);
    assert.equal(expectedConfirmations(50, 2), 2);
  });

  it('retransmits more in larger clusters', () => {
    assert.ok(retransmitLimit(4, 50) > retransmitLimit(4, 3));
  });
});

describe('SWIM on a simulated network', () => {
  it('lets every node learn every member through a single seed', () => {
    const net = cluster();
    for (const observer of NAMES) {
      for (const member of NAMES) assert.equal(net.stateOf(observer, member), 'alive');
    }
  });

  it('has every member declare a crashed node dead within a few probe periods', () => {
    const net = cluster();
    const crashedAt = net.now;
    net.crash('c');
    net.run(12 * PERIOD);

    const observers = NAMES.filter((n) => n !== 'c');
    for (const observer of observers) assert.equal(net.stateOf(observer, 'c'), 'dead');
    const last = Math.max(...deadEvents(net, 'c').map((e) => e.at));
    assert.ok(last - crashedAt <= 12 * PERIOD, `dead after ${last - crashedAt} ms`);
    for (const observer of observers) {
      for (const member of observers) assert.equal(net.stateOf(observer, member), 'alive');
    }
  });

  it('detects a crashed node in a cluster of three, where one confirmation suffices', () => {
    const net = cluster(['a', 'b', 'c']);
    const crashedAt = net.now;
    net.crash('b');
    net.run(8 * PERIOD);
    assert.equal(net.stateOf('a', 'b'), 'dead');
    assert.equal(net.stateOf('c', 'b'), 'dead');
    const last = Math.max(...deadEvents(net, 'b').map((e) => e.at));
    assert.ok(last - crashedAt <= 8 * PERIOD, `dead after ${last - crashedAt} ms`);
  });

  it('lets a briefly unreachable node refute its suspicion by raising its incarnation', () => {
    const swim = { suspicionMinMs: 3000, suspicionMaxMs: 6000 };
    const net = cluster(NAMES, { swim });
    const start = net.events.length;
    net.partition(['c']);
    net.run(1500);
    net.heal();
    net.run(10 * PERIOD);

    const later = net.events.slice(start);
    assert.ok(later.some((e) => e.type === 'suspect' && e.name === 'c'), 'c was suspected');
    assert.deepEqual(later.filter((e) => e.type === 'dead'), []);
    const c = net.nodes.get('c')!.self();
    assert.ok(c.incarnation > 0);
    for (const observer of NAMES) assert.equal(net.stateOf(observer, 'c'), 'alive');
  });

  it('declares no member dead under 10% message loss', () => {
    const net = cluster(NAMES, { loss: 0.1, seed: 11 });
    net.run(120_000);
    assert.deepEqual(net.events.filter((e) => e.type === 'dead'), []);
    for (const observer of NAMES) {
      for (const member of NAMES) assert.equal(net.stateOf(observer, member), 'alive');
    }
  });

  it('still detects a crash under 10% message loss', () => {
    const net = cluster(NAMES, { loss: 0.1, seed: 5 });
    net.crash('d');
    net.run(16 * PERIOD);
    for (const observer of ['a', 'b', 'c', 'e']) assert.equal(net.stateOf(observer, 'd'), 'dead');
  });

  it('separates a partitioned node and merges it back once the partition heals', () => {
    const net = cluster();
    net.partition(['e']);
    net.run(15_000);
    for (const observer of ['a', 'b', 'c', 'd']) assert.equal(net.stateOf(observer, 'e'), 'dead');
    for (const member of ['a', 'b', 'c', 'd']) assert.equal(net.stateOf('e', member), 'dead');

    net.heal();
    net.run(20_000);
    for (const observer of NAMES) {
      for (const member of NAMES) assert.equal(net.stateOf(observer, member), 'alive');
    }
  });

  it('accepts a restarted node back with a higher incarnation than its dead one', () => {
    const net = cluster();
    net.crash('b');
    net.run(12 * PERIOD);
    assert.equal(net.stateOf('a', 'b'), 'dead');

    net.add('b', ['a']);
    net.run(10 * PERIOD);
    for (const observer of NAMES) {
      for (const member of NAMES) assert.equal(net.stateOf(observer, member), 'alive');
    }
    const b = net.nodes.get('a')!.members().find((m) => m.name === 'b')!;
    assert.ok(b.incarnation > 0);
  });
});

describe('SwimNode', () => {
  it('ignores a ping meant for another node at its address', () => {
    const node = new SwimNode({ name: 'a', address: 'sim:a' });
    const out = node.receive('sim:b', { t: 'ping', seq: 1, from: 'b', target: 'old', u: [] }, 0);
    assert.deepEqual(out.messages, []);
  });

  it('refutes a suspicion of itself on the ack it sends back', () => {
    const node = new SwimNode({ name: 'a', address: 'sim:a' });
    const suspect = { n: 'a', a: 'sim:a', i: 0, s: 'suspect' as const, f: 'b' };
    const ping = { t: 'ping' as const, seq: 4, from: 'b', target: 'a', u: [suspect] };
    const out = node.receive('sim:b', ping, 0);
    assert.equal(out.messages.length, 1);
    const ack = out.messages[0];
    assert.equal(ack.to, 'sim:b');
    assert.equal(ack.message.t, 'ack');
    assert.deepEqual(ack.message.u, [{ n: 'a', a: 'sim:a', i: 1, s: 'alive' }]);
  });

  it('stops piggybacking an update after its retransmit limit', () => {
    const node = new SwimNode({ name: 'a', address: 'sim:a', retransmitMultiplier: 2 });
    const b = { n: 'b', a: 'sim:b', i: 0, s: 'alive' as const };
    node.receive('sim:b', { t: 'join', from: 'b', u: [b] }, 0);
    const carried = [];
    for (let seq = 1; seq <= 10; seq++) {
      const out = node.receive('sim:b', { t: 'ping', seq, from: 'b', target: 'a', u: [] }, 0);
      carried.push(out.messages[0].message.u.filter((u) => u.n === 'b').length);
    }
    assert.deepEqual(carried, [1, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
  });
});
