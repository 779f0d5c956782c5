/**
 * The start-up integrity check: a damaged state database is refused with
 * one message naming the file and the commands that recover from it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { openDatabase, DatabaseError } from '../../src/db/open';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-integrity-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

/** A database with enough rows to span many pages, closed (checkpointed). */
function filledDatabase(name: string): string {
  const file = path.join(root, name, 'state.db');
  const db = openDatabase(file);
  const insert = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)');
  db.transaction(() => {
    for (let i = 0; i < 2000; i++) insert.run(`key-${i}`, 'v'.repeat(200));
  })();
  db.close();
  return file;
}

function refusal(file: string): DatabaseError {
  try {
    openDatabase(file).close();
  } catch (err) {
    assert.ok(err instanceof DatabaseError, `expected a DatabaseError, got ${String(err)}`);
    return err;
  }
  assert.fail(`${file} was opened`);
}

function assertNamesTheWayOut(err: DatabaseError, file: string): void {
  assert.equal(err.code, 'DatabaseUnusable');
  assert.ok(err.message.includes(file), err.message);
  assert.match(err.message, /flotilla restore/);
  assert.match(err.message, /flotilla recover/);
  assert.equal(err.message.split('\n').length, 1);
}

describe('integrity check at open', () => {
  test('opens an undamaged database', () => {
    const file = filledDatabase('good');
    const db = openDatabase(file);
    assert.equal(db.prepare('SELECT COUNT(*) AS n FROM meta').pluck().get(), 2000);
    db.close();
  });

  test('refuses a file that is not a database, naming it and the recovery commands', () => {
    const file = path.join(root, 'garbage', 'state.db');
    fs.mkdirSync(path.dirname(file));
    fs.writeFileSync(file, Buffer.alloc(16384, 0x5a));
    assertNamesTheWayOut(refusal(file), file);
  });

  test('refuses a database whose pages were overwritten', () => {
    const file = filledDatabase('torn');
    const fd = fs.openSync(file, 'r+');
    const size = fs.fstatSync(fd).size;
    // Scribble over the middle of the file, leaving the header page intact.
    fs.writeSync(fd, Buffer.alloc(8192, 0xff), 0, 8192, Math.floor(size / 2));
    fs.closeSync(fd);
    assertNamesTheWayOut(refusal(file), file);
  });
});
