/**
 * Backups of the state database and the two offline rewrites of a data
 * directory that start a new one-member cluster from saved state:
 * `restore` (from a backup file) and `recover` (in place, from a member
 * that survived the loss of its cluster's majority).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { BackupError } from '../errors';
import { checkIntegrity } from './integrity';
import { betterSqliteNativeBinding } from './native-binding';
import { openDatabase, type Database } from './open';

/** The state database's file name inside a data directory. */
export const STATE_FILE = 'state.db';

/** The Raft tables (src/raft/sqlite-storage.ts); dropped so the next start founds anew. */
const RAFT_TABLES = ['raft_log', 'raft_hard_state', 'raft_snapshot'];
const PEER_PREFIX = 'peer/';

/** What a backup file holds, as far as restoring it is concerned. */
export interface BackupSummary {
  objects: number;
  /** The node whose database was copied. */
  nodeName?: string;
  clusterId?: string;
}

/** How a data directory was rewritten. */
export interface ResetSummary {
  nodeName: string;
  objects: number;
  /** Pods and Nodes of other members, dropped because those members are gone. */
  droppedPods: number;
  droppedNodes: number;
}

/**
 * Writes a consistent copy of `db` to `dest` (which must not exist).
 * VACUUM INTO reads inside one transaction, so the copy is the state at one
 * applied index even while the agent keeps writing, and it is compact.
 */
export function writeBackup(db: Database, dest: string): void {
  db.prepare('VACUUM INTO ?').run(dest);
}

/**
 * Answers GET /apis/flotilla.io/v1/backup: a fresh copy of the database,
 * streamed and then deleted. Only on the unix socket, since the copy holds
 * the join token.
 */
export function serveBackup(db: Database, req: http.IncomingMessage, res: http.ServerResponse) {
  if (typeof req.socket.remoteAddress === 'string') {
    throw new BackupError('BackupForbidden', 'backups are only given on the admin socket');
  }
  const dest = `${db.name}.backup-${crypto.randomBytes(6).toString('hex')}`;
  writeBackup(db, dest);
  const size = fs.statSync(dest).size;
  const stream = fs.createReadStream(dest);
  const remove = () => fs.rm(dest, { force: true }, () => undefined);
  stream.on('close', remove);
  stream.on('error', () => res.destroy());
  res.on('close', () => stream.destroy());
  res.writeHead(200, { 'content-type': 'application/vnd.sqlite3', 'content-length': size });
  stream.pipe(res);
}

/** Checks that `file` is an undamaged Flotilla state database and says what it holds. */
export function verifyBackup(file: string): BackupSummary {
  if (!fs.existsSync(file)) throw new BackupError('BackupInvalid', `${file} does not exist`);
  let db: BetterSqlite3.Database | undefined;
  try {
    db = openReadOnly(file);
    checkIntegrity(db, file);
    const objects = (db.prepare('SELECT COUNT(*) AS n FROM objects').get() as { n: number }).n;
    return {
      objects,
      nodeName: readMeta(db, 'node_name'),
      clusterId: readMeta(db, 'cluster_id'),
    };
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    throw new BackupError('BackupInvalid', `${file} is not a usable Flotilla backup: ${detail}`, {
      cause: err,
    });
  } finally {
    db?.close();
  }
}

/**
 * Makes `dataDir` (without state) start a new one-member cluster holding the
 * objects of `backupFile`. The node keeps the backed-up node's name unless
 * `nodeName` is given; pods and nodes of other members are dropped.
 */
export function restoreDataDir(backupFile: string, dataDir: string, nodeName?: string) {
  const target = path.join(dataDir, STATE_FILE);
  if (fs.existsSync(target)) {
    throw new BackupError(
      'DataDirNotEmpty',
      `${dataDir} already holds a state database; restore into an empty data directory`,
    );
  }
  const backup = verifyBackup(backupFile);
  const name = nodeName ?? backup.nodeName;
  if (!name) throw new BackupError('BackupInvalid', `${backupFile} names no node: give --name`);

  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const partial = `${target}.restoring`;
  fs.rmSync(partial, { force: true });
  fs.copyFileSync(backupFile, partial);
  fs.chmodSync(partial, 0o600);
  const summary = rewriteFile(partial, name);
  fs.renameSync(partial, target);
  return summary;
}

