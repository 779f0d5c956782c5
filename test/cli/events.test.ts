import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FakeApi, MIN, ago, runCli } from './fake-api';

const EVENTS = '/api/v1/namespaces/default/events';
const FAILED = 'HTTP probe failed with statuscode: 503';

function event(name: string, reason: string, message: string, count: number, times: number[]) {
  const [first, last] = times;
  return {
    metadata: { name: `${name}.${reason}` },
    involvedObject: { kind: 'Pod', name },
    type: reason === 'Unhealthy' ? 'Warning' : 'Normal',
    reason,
    message,
    count,
    firstTimestamp: ago(first),
    lastTimestamp: ago(last),
  };
}

describe('flotilla get events', () => {
  let api: FakeApi;

  before(async () => {
    const items = [
      event('web-1', 'Unhealthy', `Readiness probe failed: ${FAILED}`, 3, [10 * MIN, 2 * MIN]),
      event('web-2', 'Started', 'Started container main', 1, [20 * MIN, 20 * MIN]),
    ];
    api = new FakeApi().on(`GET ${EVENTS}`, { status: 200, body: { items } });
    await api.start();
  });
  after(() => api.stop());

  it("prints kubectl's event table, oldest first, with repeat counts", async () => {
    const r = await runCli(['--data-dir', api.dataDir, 'get', 'events']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0], /^LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+MESSAGE$/);
    assert.match(lines[1], /^20m\s+Normal\s+Started\s+pod\/web-2\s+Started container main$/);
    assert.match(
      lines[2],
      /^2m \(x3 over 10m\)\s+Warning\s+Unhealthy\s+pod\/web-1\s+Readiness probe failed/,
    );
  });

  it('shows only the events about the objects named', async () => {
    const r = await runCli(['--data-dir', api.dataDir, 'get', 'events', 'web-2', '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const list = JSON.parse(r.stdout);
    assert.deepEqual(list.items.map((e: { reason: string }) => e.reason), ['Started']);
    assert.equal(list.items[0].kind, 'Event');
  });
});
