/**
 * `flotilla backup`, `restore` and `recover` as commands: the backup comes
 * from the API server over its unix socket (never over TCP), the offline
 * commands refuse to touch a data directory an agent is serving, and an
 * agent started on a damaged database exits 1 with one line.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import pino from 'pino';
import { after, before, describe, test } from 'node:test';
import { ApiServer } from '../../src/api/server';
import { newToken } from '../../src/auth/token-format';
import { saveToken, tokenRecord } from '../../src/auth/tokens';
import { caHash } from '../../src/pki';
import { runBackup } from '../../src/cli/backup';
import { openDatabase } from '../../src/db/open';
import { Store } from '../../src/store/store';
import { TestStore, deployment, service } from '../store/fixtures';

const MAIN = path.resolve(__dirname, '..', '..', 'src', 'main.js');

function flotilla(args: string[]) {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function get(host: string, port: number, urlPath: string, token?: string): Promise<number> {
  const headers = token ? { authorization: `Bearer ${token}` } : {};
  return new Promise((resolve, reject) => {
    http
      .get({ host, port, path: urlPath, headers }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
      .on('error', reject);
  });
}

describe('flotilla backup, restore and recover', () => {
  let t: TestStore;
  let server: ApiServer;
  let port: number;
  let objects: number;

  before(async () => {
    t = new TestStore('flotilla-cli-backup-');
    server = new ApiServer({ store: t.store, log: t.log, logger: pino({ level: 'silent' }) });
    await server.listenUnix(path.join(t.dir, 'flotilla.sock'));
    port = await server.listenTcp('127.0.0.1', 0);
    t.store.setMeta('node_name', 'n1');
    t.apply(deployment('web'), service('web'), deployment('db'));
    objects = t.db.prepare('SELECT COUNT(*) FROM objects').pluck().get() as number;
  });
  after(async () => {
    await server.close();
    t.close();
  });

  test('backup writes a checked copy of the agent state and says what it holds', async () => {
    const file = path.join(t.dir, 'copy.db');
    const lines: string[] = [];
    await runBackup(t.dir, file, { out: (s) => void lines.push(s), err: () => undefined });
    const said = new RegExp(
      `^backup written to .*copy\\.db \\(${objects} objects, \\d+ bytes\\)\n$`,
    );
    assert.match(lines.join(''), said);
    const db = openDatabase(file);
    const names = new Store(db).list('Deployment').map((d) => d.metadata.name);
    db.close();
    assert.deepEqual(names, ['db', 'web']);
    assert.equal(fs.existsSync(`${file}.partial`), false);
  });

  test('the backup route answers only on the admin socket', async () => {
    const route = '/apis/flotilla.io/v1/backup';
    assert.equal(await get('127.0.0.1', port, route), 401);
    // Even an admin token does not take the CA key and token hashes off the machine.
    const caPem = fs.readFileSync(
      path.join(__dirname, '../../../test/fixtures/pki/ca.crt'),
      'utf8',
    );
    t.store.setMeta('ca_cert', caPem);
    const admin = newToken(caHash(caPem));
    saveToken(t.store, tokenRecord(admin.id, admin.secret, 'admin', { now: new Date() }));
    assert.equal(await get('127.0.0.1', port, route, admin.text), 403);
    // The copy streamed by the previous test is removed once its stream closes.
    const leftovers = () => fs.readdirSync(t.dir).filter((f) => f.includes('.backup-'));
    const deadline = Date.now() + 10_000;
    while (leftovers().length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.deepEqual(leftovers(), []);
  });

  test('restore and recover refuse a data directory an agent is serving', () => {
    const backup = path.join(t.dir, 'copy.db');
    const restore = flotilla(['--data-dir', t.dir, 'restore', backup]);
    assert.equal(restore.code, 1);
    assert.match(restore.stderr, /^error: an agent is running on .*; stop it first\n$/);
    const recover = flotilla(['--data-dir', t.dir, 'recover']);
    assert.equal(recover.code, 1);
    assert.match(recover.stderr, /^error: an agent is running on /);
  });

  test('restore through the command line writes a data directory named after the node', () => {
    const target = path.join(t.dir, 'restored');
    const r = flotilla(['--data-dir', target, 'restore', path.join(t.dir, 'copy.db')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`restored .* node n1, ${objects} objects`));
    assert.match(r.stdout, /flotilla agent --data-dir .* --name n1/);
    const db = openDatabase(path.join(target, 'state.db'));
    const tables = db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'raft%'")
      .all();
    db.close();
    assert.deepEqual(tables, [], 'the old cluster Raft state is gone');
  });

  test('an agent on a damaged database exits 1 with one line naming the file', () => {
    const dir = path.join(t.dir, 'damaged');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'state.db'), Buffer.alloc(16384, 0x42));
    const r = flotilla(['--data-dir', dir, 'agent', '--name', 'x']);
    assert.equal(r.code, 1);
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    const file = path.join(dir, 'state.db');
    assert.ok(lines[0].startsWith(`error: state database ${file} is damaged`), lines[0]);
    assert.match(lines[0], /flotilla restore .*flotilla recover/);
  });
});
