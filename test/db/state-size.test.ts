/**
 * Bounded state under churn, at a tenth of the scale of
 * scripts/bench/state-size.sh: with compaction every 500 entries, the Raft
 * log, the object tables and the file on disk stop growing.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { churnState } from './state-churn';

const COMPACT_EVERY = 500;
const CHANGES = 3000;
// tmpfs when there is one: the sizes are the same, and fsync is not what is tested.
const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
const dir = fs.mkdtempSync(path.join(base, 'flotilla-state-size-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('scale and apply churn leaves the log, the tables and the file flat', async () => {
  const samples = await churnState({
    dir,
    changes: CHANGES,
    compactEvery: COMPACT_EVERY,
    sampleEvery: 300,
    eventsEvery: 10,
  });

  const firstHalf = samples.filter((s) => s.changes <= CHANGES / 2);
  const secondHalf = samples.filter((s) => s.changes > CHANGES / 2);
  const peak = (list: typeof samples, key: 'totalBytes' | 'objects' | 'raftEntries') =>
    Math.max(...list.map((s) => s[key]));
  // Two log entries per change (the apply and the status), one event per ten.
  const perCompaction = COMPACT_EVERY + 2 * 1.1 * 300;
  assert.ok(peak(samples, 'raftEntries') <= perCompaction, 'the Raft log is compacted');
  assert.ok(
    peak(secondHalf, 'objects') <= peak(firstHalf, 'objects'),
    'ReplicaSets are pruned and events expire',
  );
  assert.ok(
    peak(secondHalf, 'totalBytes') <= peak(firstHalf, 'totalBytes') * 1.1,
    `the file stops growing: ${JSON.stringify(samples.map((s) => s.totalBytes))}`,
  );
  assert.ok(peak(samples, 'totalBytes') < 16 * 1024 * 1024);
});
