/**
 * `flotilla backup FILE` (online, through the running agent), and the two
 * offline commands that rewrite a data directory before an agent starts on
 * it: `restore FILE` and `recover`.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { AgentUnreachableError, ApiError, BackupError, InvalidError } from '../errors';
import { recoverDataDir, restoreDataDir, verifyBackup, type ResetSummary } from '../db/backup';
import type { Output } from './context';

/** Where the running agent serves its backups. */
export const BACKUP_PATH = '/apis/flotilla.io/v1/backup';

/** Saves a consistent copy of the agent's state to `file`, checked before it is kept. */
export async function runBackup(dataDir: string, file: string, output: Output): Promise<void> {
  const socketPath = path.join(dataDir, 'flotilla.sock');
  const partial = `${file}.partial`;
  const dir = path.dirname(path.resolve(file));
  if (!fs.existsSync(dir)) throw new InvalidError(`cannot write ${file}: ${dir} does not exist`);
  try {
    await download(socketPath, partial);
    const summary = verifyBackup(partial);
    fs.renameSync(partial, file);
    const bytes = fs.statSync(file).size;
    output.out(`backup written to ${file} (${summary.objects} objects, ${bytes} bytes)\n`);
  } finally {
    fs.rmSync(partial, { force: true });
  }
}

/** Writes a data directory that starts a one-member cluster from a backup. */
export async function runRestore(
  dataDir: string,
  file: string,
  opts: { name?: string },
  output: Output,
): Promise<void> {
  await refuseWhileRunning(dataDir);
  const summary = restoreDataDir(file, dataDir, opts.name);
  output.out(`restored ${file} into ${dataDir}: ${describe(summary)}\n`);
  output.out(`start it with: flotilla agent --data-dir ${dataDir} --name ${summary.nodeName}\n`);
}

/** Rewrites a surviving member's data directory into a one-member cluster. */
export async function runRecover(dataDir: string, output: Output): Promise<void> {
  await refuseWhileRunning(dataDir);
  const summary = recoverDataDir(dataDir);
  output.out(
    `recovered ${dataDir}: ${describe(summary)}; the old database is kept in ` +
      `${summary.saved}\n`,
  );
  output.out(`start it with: flotilla agent --data-dir ${dataDir} --name ${summary.nodeName}\n`);
}

function describe(s: ResetSummary): string {
  return (
    `node ${s.nodeName}, ${s.objects} objects; dropped ${s.droppedNodes} other nodes and ` +
    `${s.droppedPods} of their pods`
  );
}

/** An agent holds the database open and would overwrite what we write. */
async function refuseWhileRunning(dataDir: string): Promise<void> {
  const socketPath = path.join(dataDir, 'flotilla.sock');
  const answering = await new Promise<boolean>((resolve) => {
    const socket = net.connect(socketPath);
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
  if (answering) {
    throw new BackupError('AgentRunning', `an agent is running on ${dataDir}; stop it first`);
  }
}

function download(socketPath: string, dest: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath, path: BACKUP_PATH }, (res) => {
      if (res.statusCode !== 200) return void readFailure(res).then(reject, reject);
      const out = fs.createWriteStream(dest, { mode: 0o600 });
      res.pipe(out);
      res.on('error', reject);
      out.on('error', reject);
      out.on('finish', () => {
        const expected = Number(res.headers['content-length'] ?? NaN);
        const got = out.bytesWritten;
        if (Number.isFinite(expected) && got !== expected) {
          reject(new BackupError('BackupInvalid', `backup cut short: ${got} of ${expected} bytes`));
        } else resolve();
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      const down = err.code === 'ENOENT' || err.code === 'ECONNREFUSED';
      reject(down ? new AgentUnreachableError(socketPath, { cause: err }) : err);
    });
  });
}

async function readFailure(res: http.IncomingMessage): Promise<Error> {
  let text = '';
  for await (const chunk of res) text += chunk;
  let message = text;
  let reason = 'InternalError';
  try {
    const status = JSON.parse(text) as { message?: string; reason?: string };
    message = status.message ?? text;
    reason = status.reason ?? reason;
  } catch {
    // Not a Status: the raw text is the best message there is.
  }
  return new ApiError(reason, `backup failed: ${message}`, res.statusCode ?? 500);
}
