/**
 * cordon, uncordon and drain against a real API server on a single-server
 * store: the CLI's requests, the Node PATCH route and the commands they
 * become. A stand-in kubelet removes pods once they are terminating.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import pino from 'pino';
import { after, before, describe, it } from 'node:test';
import { ApiClient } from '../../src/api/client';
import { ApiServer } from '../../src/api/server';
import { runCordon, runDrain, runNodeRemove, runUncordon } from '../../src/cli/node-commands';
import type { Output } from '../../src/cli/context';
import { nodeStatus } from '../../src/tables/printers';
import { FlotillaError } from '../../src/errors';
import type { Node, Pod, ReplicaSet } from '../../src/model/types';
import type { Change } from '../../src/store/store';
import { NOW, TestStore, deployment, podOf } from '../store/fixtures';

function capture(): Output & { text: () => string } {
  let text = '';
  return { out: (s) => void (text += s), err: (s) => void (text += s), text: () => text };
}

function register(t: TestStore, name: string): void {
  const status = { conditions: [{ type: 'Ready', status: 'True' }], addresses: [] };
  const node = { metadata: { name }, status } as unknown as Pick<Node, 'metadata' | 'status'>;
  t.commit({ op: 'registerNode', node, uid: `uid-${name}`, now: NOW });
}

describe('flotilla cordon, uncordon and drain', () => {
  let t: TestStore;
  let server: ApiServer;
  let client: ApiClient;

  before(async () => {
    t = new TestStore('flotilla-nodecmd-');
    const socket = path.join(t.dir, 'api.sock');
    server = new ApiServer({ store: t.store, log: t.log, logger: pino({ level: 'silent' }) });
    await server.listenUnix(socket);
    client = new ApiClient({ socketPath: socket });
    register(t, 'alpha');
    register(t, 'beta');
  });
  after(async () => {
    await server.close();
    t.close();
  });

  it('cordon marks the node unschedulable and get nodes shows SchedulingDisabled', async () => {
    const out = capture();
    await runCordon(client, 'alpha', out);
    assert.equal(out.text(), 'node/alpha cordoned\n');
    const node = t.store.get<Node>('Node', 'alpha')!;
    assert.equal(node.spec.unschedulable, true);
    assert.equal(nodeStatus(node as never), 'Ready,SchedulingDisabled');
  });

  it('cordoning twice says the node is already cordoned', async () => {
    const out = capture();
    await runCordon(client, 'alpha', out);
    assert.equal(out.text(), 'node/alpha already cordoned\n');
  });

  it('uncordon clears spec.unschedulable', async () => {
    const out = capture();
    await runUncordon(client, 'alpha', out);
    assert.equal(out.text(), 'node/alpha uncordoned\n');
    assert.equal(t.store.get<Node>('Node', 'alpha')!.spec.unschedulable, undefined);
  });

  it("kubectl's strategic merge patch cordons and uncordons", async () => {
    const type = { 'content-type': 'application/strategic-merge-patch+json' };
    const on = { spec: { unschedulable: true } };
    await client.request('PATCH', '/api/v1/nodes/beta', on, type);
    assert.equal(t.store.get<Node>('Node', 'beta')!.spec.unschedulable, true);
    await client.request('PATCH', '/api/v1/nodes/beta', { spec: { unschedulable: null } }, type);
    assert.equal(t.store.get<Node>('Node', 'beta')!.spec.unschedulable, undefined);
  });

  it('a node patch with a non-boolean unschedulable is refused', async () => {
    const type = { 'content-type': 'application/merge-patch+json' };
    const patch = { spec: { unschedulable: 'y' } };
    const bad = client.request('PATCH', '/api/v1/nodes/beta', patch, type);
    await assert.rejects(bad, (err: FlotillaError) => err.status === 400);
  });

  it('drain evicts every pod of the node and waits until none is left', async () => {
    t.apply(deployment('web', { replicas: 3 }));
    const rs = t.store.list<ReplicaSet>('ReplicaSet')[0];
    const pods = [
      podOf(rs, 'web-1', 'alpha'),
      podOf(rs, 'web-2', 'alpha'),
      podOf(rs, 'web-3', 'beta'),
    ];
    t.commit({ op: 'createPods', pods });
    const kubelet = (changes: Change[]) => {
      for (const c of changes) {
        const pod = c.object as unknown as Pod;
        if (c.kind !== 'Pod' || c.type === 'DELETED' || !pod.metadata.deletionTimestamp) continue;
        const { name, uid } = pod.metadata;
        setTimeout(() => t.commit({ op: 'removePod', name, uid }), 50);
      }
    };
    t.store.on('change', kubelet);
    const out = capture();
    await runDrain(client, 'alpha', { timeout: '20s', pollMs: 20 }, out);
    t.store.off('change', kubelet);

    const lines = out.text().trim().split('\n');
    assert.deepEqual(lines, [
      'node/alpha cordoned',
      'pod/web-1 evicted',
      'pod/web-2 evicted',
      'node/alpha drained',
    ]);
    const left = t.store.list<Pod>('Pod').map((p) => p.metadata.name);
    assert.deepEqual(left, ['web-3']);
  });

  it('drain gives up with DrainTimeout when pods do not go', async () => {
    const rs = t.store.list<ReplicaSet>('ReplicaSet')[0];
    t.commit({ op: 'createPods', pods: [podOf(rs, 'web-4', 'beta')] });
    const err = await runDrain(client, 'beta', { timeout: '200ms', pollMs: 20 }, capture()).then(
      () => undefined,
      (e: FlotillaError) => e,
    );
    assert.equal(err?.code, 'DrainTimeout');
  });

  it('node remove on a single server without a cluster is NotFound', async () => {
    const err = await runNodeRemove(client, 'beta', capture()).catch((e: FlotillaError) => e);
    assert.equal((err as FlotillaError).status, 404);
  });
});
