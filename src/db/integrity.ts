/**
 * The start-up integrity check. A damaged state database must stop the agent
 * with one message that names the file and the way out, not crash it later
 * in the middle of applying an entry (and again on every restart).
 */
import type BetterSqlite3 from 'better-sqlite3';
import { DatabaseError } from '../errors';

/** SQLite result codes that mean the file itself is unusable. */
const DAMAGED_CODES = new Set(['SQLITE_CORRUPT', 'SQLITE_NOTADB', 'SQLITE_CORRUPT_VTAB']);

/**
 * Runs `PRAGMA quick_check` (linear in the file size, unlike the full
 * integrity_check) and throws a DatabaseError naming `file` when it finds
 * damage.
 */
export function checkIntegrity(db: BetterSqlite3.Database, file: string): void {
  let problems: string[];
  try {
    const rows = db.pragma('quick_check') as { quick_check: string }[];
    problems = rows.map((r) => r.quick_check).filter((text) => text !== 'ok');
  } catch (err) {
    if (!isDamage(err)) throw err;
    throw damagedDatabase(file, (err as Error).message, err);
  }
  if (problems.length > 0) throw damagedDatabase(file, problems[0]);
}

/** True for a SQLite error that says the file is corrupt or not a database. */
export function isDamage(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && DAMAGED_CODES.has(code);
}

/** The one-line refusal for a damaged file, with the commands that recover from it. */
export function damagedDatabase(file: string, detail: string, cause?: unknown): DatabaseError {
  const message =
    `state database ${file} is damaged (${detail.split('\n')[0]}); ` +
    'move it aside, then either restore a backup into an empty data directory ' +
    '(flotilla restore --data-dir DIR BACKUP_FILE), start with an empty data directory ' +
    'and --join to copy the state from the cluster, or, if quorum is lost for good, ' +
    'run flotilla recover --data-dir DIR on a surviving member';
  return new DatabaseError(message, cause === undefined ? undefined : { cause });
}
