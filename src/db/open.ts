import fs from 'node:fs';
import path from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { DatabaseError } from '../errors';
import { checkIntegrity, damagedDatabase, isDamage } from './integrity';
import { MIGRATIONS } from './migrations';
import { betterSqliteNativeBinding } from './native-binding';

/** An open better-sqlite3 handle. */
export type Database = BetterSqlite3.Database;

export { DatabaseError };

/**
 * The WAL file is truncated to this size after a checkpoint. Without a
 * limit it stays as large as the biggest burst of writes ever made.
 */
export const WAL_SIZE_LIMIT_BYTES = 8 * 1024 * 1024;

/**
 * Opens (creating if needed) the agent's state database, checks it for
 * damage and brings its schema up to date. WAL lets readers run beside the
 * single writer; synchronous=FULL makes every commit durable before it
 * returns, which is what lets the agent acknowledge a change the moment its
 * transaction commits. SQLite checkpoints the WAL every 1000 pages by
 * itself (wal_autocheckpoint), and journal_size_limit then shrinks it.
 */
export function openDatabase(file: string): Database {
  // Loaded here, not at the top, so that CLI commands that never touch the
  // database do not pay for the native addon.
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const Sqlite = require('better-sqlite3') as typeof BetterSqlite3;
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  keepPrivate(file);

  let db: Database | undefined;
  try {
    db = new Sqlite(file, { nativeBinding: betterSqliteNativeBinding() });
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 5000');
    db.pragma('foreign_keys = ON');
    db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
  } catch (err) {
    db?.close();
    if (isDamage(err)) throw damagedDatabase(file, errorText(err), err);
    throw new DatabaseError(`cannot open state database ${file}: ${errorText(err)}`, {
      cause: err,
    });
  }
  try {
    checkIntegrity(db, file);
    migrate(db, file);
  } catch (err) {
    db.close();
    if (isDamage(err)) throw damagedDatabase(file, errorText(err), err);
    throw err;
  }
  return db;
}

function migrate(db: Database, file: string): void {
  const applied = db.pragma('user_version', { simple: true }) as number;
  if (applied > MIGRATIONS.length) {
    throw new DatabaseError(
      `${file} was written by a newer Flotilla (schema ${applied}, this one knows ` +
        `${MIGRATIONS.length}); run the newer binary`,
    );
  }
  for (let i = applied; i < MIGRATIONS.length; i++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[i]);
      db.pragma(`user_version = ${i + 1}`);
    })();
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The state holds the cluster's CA key and token hashes: the database and
 * its WAL and shared-memory files are the owner's alone, whatever the
 * umask (SQLite gives the side files the main file's mode).
 */
function keepPrivate(file: string): void {
  try {
    fs.closeSync(fs.openSync(file, 'a', 0o600));
    for (const f of [file, `${file}-wal`, `${file}-shm`]) {
      if (fs.existsSync(f)) fs.chmodSync(f, 0o600);
    }
  } catch {
    // A read-only location fails at open below, with a clearer message.
  }
}
