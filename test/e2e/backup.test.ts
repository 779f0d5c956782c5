/**
 * Backup, restore and recover with real agents and Docker. One agent runs
 * the example, is backed up online, stopped and wiped; the backup restored
 * into a new data directory starts with the same objects and serves the
 * example again. Then three agents form a cluster, all are killed, and one
 * data directory, recovered, starts a one-node cluster that keeps the
 * objects, takes writes and serves.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { ROOT, TestAgent, dockerAvailable, freeLoopbackAddress, httpGet, waitFor } from './harness';

const EXAMPLE = path.join(ROOT, 'examples', 'awesome-product.yaml');
const skip = dockerAvailable() ? false : 'no Docker engine on this machine';

interface Item {
  metadata: { name: string; uid: string };
  spec?: unknown;
}

interface DeploymentJson extends Item {
  spec: { replicas: number };
  status?: { readyReplicas?: number };
}

function items<T = Item>(agent: TestAgent, kind: string): T[] {
  const r = agent.cli(['get', kind, '-o', 'json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout).items as T[];
}

/** Names, uids and specs of the user's objects: what a restore must give back. */
function userObjects(agent: TestAgent): unknown {
  const pick = (o: Item) => ({ name: o.metadata.name, uid: o.metadata.uid, spec: o.spec });
  return {
    deployments: items(agent, 'deployments').map(pick),
    services: items(agent, 'services').map(pick),
  };
}

function allReady(agent: TestAgent): boolean {
  const r = agent.cli(['get', 'deployments', '-o', 'json']);
  if (r.code !== 0) return false;
  const list = JSON.parse(r.stdout).items as DeploymentJson[];
  return list.length > 0 && list.every((d) => (d.status?.readyReplicas ?? 0) === d.spec.replicas);
}

async function answers(url: string): Promise<boolean> {
  try {
    return (await httpGet(url)).length > 0;
  } catch {
    return false;
  }
}

describe('backup and restore of a running agent', { skip }, () => {
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-e2e-backup-'));
  const name = `backup-${crypto.randomBytes(3).toString('hex')}`;
  const original = new TestAgent(freeLoopbackAddress(), name);
  const restored = new TestAgent(freeLoopbackAddress(), name);
  after(async () => {
    await Promise.all([original.cleanup(), restored.cleanup()]);
    fs.rmSync(workDir, { recursive: true, force: true });
  });

  test('backup, wipe and restore give back the same objects, served again', async () => {
    await original.start();
    const applied = original.cli(['apply', '-f', EXAMPLE]);
    assert.equal(applied.code, 0, applied.stderr);
    await waitFor(
      () => allReady(original),
      45_000,
      () => original.logs(),
    );
    const before = userObjects(original);

    const file = path.join(workDir, 'flotilla.backup');
    const backup = original.cli(['backup', file]);
    assert.equal(backup.code, 0, backup.stderr);
    assert.match(backup.stdout, /^backup written to /);
    await original.kill('SIGTERM');
    fs.rmSync(original.dataDir, { recursive: true, force: true });

    const restore = restored.cli(['restore', file]);
    assert.equal(restore.code, 0, restore.stderr);
    await restored.start();
    assert.deepEqual(userObjects(restored), before);
    await waitFor(
      () => allReady(restored),
      45_000,
      () => restored.logs(),
    );
    await waitFor(
      () => answers(`http://${restored.address}/`),
      20_000,
      () => restored.logs(),
    );
  });
});

describe('recover after quorum is lost for good', { skip }, () => {
  const octet = crypto.randomInt(100, 200);
  // Fourth octets above 249 are never handed out by freeLoopbackAddress.
  const members = [250, 251, 252].map(
    (n) => new TestAgent(`127.0.${octet}.${n}`, `rec-${n}-${octet}`),
  );
  const survivor = members[1];
  const recovered = new TestAgent(survivor.address, survivor.name);
  after(() => Promise.all([...members, recovered].map((a) => a.cleanup())));

  test('one data directory of three starts a one-node cluster that keeps the objects', async () => {
    const [founder, ...joiners] = members;
    await founder.start();
    const token = founder.joinToken();
    assert.ok(token, founder.logs());
    for (const m of joiners) await m.joinTo(`${founder.address}:7946`, token).start();
    const applied = founder.cli(['apply', '-f', EXAMPLE]);
    assert.equal(applied.code, 0, applied.stderr);
    await waitFor(
      () => allReady(survivor),
      45_000,
      () => survivor.logs(),
    );
    const before = userObjects(survivor);
    await Promise.all(members.map((m) => m.kill('SIGKILL')));

    // The surviving directory, moved to where the new cluster runs.
    fs.cpSync(survivor.dataDir, recovered.dataDir, {
      recursive: true,
      filter: (src) => !src.endsWith('.sock'),
    });
    const recover = recovered.cli(['recover']);
    assert.equal(recover.code, 0, recover.stderr);
    assert.match(recover.stdout, /dropped 2 other nodes/);
    await recovered.start();

    type NodeJson = Item & { metadata: { annotations?: Record<string, string> } };
    const nodes = items<NodeJson>(recovered, 'nodes');
    assert.deepEqual(
      nodes.map((n) => n.metadata.name),
      [survivor.name],
    );
    assert.equal(nodes[0].metadata.annotations?.['flotilla.io/role'], 'leader');
    assert.deepEqual(userObjects(recovered), before);
    const scaled = recovered.cli(['scale', 'deployment', 'awesome-product', '--replicas', '2']);
    assert.equal(scaled.code, 0, scaled.stderr);
    await waitFor(
      () => allReady(recovered),
      45_000,
      () => recovered.logs(),
    );
    await waitFor(
      () => answers(`http://${recovered.address}/`),
      20_000,
      () => recovered.logs(),
    );
  });
});
