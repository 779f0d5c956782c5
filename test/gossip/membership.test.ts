import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, describe, it } from 'node:test';
import { encodeMessage } from '../../src/gossip/codec';
import { Membership, gossipKey } from '../../src/gossip/membership';
import type { MemberState, MembershipEvent } from '../../src/gossip/types';

const SECRET = 'test-cluster-secret';
const HOST = '127.0.0.1';

/** Resolves with the first `type` event about `name`; rejects after `timeoutMs`. */
function nextEvent(
  m: Membership,
  type: MemberState,
  name: string,
  timeoutMs = 10_000,
): Promise<MembershipEvent> {
  return new Promise((resolve, reject) => {
    const onEvent = (e: MembershipEvent) => {
      if (e.name !== name) return;
      clearTimeout(timer);
      m.off(type, onEvent);
      resolve(e);
    };
    const timer = setTimeout(() => {
      m.off(type, onEvent);
      reject(new Error(`no ${type} event about ${name} within ${timeoutMs} ms`));
    }, timeoutMs);
    m.on(type, onEvent);
  });
}

/** Polls `check` every 50 ms until it holds; rejects after `timeoutMs`. */
async function eventually(check: () => boolean, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function stateOf(m: Membership, name: string): MemberState | undefined {
  return m.members().find((x) => x.name === name)?.state;
}

describe('Membership over UDP', () => {
  const started: Membership[] = [];

  async function startNode(name: string, seeds: string[], port = 0, secret = SECRET) {
    const m = new Membership({ name, host: HOST, port, secret });
    await m.start();
    started.push(m);
    if (seeds.length > 0) m.join(seeds);
    return m;
  }

  after(async () => {
    for (const m of started) await m.stop();
  });

  it('finds every member, sees a stopped one dead, and sees it alive after a restart', async () => {
    const a = await startNode('a', []);
    const others = [];
    for (const name of ['b', 'c', 'd']) others.push(await startNode(name, [a.address()]));
    const all = [a, ...others];
    const names = ['a', 'b', 'c', 'd'];
    await eventually(
      () => all.every((m) => names.every((n) => stateOf(m, n) === 'alive')),
      'every member sees every other alive',
    );

    const c = others[1];
    const cPort = Number(c.address().split(':')[1]);
    const survivors = all.filter((m) => m !== c);
    const dead = survivors.map((m) => nextEvent(m, 'dead', 'c'));
    await c.stop();
    const events = await Promise.all(dead);
    assert.deepEqual(
      events.map((e) => e.address),
      survivors.map(() => `${HOST}:${cPort}`),
    );

    const alive = survivors.map((m) => nextEvent(m, 'alive', 'c'));
    const back = await startNode('c', [a.address()], cPort);
    await Promise.all(alive);
    await eventually(() => names.every((n) => stateOf(back, n) === 'alive'), 'c sees everyone');
    for (const m of survivors) assert.ok(m.members().find((x) => x.name === 'c')!.incarnation > 0);
  });

  it('drops datagrams signed with another secret, so they cannot declare anyone dead', async () => {
    const e = await startNode('e', []);
    const f = await startNode('f', [e.address()]);
    await eventually(() => stateOf(e, 'f') === 'alive', 'e sees f');

    const forged = encodeMessage(
      { t: 'join', from: 'x', u: [{ n: 'f', a: f.address(), i: 99, s: 'dead', f: 'x' }] },
      gossipKey('wrong-secret'),
    )!;
    const garbage = Buffer.from('not a gossip message at all, just bytes');
    const sock = dgram.createSocket('udp4');
    const port = Number(e.address().split(':')[1]);
    for (const datagram of [forged, garbage]) {
      await new Promise<void>((resolve, reject) =>
        sock.send(datagram, port, HOST, (err) => (err ? reject(err) : resolve())),
      );
    }
    sock.close();

    await eventually(() => e.dropped >= 2, 'e dropped both datagrams');
    assert.equal(stateOf(e, 'f'), 'alive');
    assert.equal(e.members().find((x) => x.name === 'f')!.incarnation, 0);
  });

  it('does not admit a node that signs with another secret', async () => {
    const g = await startNode('g', []);
    const intruder = await startNode('intruder', [g.address()], 0, 'another-secret');
    await eventually(() => g.dropped > 0, 'g dropped the intruder\'s join');
    assert.equal(stateOf(g, 'intruder'), undefined);
    assert.equal(intruder.members().length, 1);
  });
});
