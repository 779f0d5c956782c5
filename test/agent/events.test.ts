import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import pino from 'pino';
import { EventRecorder } from '../../src/agent/events';
import {
  EVENT_TTL_MS,
  MAX_EVENTS_PER_OBJECT,
  type StoredEvent,
} from '../../src/store/apply-events';
import type { EventRecord } from '../../src/store/commands';
import { TestStore } from '../store/fixtures';

const T0 = Date.parse('2030-01-01T00:00:00.000Z');
const at = (ms: number) => new Date(T0 + ms).toISOString();

function record(name: string, message: string, ms = 0, count = 1): EventRecord {
  return {
    involvedObject: { kind: 'Pod', name, uid: `uid-${name}` },
    type: 'Warning',
    reason: 'Unhealthy',
    message,
    source: { component: 'kubelet', host: 'node-1' },
    count,
    firstTimestamp: at(ms),
    lastTimestamp: at(ms),
  };
}

describe('events', () => {
  let t: TestStore;

  beforeEach(() => {
    t = new TestStore('flotilla-events-');
  });
  afterEach(() => t.close());

  const events = () => t.store.list<StoredEvent>('Event');

  it('sends repeated occurrences within a flush interval as one event with a count', async () => {
    let clock = T0;
    const recorder = new EventRecorder({
      log: t.log,
      logger: pino({ level: 'silent' }),
      component: 'kubelet',
      host: 'node-1',
      flushIntervalMs: 60_000,
      now: () => clock,
    });
    const before = t.logLength();
    for (let i = 0; i < 5; i++) {
      recorder.record({
        object: { kind: 'Pod', name: 'web-1', uid: 'u1' },
        type: 'Warning',
        reason: 'Unhealthy',
        message: 'Readiness probe failed: HTTP probe failed with statuscode: 503',
      });
      clock += 1000;
    }
    const started = { reason: 'Started', message: 'Started container main' };
    recorder.record({ object: { kind: 'Pod', name: 'web-1' }, ...started });
    await recorder.flush();

    assert.equal(t.logLength() - before, 1, 'one command for the whole batch');
    const unhealthy = events().find((e) => e.reason === 'Unhealthy')!;
    assert.equal(unhealthy.count, 5);
    assert.equal(unhealthy.firstTimestamp, at(0));
    assert.equal(unhealthy.lastTimestamp, at(4000));
    assert.deepEqual(unhealthy.source, { component: 'kubelet', host: 'node-1' });
    assert.equal(unhealthy.involvedObject.name, 'web-1');
    assert.equal(events().find((e) => e.reason === 'Started')?.type, 'Normal');
  });

  it('merges a repeat of a stored event into it, raising count and lastTimestamp', () => {
    t.commit({ op: 'recordEvents', events: [record('web-1', 'failed', 0, 2)], now: at(0) });
    t.commit({ op: 'recordEvents', events: [record('web-1', 'failed', 5000, 3)], now: at(5000) });
    t.commit({ op: 'recordEvents', events: [record('web-1', 'other', 6000)], now: at(6000) });
    const stored = events();
    assert.equal(stored.length, 2);
    const failed = stored.find((e) => e.message === 'failed')!;
    assert.equal(failed.count, 5);
    assert.equal(failed.firstTimestamp, at(0));
    assert.equal(failed.lastTimestamp, at(5000));
  });

  it('keeps only the newest events of each object', () => {
    const many = Array.from({ length: MAX_EVENTS_PER_OBJECT + 5 }, (_, i) =>
      record('web-1', `failure ${i}`, i * 1000),
    );
    const last = many.length * 1000;
    t.commit({ op: 'recordEvents', events: [...many, record('web-2', 'kept', 0)], now: at(last) });
    const mine = events().filter((e) => e.involvedObject.name === 'web-1');
    assert.equal(mine.length, MAX_EVENTS_PER_OBJECT);
    assert.ok(!mine.some((e) => e.message === 'failure 0'), 'the oldest went first');
    assert.ok(mine.some((e) => e.message === `failure ${many.length - 1}`));
    assert.ok(events().some((e) => e.involvedObject.name === 'web-2'));
  });

  it('drops events not seen for longer than the time to live', () => {
    t.commit({ op: 'recordEvents', events: [record('web-1', 'old', 0)], now: at(0) });
    const later = EVENT_TTL_MS + 1000;
    t.commit({ op: 'recordEvents', events: [record('web-2', 'new', later)], now: at(later) });
    assert.deepEqual(
      events().map((e) => e.message),
      ['new'],
    );
  });

  it('gives the same tables when the same commands are applied on another server', () => {
    const other = new TestStore('flotilla-events-b-');
    try {
      for (const store of [t, other]) {
        store.commit({ op: 'recordEvents', events: [record('web-1', 'a', 0)], now: at(0) });
        store.commit({ op: 'recordEvents', events: [record('web-1', 'a', 10)], now: at(10) });
      }
      assert.deepEqual(events(), other.store.list('Event'));
    } finally {
      other.close();
    }
  });
});
