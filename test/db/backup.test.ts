/**
 * Backups, restore and recover on real SQLite files: the copy holds the
 * same objects, and a restored or recovered data directory founds a
 * one-member Raft cluster (in process, on the memory network) that keeps
 * the objects, leads alone and takes new writes.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { after, describe, test } from 'node:test';
import { ClusterNode } from '../../src/cluster/cluster-node';
import { MemoryNetwork } from '../../src/cluster/memory-transport';
import {
  recoverDataDir,
  restoreDataDir,
  verifyBackup,
  writeBackup,
} from '../../src/db/backup';
import { openDatabase, type Database } from '../../src/db/open';
import { FlotillaError } from '../../src/errors';
import type { Pod } from '../../src/model/types';
import type { Command } from '../../src/store/commands';
import { Store } from '../../src/store/store';
import { NOW, deployment, service } from '../store/fixtures';

const TIMING = { tickMs: 20, electionTicks: 10, proposeTimeoutMs: 3000, compactEvery: 25 };
const logger = pino({ level: 'silent' });
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-backup-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

interface Member {
  db: Database;
  store: Store;
  node: ClusterNode;
}

/** Starts a member on DIR/state.db; founds a cluster when it holds no Raft state. */
async function startMember(
  network: MemoryNetwork,
  dir: string,
  id: string,
  join?: { address: string; token: string },
): Promise<Member & { token?: string }> {
  const db = openDatabase(path.join(dir, 'state.db'));
  const store = new Store(db);
  if (!store.getMeta('node_name')) store.setMeta('node_name', id);
  const transport = network.transport(id);
  const timing = TIMING;
  const node = new ClusterNode({ store, nodeId: id, address: id, logger, transport, timing });
  network.attach(id, node);
  network.setCut(id, false);
  const started = await node.start({
    clusterId: store.getMeta('cluster_id') ?? 'cluster-1',
    join: join?.address,
    token: join?.token,
  });
  return { db, store, node, token: started.newToken };
}

async function stopMember(network: MemoryNetwork, id: string, m: Member): Promise<void> {
  network.setCut(id, true);
  await m.node.stop();
  m.db.close();
}

function names(store: Store, kind: 'Deployment' | 'Service' | 'Pod' | 'Node'): string[] {
  return store.list(kind).map((o) => o.metadata.name);
}

let uidSerial = 0;

function applyCommand(...objects: unknown[]): Command {
  const uids = objects.map(() => `uid-${(uidSerial += 1)}`);
  return { op: 'apply', objects: objects as never, uids, now: NOW };
}

function nodeCommand(name: string): Command {
  return {
    op: 'registerNode',
    node: {
      metadata: { name, uid: '', resourceVersion: '', creationTimestamp: '' },
      status: {
        conditions: [{ type: 'Ready', status: 'True', reason: 'FlotillaReady' }],
        addresses: [{ type: 'InternalIP', address: '10.0.0.1' }],
        capacity: { cpu: '2', memory: '1Gi', pods: '110' },
        allocatable: { cpu: '2', memory: '1Gi', pods: '110' },
        nodeInfo: { kubeletVersion: 'v0' },
      },
    },
    uid: `uid-node-${name}`,
    now: NOW,
  };
}

function podOn(name: string, nodeName?: string): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'default',
      uid: `uid-${name}`,
      resourceVersion: '',
      creationTimestamp: NOW,
    },
    spec: {
      containers: [{ name: 'main', image: 'registry.test/app:1' }],
      ...(nodeName ? { nodeName } : {}),
    },
    status: { phase: 'Pending' },
  } as unknown as Pod;
}

async function waitFor(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof FlotillaError ? err.code : String(err);
  }
  return undefined;
}

