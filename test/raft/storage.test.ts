import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { SqliteStorage } from '../../src/raft/sqlite-storage';
import {
  MemoryStorage,
  bootstrapStorage,
  restoreState,
  type RaftStorage,
} from '../../src/raft/storage';
import type { Entry, Snapshot } from '../../src/raft/types';

const encoder = new TextEncoder();

function entry(index: number, term: number, data = `e${index}`): Entry {
  return { index, term, type: 'normal', data: encoder.encode(data) };
}

function snapshot(index: number, term: number): Snapshot {
  return {
    index,
    term,
    config: { voters: ['n1', 'n2'], learners: ['n3'] },
    data: encoder.encode(`state@${index}`),
  };
}

function terms(s: RaftStorage): number[] {
  return s.entries(s.firstIndex(), s.lastIndex() + 1).map((e) => e.term);
}

const dir = mkdtempSync(join(tmpdir(), 'raft-storage-'));
const databases: Database.Database[] = [];
after(() => {
  for (const db of databases) if (db.open) db.close();
  rmSync(dir, { recursive: true, force: true });
});

let fileCount = 0;
function openSqlite(): SqliteStorage {
  const db = new Database(join(dir, `contract-${++fileCount}.db`));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  databases.push(db);
  return new SqliteStorage(db);
}

const IMPLEMENTATIONS: [string, () => RaftStorage][] = [
  ['MemoryStorage', () => new MemoryStorage()],
  ['SqliteStorage', openSqlite],
];

for (const [name, make] of IMPLEMENTATIONS) {
  describe(`${name} keeps the RaftStorage contract`, () => {
    it('starts empty with term 0 and no vote', () => {
      const s = make();
      assert.deepEqual(s.hardState(), { term: 0, vote: '', commit: 0 });
      assert.deepEqual([s.firstIndex(), s.lastIndex(), s.term(0)], [1, 0, 0]);
      assert.equal(s.snapshot(), undefined);
    });

    it('saves entries and hard state together', () => {
      const s = make();
      const hardState = { term: 1, vote: 'n1', commit: 1 };
      s.save({ entries: [entry(1, 1), entry(2, 1)], hardState });
      assert.deepEqual(terms(s), [1, 1]);
      assert.deepEqual(s.hardState(), { term: 1, vote: 'n1', commit: 1 });
      assert.deepEqual(s.entries(2, 3), [entry(2, 1)]);
    });

    it('replaces a conflicting suffix when entries overlap the end', () => {
      const s = make();
      s.save({ entries: [entry(1, 1), entry(2, 1), entry(3, 1)] });
      s.save({ entries: [entry(2, 2, 'new')] });
      assert.deepEqual(terms(s), [1, 2]);
      assert.equal(s.term(3), undefined);
      assert.deepEqual(s.entries(2, 3), [entry(2, 2, 'new')]);
    });

    it('refuses entries that would leave a gap', () => {
      const s = make();
      s.save({ entries: [entry(1, 1)] });
      assert.throws(() => s.save({ entries: [entry(3, 1)] }), /expected entries from 1 to 2/);
    });

    it('compacts the log up to a snapshot and keeps the entries after it', () => {
      const s = make();
      s.save({ entries: [1, 2, 3, 4].map((i) => entry(i, 1)) });
      s.compact(snapshot(2, 1));
      assert.deepEqual([s.firstIndex(), s.lastIndex(), s.term(2), s.term(1)], [3, 4, 1, undefined]);
      assert.deepEqual(terms(s), [1, 1]);
      assert.deepEqual(s.snapshot(), snapshot(2, 1));
    });

    it('replaces the whole log with a received snapshot', () => {
      const s = make();
      s.save({ entries: [entry(1, 1), entry(2, 1)] });
      s.save({ snapshot: snapshot(10, 3), entries: [entry(11, 3)] });
      assert.deepEqual([s.firstIndex(), s.lastIndex(), s.term(10)], [11, 11, 3]);
      assert.deepEqual(terms(s), [3]);
    });

    it('bootstraps a founding server once and restores what it saved', () => {
      const s = make();
      assert.ok(bootstrapStorage(s, ['n2', 'n1']));
      assert.ok(!bootstrapStorage(s, ['n9']));
      const restored = restoreState(s);
      assert.deepEqual(restored.hardState, { term: 1, vote: '', commit: 1 });
      assert.deepEqual(
        restored.entries.map((e) => [e.index, e.term, e.type]),
        [[1, 1, 'config']],
      );
    });
  });
}
