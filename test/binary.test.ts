import { strict as assert } from 'node:assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';

import { VERSION } from '../src/version';

// Compiled to build/test/, so the checkout's root is two levels up.
const BINARY = path.resolve(__dirname, '..', '..', 'dist', 'flotilla');
const skip = fs.existsSync(BINARY)
  ? false
  : 'dist/flotilla is not built (npm run build:binary)';
const READY_TIMEOUT_MS = 30_000;

describe('the single executable', { skip }, () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;

  before(() => {
    // No node_modules above this folder and no node on PATH: the binary
    // must bring everything it needs.
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-binary-'));
    env = { PATH: '/usr/bin:/bin', XDG_CACHE_HOME: path.join(dir, 'cache') };
  });

  after(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('prints its version from a folder without node_modules', () => {
    const result = spawnSync(BINARY, ['version', '--client'], {
      cwd: dir,
      env,
      encoding: 'utf8',
      timeout: READY_TIMEOUT_MS,
    });

    assert.equal(result.status, 0, result.stderr);
    const version = VERSION.replace(/\./g, '\\.');
    assert.match(result.stdout, new RegExp(`\\bv${version}\\b`));
  });

  test('runs an agent whose SQLite addon comes from the executable', async () => {
    const dataDir = path.join(dir, 'data');
    const agent = spawn(
      BINARY,
      ['--data-dir', dataDir, 'agent', '--name', `binary-test-${process.pid}`,
        '--listen', '127.0.0.1:0', '--log-level', 'info'],
      { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const exited = waitForExit(agent);

    try {
      await waitForLogMessage(agent, 'agent ready');
    } finally {
      agent.kill('SIGTERM');
    }
    await exited;

    assert.ok(fs.existsSync(path.join(dataDir, 'state.db')));
    const cached = fs.readdirSync(path.join(dir, 'cache', 'flotilla'));
    const addon = /^better_sqlite3-[0-9a-f]{16}\.node$/;
    assert.ok(cached.some((name) => addon.test(name)), `cache holds ${cached}`);
  });
});

function waitForExit(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/**
 * Resolves on the first JSON log line, on stdout or stderr, whose msg is
 * this one; rejects if the process exits first or the timeout passes.
 */
function waitForLogMessage(child: ChildProcess, msg: string): Promise<void> {
  const seen: string[] = [];

  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => fail('timed out'), READY_TIMEOUT_MS);
    const fail = (why: string) => {
      clearTimeout(timer);
      const output = seen.join('\n');
      reject(new Error(`no "${msg}" log line (${why}); output:\n${output}`));
    };
    const onLine = (line: string) => {
      seen.push(line);
      if (parseMessage(line) !== msg) return;
      clearTimeout(timer);
      resolve();
    };
    child.once('exit', (code) => fail(`exited with ${code}`));
    createInterface({ input: child.stdout! }).on('line', onLine);
    createInterface({ input: child.stderr! }).on('line', onLine);
  });
}

function parseMessage(line: string): unknown {
  try {
    return (JSON.parse(line) as { msg?: unknown }).msg;
  } catch {
    return undefined;
  }
}
