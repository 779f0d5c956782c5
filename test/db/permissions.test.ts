import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { openDatabase } from '../../src/db/open';

test('the state database and its WAL belong to the owner alone, whatever the umask', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-perm-'));
  const old = process.umask(0o022);
  try {
    const db = openDatabase(path.join(dir, 'state.db'));
    db.prepare('CREATE TABLE IF NOT EXISTS t (x)').run();
    for (const f of ['state.db', 'state.db-wal', 'state.db-shm']) {
      const mode = fs.statSync(path.join(dir, f)).mode & 0o777;
      assert.equal(mode.toString(8), '600', f);
    }
    db.close();
  } finally {
    process.umask(old);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