describe('backup and restore', () => {
  test('a restored data directory founds a one-member cluster with the same objects', async () => {
    const network = new MemoryNetwork();
    const oldDir = path.join(root, 'old');
    const a = await startMember(network, oldDir, 'a');
    await a.node.log.propose(applyCommand(deployment('web'), service('web')));
    await a.node.log.propose(applyCommand(deployment('db', { replicas: 1 })));
    const backup = path.join(root, 'state.backup');
    writeBackup(a.db, backup);
    const before = {
      deployments: names(a.store, 'Deployment'),
      services: names(a.store, 'Service'),
    };
    const count = (a.db.prepare('SELECT COUNT(*) AS n FROM objects').get() as { n: number }).n;
    const applied = Number(a.store.getMeta('applied_index'));
    await stopMember(network, 'a', a);
    fs.rmSync(oldDir, { recursive: true });

    assert.equal(verifyBackup(backup).objects, count);
    const newDir = path.join(root, 'new');
    const summary = restoreDataDir(backup, newDir, 'r1');
    assert.equal(summary.nodeName, 'r1');

    const r = await startMember(new MemoryNetwork(), newDir, 'r1');
    assert.ok(r.token, 'the restored member founds a cluster and makes a new join token');
    assert.deepEqual(names(r.store, 'Deployment'), before.deployments);
    assert.deepEqual(names(r.store, 'Service'), before.services);
    await waitFor(() => r.node.log.isLeader(), 'the restored member to lead');
    assert.deepEqual(r.node.log.status().config.voters, ['r1']);
    const result = await r.node.log.propose(applyCommand(deployment('api')));
    assert.ok(result.index > applied, 'resourceVersions keep growing after a restore');
    assert.deepEqual(names(r.store, 'Deployment'), ['api', 'db', 'web']);
    await r.node.stop();
    r.db.close();
  });

  test('a backup holds every applied change, also those still only in the WAL', async () => {
    const dir = path.join(root, 'busy');
    const a = await startMember(new MemoryNetwork(), dir, 'busy');
    a.db.pragma('wal_autocheckpoint = 0');
    for (let i = 0; i < 20; i++) await a.node.log.propose(applyCommand(service(`svc-${i}`)));
    assert.ok(fs.statSync(path.join(dir, 'state.db-wal')).size > 0);
    const backup = path.join(root, 'busy.backup');
    writeBackup(a.db, backup);
    const copy = openDatabase(backup);
    const store = new Store(copy);
    assert.equal(store.list('Service').length, 20);
    assert.equal(store.getMeta('applied_index'), a.store.getMeta('applied_index'));
    copy.close();
    await a.node.stop();
    a.db.close();
  });

  test('restore refuses a data directory that already holds state', () => {
    const dir = path.join(root, 'taken');
    openDatabase(path.join(dir, 'state.db')).close();
    fs.writeFileSync(path.join(root, 'any.backup'), 'x');
    const backup = path.join(root, 'any.backup');
    assert.equal(codeOf(() => restoreDataDir(backup, dir)), 'DataDirNotEmpty');
  });

  test('restore refuses a file that is not a Flotilla database', () => {
    const junk = path.join(root, 'junk.backup');
    fs.writeFileSync(junk, Buffer.alloc(8192, 7));
    assert.equal(codeOf(() => restoreDataDir(junk, path.join(root, 'empty-1'))), 'BackupInvalid');
    assert.equal(fs.existsSync(path.join(root, 'empty-1', 'state.db')), false);
  });
});

describe('recover', () => {
  test('one data directory of three becomes a one-member cluster with its objects', async () => {
    const network = new MemoryNetwork();
    const dirs = ['a', 'b', 'c'].map((id) => path.join(root, `three-${id}`));
    const a = await startMember(network, dirs[0], 'a');
    const b = await startMember(network, dirs[1], 'b', { address: 'a', token: a.token! });
    const c = await startMember(network, dirs[2], 'c', { address: 'a', token: a.token! });
    const members = { a, b, c };
    await a.node.log.propose(applyCommand(deployment('web'), service('web')));
    for (const id of ['a', 'b', 'c']) await a.node.log.propose(nodeCommand(id));
    const pods = [podOn('web-1', 'b'), podOn('web-2', 'c'), podOn('web-3')];
    await a.node.log.propose({ op: 'createPods', pods });
    const last = await a.node.log.propose({ op: 'createPods', pods: [podOn('web-4', 'a')] });
    await waitFor(() => Number(b.store.getMeta('applied_index')) >= last.index, 'b to apply');
    for (const [id, m] of Object.entries(members)) await stopMember(network, id, m);

    const summary = recoverDataDir(dirs[1]);
    assert.equal(summary.nodeName, 'b');
    assert.equal(summary.droppedNodes, 2);
    assert.ok(fs.existsSync(summary.saved), 'the database before recovery is kept');

    const r = await startMember(new MemoryNetwork(), dirs[1], 'b');
    await waitFor(() => r.node.log.isLeader(), 'the recovered member to lead alone');
    assert.deepEqual(r.node.log.status().config.voters, ['b']);
    assert.deepEqual(names(r.store, 'Deployment'), ['web']);
    assert.deepEqual(names(r.store, 'Service'), ['web']);
    assert.deepEqual(names(r.store, 'Node'), ['b']);
    assert.deepEqual(names(r.store, 'Pod'), ['web-1', 'web-3'], "pods of lost members are dropped");
    assert.equal(r.store.getMeta('peer/a'), undefined);
    await r.node.log.propose(applyCommand(service('after')));
    assert.ok(r.store.get('Service', 'after'));
    await r.node.stop();
    r.db.close();
  });

  test('recover refuses a data directory without a database', () => {
    assert.equal(codeOf(() => recoverDataDir(path.join(root, 'nothing'))), 'DataDirEmpty');
  });
});