/**
 * Makes the data directory of a member whose cluster lost its majority for
 * good start as a one-member cluster with the state it had applied. A copy
 * of the database is kept beside it first (`state.db.before-recover`).
 */
export function recoverDataDir(dataDir: string): ResetSummary & { saved: string } {
  const target = path.join(dataDir, STATE_FILE);
  if (!fs.existsSync(target)) {
    throw new BackupError('DataDirEmpty', `${dataDir} holds no state database to recover from`);
  }
  const db = openDatabase(target);
  try {
    const name = readMeta(db, 'node_name');
    if (!name) throw new BackupError('BackupInvalid', `${target} names no node; it never started`);
    const saved = `${target}.before-recover`;
    fs.rmSync(saved, { force: true });
    writeBackup(db, saved);
    return { ...resetToSingleMember(db, name), saved };
  } finally {
    db.close();
  }
}

function rewriteFile(file: string, nodeName: string): ResetSummary {
  const db = openDatabase(file);
  try {
    return resetToSingleMember(db, nodeName);
  } finally {
    db.close();
  }
}

/**
 * Removes every trace of the old cluster's membership, in one transaction,
 * so the next start founds a cluster of this node alone (see
 * RaftCommandLog.bootstrap: the tables become its first snapshot, at the
 * applied index, so resourceVersions keep growing):
 * - the Raft log, hard state and snapshot: without them the node counts as
 *   new, votes for itself and is the single voter;
 * - the cluster's CA, gossip key and tokens (founding makes new ones and
 *   prints a join token) and the other members' addresses;
 * - the Node objects of other members and the pods bound to them, which no
 *   kubelet would ever stop or report on; their Deployments recreate them
 *   here. Unscheduled pods stay.
 * Entries the old log held beyond the applied index are dropped with it.
 */
export function resetToSingleMember(db: Database, nodeName: string): ResetSummary {
  return db.transaction(() => {
    for (const table of RAFT_TABLES) db.exec(`DROP TABLE IF EXISTS ${table}`);
    const previous = readMeta(db, 'node_name');
    // Actor snapshots belong to the machine that wrote them.
    if (previous !== nodeName) db.exec('DELETE FROM actor_snapshots');
    // The new cluster gets a new CA, gossip key and join token when it is founded.
    db.prepare(
      "DELETE FROM meta WHERE key IN ('join_token', 'ca_cert', 'ca_key', 'gossip_key') " +
        "OR key LIKE 'token/%'",
    ).run();
    db.prepare('DELETE FROM meta WHERE key LIKE ? AND key <> ?').run(
      `${PEER_PREFIX}%`,
      `${PEER_PREFIX}${nodeName}`,
    );
    setMeta(db, 'node_name', nodeName);
    const droppedNodes = db
      .prepare("DELETE FROM objects WHERE kind = 'Node' AND name <> ?")
      .run(nodeName).changes;
    const droppedPods = db
      .prepare(
        `DELETE FROM objects WHERE kind = 'Pod'
           AND COALESCE(json_extract(body, '$.spec.nodeName'), '') NOT IN ('', ?)`,
      )
      .run(nodeName).changes;
    const objects = (db.prepare('SELECT COUNT(*) AS n FROM objects').get() as { n: number }).n;
    return { nodeName, objects, droppedPods, droppedNodes };
  })();
}

function readMeta(db: BetterSqlite3.Database, key: string): string | undefined {
  const row = db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as
    { value: string } | undefined;
  return row?.value;
}

function setMeta(db: Database, key: string, value: string): void {
  db.prepare(
    `INSERT INTO meta (key, value) VALUES (?, ?)
     ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
  ).run(key, value);
}

function openReadOnly(file: string): BetterSqlite3.Database {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const Sqlite = require('better-sqlite3') as typeof BetterSqlite3;
  return new Sqlite(file, {
    readonly: true,
    fileMustExist: true,
    nativeBinding: betterSqliteNativeBinding(),
  });
}
