#!/usr/bin/env node
'use strict';
/**
 * The measuring half of state-size.sh; run it through that script, which
 * owns the temp dir.
 *
 * Drives CHANGES scale/apply changes (each followed by the status the
 * deployment controller would record, and one event every 10 changes)
 * through a one-member Raft command log in process, compacting every
 * 10,000 applied entries as the agent does, and prints the size of
 * state.db and its WAL as it goes. Fails when the data directory ever
 * holds more than BOUND_MIB, or when the second half of the run grows
 * the database by more than 10% over the first half's peak. The
 * baseline is the same database compacted (VACUUM INTO) at the end.
 */
const fs = require('node:fs');
const path = require('node:path');

const BUILD = path.resolve(__dirname, '..', '..', 'build');
const CHANGES = Number(process.env.BENCH_CHANGES ?? 100_000);
const BOUND_MIB = Number(process.env.BENCH_BOUND_MIB ?? 48);
const SAMPLE_EVERY = Math.max(1, Math.floor(CHANGES / 20));

const [workDir] = process.argv.slice(2);
if (!workDir) fail('usage: state-size.js WORK_DIR');

function fail(message) {
  process.stderr.write(`state-size: error: ${message}\n`);
  process.exit(1);
}

const mib = (bytes) => (bytes / 1024 / 1024).toFixed(2);

function printSample(s) {
  const sizes = [s.dbBytes, s.walBytes, s.totalBytes].map(mib);
  const cells = [s.changes, ...sizes, s.raftEntries, s.objects];
  console.log(`| ${cells.join(' | ')} |`);
}

async function main() {
  const { churnState } = require(path.join(BUILD, 'test', 'db', 'state-churn.js'));
  const { openDatabase } = require(path.join(BUILD, 'src', 'db', 'open.js'));
  console.log(`${CHANGES} scale/apply changes, compaction every 10,000 entries, ` +
    `bound ${BOUND_MIB} MiB`);
  console.log('| changes | state.db MiB | WAL MiB | total MiB | raft log entries | objects |');
  console.log('|---|---|---|---|---|---|');
  const started = Date.now();
  const samples = await churnState({
    dir: workDir,
    changes: CHANGES,
    compactEvery: 10_000,
    sampleEvery: SAMPLE_EVERY,
    eventsEvery: 10,
    onSample: printSample,
  });
  const seconds = (Date.now() - started) / 1000;

  const compacted = path.join(workDir, 'compacted.db');
  const db = openDatabase(path.join(workDir, 'state.db'));
  db.prepare('VACUUM INTO ?').run(compacted);
  db.close();
  const baseline = fs.statSync(compacted).size;
  const peak = Math.max(...samples.map((s) => s.totalBytes));
  const half = samples.filter((s) => s.changes <= CHANGES / 2);
  const firstPeak = Math.max(...half.map((s) => s.totalBytes));
  const last = samples.at(-1);
  console.log('');
  console.log(`run: ${seconds.toFixed(1)} s (${Math.round(CHANGES / seconds)} changes/s)`);
  console.log(`peak on disk: ${mib(peak)} MiB; at the end: ${mib(last.totalBytes)} MiB`);
  console.log(`baseline, the end state compacted: ${mib(baseline)} MiB; ` +
    `ratio ${(last.totalBytes / baseline).toFixed(2)}x`);
  console.log(`second half growth over the first half peak: ` +
    `${((peak / firstPeak - 1) * 100).toFixed(1)}%`);
  if (peak > BOUND_MIB * 1024 * 1024) {
    fail(`peak ${mib(peak)} MiB is over the ${BOUND_MIB} MiB bound`);
  }
  if (peak > firstPeak * 1.1) fail('the database kept growing in the second half of the run');
  console.log(`ok: under the ${BOUND_MIB} MiB bound and flat`);
}

main().catch((err) => fail(err.stack || String(err)));
