import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { RaftStorageError } from '../../src/errors';
import { createPrng } from '../../src/raft/prng';
import { RaftNode } from '../../src/raft/raft-node';
import { SqliteStorage } from '../../src/raft/sqlite-storage';
import { bootstrapStorage, persistBatch, restoreState } from '../../src/raft/storage';
import type { Entry } from '../../src/raft/types';

const encoder = new TextEncoder();
const dir = mkdtempSync(join(tmpdir(), 'raft-sqlite-'));
const open: Database.Database[] = [];

after(() => {
  for (const db of open) if (db.open) db.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Opens a database the way the agent must: WAL and synchronous=FULL. */
function openDatabase(file: string): Database.Database {
  const db = new Database(join(dir, file));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  open.push(db);
  return db;
}

function entry(index: number, term: number): Entry {
  return { index, term, type: 'normal', data: encoder.encode(`cmd-${index}`) };
}

describe('SqliteStorage on a real SQLite file', () => {
  it('keeps hard state, entries and snapshot across closing and reopening', () => {
    const first = openDatabase('reopen.db');
    const storage = new SqliteStorage(first);
    storage.save({
      entries: [1, 2, 3, 4, 5].map((i) => entry(i, 2)),
      hardState: { term: 2, vote: 'n2', commit: 4 },
    });
    const snap = {
      index: 3, term: 2, config: { voters: ['n1'], learners: [] }, data: encoder.encode('s'),
    };
    storage.compact(snap);
    first.close();

    const reopened = new SqliteStorage(openDatabase('reopen.db'));
    assert.deepEqual(reopened.hardState(), { term: 2, vote: 'n2', commit: 4 });
    assert.deepEqual([reopened.firstIndex(), reopened.lastIndex()], [4, 5]);
    assert.deepEqual(reopened.entries(4, 6), [entry(4, 2), entry(5, 2)]);
    assert.deepEqual(reopened.snapshot(), snap);
  });

  it('leaves the caller’s pragmas alone and shares the database with other tables', () => {
    const db = openDatabase('shared.db');
    db.exec('CREATE TABLE pods (name TEXT PRIMARY KEY)');
    new SqliteStorage(db).save({ entries: [entry(1, 1)] });
    assert.equal(db.pragma('synchronous', { simple: true }), 2);
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    const tables = db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
      .pluck()
      .all();
    assert.deepEqual(tables, ['pods', 'raft_hard_state', 'raft_log', 'raft_snapshot']);
  });

  it('writes nothing of a batch that fails part-way', () => {
    const db = openDatabase('atomic.db');
    const storage = new SqliteStorage(db);
    storage.save({ entries: [entry(1, 1)], hardState: { term: 1, vote: '', commit: 0 } });
    db.exec(`CREATE TRIGGER refuse BEFORE INSERT ON raft_log WHEN NEW.idx = 3
             BEGIN SELECT RAISE(ABORT, 'refused'); END`);
    assert.throws(
      () =>
        storage.save({
          entries: [entry(2, 1), entry(3, 1)],
          hardState: { term: 9, vote: '', commit: 0 },
        }),
      (err: unknown) => err instanceof RaftStorageError && err.code === 'RaftStorageFailed',
    );
    assert.equal(storage.lastIndex(), 1);
    assert.deepEqual(storage.hardState(), { term: 1, vote: '', commit: 0 });
    assert.equal(new SqliteStorage(db).lastIndex(), 1);
  });

  it('translates SQLite failures into RaftStorageError keeping the cause', () => {
    const db = openDatabase('closed.db');
    const storage = new SqliteStorage(db);
    db.exec('DROP TABLE raft_log');
    assert.throws(
      () => storage.entries(1, 2),
      (err: unknown) =>
        err instanceof RaftStorageError && (err.cause as Error).name === 'SqliteError',
    );
  });

  it('restarts a single-voter node from the file with its log and commit', () => {
    const options = { id: 'n1', electionTicks: 10, heartbeatTicks: 2, random: createPrng(5) };
    const db = openDatabase('node.db');
    const storage = new SqliteStorage(db);
    bootstrapStorage(storage, ['n1']);
    const node = new RaftNode(options, restoreState(storage));
    const pump = () => {
      while (node.hasReady()) {
        storage.save(persistBatch(node.ready()));
        node.advance();
      }
    };
    for (let i = 0; i < 30 && node.status().role !== 'leader'; i++) {
      node.tick();
      pump();
    }
    assert.ok(node.propose('written').ok);
    pump();
    db.close();

    const again = new SqliteStorage(openDatabase('node.db'));
    const restarted = new RaftNode(options, restoreState(again));
    const s = restarted.status();
    assert.deepEqual([s.commit, s.lastIndex], [3, 3]);
    assert.equal(new TextDecoder().decode(again.entries(3, 4)[0].data), 'written');
  });
});
