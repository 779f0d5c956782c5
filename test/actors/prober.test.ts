import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ProbeTracker,
  startProbing,
  type ProberEvent,
  type ProbeResult,
} from '../../src/actors/prober';
import type { Container, Probe } from '../../src/manifest/types';

/** A probe second lasts this many milliseconds in these tests. */
const SECOND_MS = 5;

function probe(extra: Partial<Probe> = {}): Probe {
  return {
    httpGet: { path: '/healthz', port: 80 },
    initialDelaySeconds: 0,
    periodSeconds: 1,
    timeoutSeconds: 1,
    successThreshold: 1,
    failureThreshold: 3,
    ...extra,
  };
}

function container(probes: Partial<Container>): Container {
  return { name: 'main', image: 'app:1', imagePullPolicy: 'IfNotPresent', ...probes };
}

/** Runs the prober with per-path answers until `until` sees the events it wants. */
function probeUntil(
  c: Container,
  answer: (p: Probe) => ProbeResult,
  until: (events: ProberEvent[]) => boolean,
  input: { started?: boolean; ready?: boolean } = {},
): Promise<ProberEvent[]> {
  return new Promise((resolve, reject) => {
    const events: ProberEvent[] = [];
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`prober did not get there: ${JSON.stringify(events)}`));
    }, 5000);
    const stop = startProbing({
      input: { container: c, started: input.started ?? false, ready: input.ready ?? false },
      run: async (p) => answer(p),
      secondMs: SECOND_MS,
      send: (e) => {
        events.push(e);
        if (until(events)) {
          clearTimeout(timer);
          stop();
          resolve(events);
        }
      },
    });
  });
}

const pathOf = (p: Probe) => p.httpGet?.path;
const types = (events: ProberEvent[]) => events.map((e) => e.type);

describe('probe tracker', () => {
  it('turns readiness true only after successThreshold successes in a row', () => {
    const t = new ProbeTracker({ successThreshold: 2, failureThreshold: 3 }, false);
    assert.equal(t.observe(true), undefined);
    assert.equal(t.observe(false), undefined);
    assert.equal(t.observe(true), undefined);
    assert.equal(t.observe(true), true);
    assert.equal(t.passing, true);
  });

  it('fails only after failureThreshold failures in a row', () => {
    const t = new ProbeTracker({ successThreshold: 1, failureThreshold: 3 }, true);
    assert.equal(t.observe(false), undefined);
    assert.equal(t.observe(false), undefined);
    assert.equal(t.observe(true), undefined);
    assert.equal(t.observe(false), undefined);
    assert.equal(t.observe(false), undefined);
    assert.equal(t.observe(false), false);
  });
});

describe('prober', () => {
  it('reports a container without probes as started and ready at once', async () => {
    const events = await probeUntil(
      container({}),
      () => ({ ok: false }),
      (e) => e.length === 2,
    );
    assert.deepEqual(types(events), ['PROBE_STARTED', 'PROBE_READINESS']);
    assert.deepEqual(events[1], { type: 'PROBE_READINESS', ready: true });
  });

  it('holds readiness and liveness back until the startup probe succeeds', async () => {
    let startupCalls = 0;
    const seen: string[] = [];
    const c = container({
      startupProbe: probe({ httpGet: { path: '/startup', port: 80 }, failureThreshold: 10 }),
      readinessProbe: probe({ httpGet: { path: '/ready', port: 80 } }),
      livenessProbe: probe({ httpGet: { path: '/live', port: 80 } }),
    });
    const events = await probeUntil(
      c,
      (p) => {
        seen.push(pathOf(p) as string);
        if (pathOf(p) === '/startup') return { ok: ++startupCalls >= 3 };
        return { ok: true };
      },
      (e) => e.some((x) => x.type === 'PROBE_READINESS'),
    );
    const firstOther = seen.findIndex((p) => p !== '/startup');
    assert.deepEqual(seen.slice(0, 3), ['/startup', '/startup', '/startup']);
    assert.equal(firstOther, 3, 'no readiness or liveness probe ran before startup passed');
    assert.equal(events.filter((e) => e.type === 'PROBE_FAILED').length, 2);
    assert.deepEqual(events.at(-1), { type: 'PROBE_READINESS', ready: true });
  });

  it('asks for a restart when the startup probe fails failureThreshold times', async () => {
    const c = container({ startupProbe: probe({ failureThreshold: 2 }) });
    const events = await probeUntil(
      c,
      () => ({ ok: false, message: 'connection refused' }),
      (e) => e.some((x) => x.type === 'PROBE_KILL'),
    );
    assert.deepEqual(types(events), ['PROBE_FAILED', 'PROBE_FAILED', 'PROBE_KILL']);
    const kill = { type: 'PROBE_KILL', probe: 'startup', message: 'connection refused' };
    assert.deepEqual(events[2], kill);
  });

  it('turns readiness false after failureThreshold failures, true on success', async () => {
    let calls = 0;
    // ok, ok, then three failures, then ok again.
    const script = [true, true, false, false, false, true];
    const c = container({ readinessProbe: probe({ failureThreshold: 3 }) });
    const events = await probeUntil(
      c,
      () => ({ ok: script[Math.min(calls++, script.length - 1)], message: 'HTTP 503' }),
      (e) => e.filter((x) => x.type === 'PROBE_READINESS').length === 3,
    );
    const readiness = events.flatMap((e) => (e.type === 'PROBE_READINESS' ? [e.ready] : []));
    assert.deepEqual(readiness, [true, false, true]);
    assert.equal(events.filter((e) => e.type === 'PROBE_FAILED').length, 3);
  });

  it('asks for a restart after failureThreshold liveness failures, not before', async () => {
    let calls = 0;
    const script = [false, false, true, false, false, false];
    const c = container({ livenessProbe: probe({ failureThreshold: 3 }) });
    const events = await probeUntil(
      c,
      () => ({ ok: script[Math.min(calls++, script.length - 1)], message: 'timeout' }),
      (e) => e.some((x) => x.type === 'PROBE_KILL'),
      { started: true, ready: true },
    );
    assert.equal(calls, 6, 'the success in between reset the count');
    assert.deepEqual(events.at(-1), { type: 'PROBE_KILL', probe: 'liveness', message: 'timeout' });
  });

  it('waits initialDelaySeconds before the first probe', async () => {
    const started = Date.now();
    let firstAt = 0;
    const c = container({ readinessProbe: probe({ initialDelaySeconds: 20 }) });
    await probeUntil(
      c,
      () => {
        firstAt ||= Date.now();
        return { ok: true };
      },
      (e) => e.some((x) => x.type === 'PROBE_READINESS'),
      { started: true },
    );
    assert.ok(firstAt - started >= 20 * SECOND_MS - 5, `first probe after ${firstAt - started} ms`);
  });
});
