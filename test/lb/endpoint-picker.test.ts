import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { EndpointPicker } from '../../src/lb/endpoint-picker';
import type { Endpoint } from '../../src/lb/types';

function endpoint(id: string, terminating = false): Endpoint {
  const port = Number(id.replace(/\D/g, '')) + 8000;
  return { id, host: '10.0.0.1', port, nodeName: 'n1', terminating };
}

function manualClock(): { now: () => number; advance: (ms: number) => void } {
  let t = 0;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('EndpointPicker', () => {
  test('cycles through ready endpoints in turn', () => {
    const picker = new EndpointPicker(() => 0, 5000);
    picker.update([endpoint('p1'), endpoint('p2'), endpoint('p3')]);
    const ids = Array.from({ length: 6 }, () => picker.pick('1.1.1.1')?.id);
    assert.deepEqual(ids, ['p1', 'p2', 'p3', 'p1', 'p2', 'p3']);
  });

  test('never picks a terminating endpoint', () => {
    const picker = new EndpointPicker(() => 0, 5000);
    picker.update([endpoint('p1', true), endpoint('p2')]);
    assert.deepEqual([picker.pick('a')?.id, picker.pick('b')?.id], ['p2', 'p2']);
  });

  test('returns nothing when every endpoint is terminating', () => {
    const picker = new EndpointPicker(() => 0, 5000);
    picker.update([endpoint('p1', true)]);
    assert.equal(picker.pick('a'), undefined);
    assert.equal(picker.readyCount, 0);
  });

  test('skips an ejected endpoint until the ejection expires', () => {
    const clock = manualClock();
    const picker = new EndpointPicker(clock.now, 5000);
    const [p1, p2] = [endpoint('p1'), endpoint('p2')];
    picker.update([p1, p2]);
    assert.equal(picker.eject(p1), true);
    assert.deepEqual([picker.pick('a')?.id, picker.pick('a')?.id], ['p2', 'p2']);
    clock.advance(5001);
    const ids = new Set([picker.pick('a')?.id, picker.pick('a')?.id]);
    assert.deepEqual(ids, new Set(['p1', 'p2']));
  });

  test('still tries an ejected endpoint when it is the only one', () => {
    const picker = new EndpointPicker(() => 0, 5000);
    const p1 = endpoint('p1');
    picker.update([p1]);
    picker.eject(p1);
    assert.equal(picker.pick('a')?.id, 'p1');
  });

  test('never returns the excluded endpoint', () => {
    const picker = new EndpointPicker(() => 0, 5000);
    const [p1, p2] = [endpoint('p1'), endpoint('p2')];
    picker.update([p1, p2]);
    for (let i = 0; i < 4; i++) assert.equal(picker.pick('a', p1)?.id, 'p2');
    picker.update([p1]);
    assert.equal(picker.pick('a', p1), undefined);
  });

  test('keeps a client on one endpoint while affinity holds', () => {
    const clock = manualClock();
    const picker = new EndpointPicker(clock.now, 5000);
    picker.update([endpoint('p1'), endpoint('p2'), endpoint('p3')], {
      type: 'ClientIP',
      timeoutSeconds: 10,
    });
    const first = picker.pick('10.1.1.1')?.id;
    for (let i = 0; i < 5; i++) {
      clock.advance(9000);
      assert.equal(picker.pick('10.1.1.1')?.id, first);
    }
    const other = picker.pick('10.1.1.2')?.id;
    assert.notEqual(other, first);
  });

  test('forgets affinity after timeoutSeconds without requests', () => {
    const clock = manualClock();
    const picker = new EndpointPicker(clock.now, 5000);
    picker.update([endpoint('p1'), endpoint('p2')], { type: 'ClientIP', timeoutSeconds: 1 });
    assert.equal(picker.pick('c')?.id, 'p1');
    assert.equal(picker.pick('d')?.id, 'p2');
    clock.advance(1001);
    assert.equal(picker.pick('c')?.id, 'p1');
    assert.equal(picker.pick('c')?.id, 'p1');
    clock.advance(1001);
    assert.equal(picker.pick('c')?.id, 'p2');
  });

  test('moves a sticky client when its endpoint goes away or terminates', () => {
    const picker = new EndpointPicker(() => 0, 5000);
    const affinity = { type: 'ClientIP' as const, timeoutSeconds: 60 };
    picker.update([endpoint('p1'), endpoint('p2')], affinity);
    assert.equal(picker.pick('c')?.id, 'p1');
    picker.update([endpoint('p1', true), endpoint('p2')], affinity);
    assert.equal(picker.pick('c')?.id, 'p2');
    picker.update([endpoint('p3')], affinity);
    assert.equal(picker.pick('c')?.id, 'p3');
    assert.equal(picker.pick('c')?.id, 'p3');
  });
});
