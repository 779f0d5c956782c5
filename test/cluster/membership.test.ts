/**
 * Removal and promotion of members with whole clusters of ClusterNodes on
 * the memory network: `node remove`, a voter dead for too long replaced by
 * a Ready non-voter, and a removed server that comes back.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { after, describe, test } from 'node:test';
import { ClusterNode } from '../../src/cluster/cluster-node';
import { MemoryNetwork } from '../../src/cluster/memory-transport';
import { openDatabase, type Database } from '../../src/db/open';
import { FlotillaError } from '../../src/errors';
import type { Node } from '../../src/model/types';
import { isRemovedNode } from '../../src/store/apply-nodes';
import type { Command } from '../../src/store/commands';
import { Store } from '../../src/store/store';

const TIMING = { tickMs: 20, electionTicks: 10, proposeTimeoutMs: 3000 };
const logger = pino({ level: 'silent' });

interface Member {
  id: string;
  db: Database;
  store: Store;
  node: ClusterNode;
}

class TestCluster {
  readonly network = new MemoryNetwork();
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-members-'));
  readonly members = new Map<string, Member>();
  token = '';

  constructor(private readonly promoteAfterMs: number) {}

  async start(id: string, join?: string): Promise<Member> {
    const db = openDatabase(path.join(this.dir, `${id}.db`));
    const store = new Store(db);
    const transport = this.network.transport(id);
    const node = new ClusterNode({
      store,
      nodeId: id,
      address: id,
      logger,
      transport,
      timing: TIMING,
      promoteAfterMs: this.promoteAfterMs,
    });
    this.network.attach(id, node);
    this.network.setCut(id, false);
    const member = { id, db, store, node };
    this.members.set(id, member);
    try {
      const token = join ? this.token : undefined;
      const started = await node.start({ clusterId: 'test', join, token });
      if (started.newToken) this.token = started.newToken;
    } catch (err) {
      await this.crash(id);
      throw err;
    }
    return member;
  }

  /** Founds with a, joins b, c (voters) and d (a non-voter), registers all four nodes. */
  async form(): Promise<void> {
    await this.start('a');
    for (const id of ['b', 'c', 'd']) await this.start(id, 'a');
    for (const id of ['a', 'b', 'c', 'd']) await this.get('a').node.log.propose(registerNode(id));
  }

  get(id: string): Member {
    return this.members.get(id)!;
  }

  leader(): Member | undefined {
    return [...this.members.values()].find((m) => m.node.log.status().role === 'leader');
  }

  async crash(id: string): Promise<void> {
    const m = this.members.get(id);
    if (!m) return;
    this.network.setCut(id, true);
    await m.node.stop();
    m.db.close();
    this.members.delete(id);
  }

  /** Wipes a stopped member's data, as an operator would. */
  wipe(id: string): void {
    for (const suffix of ['', '-wal', '-shm']) {
      fs.rmSync(path.join(this.dir, `${id}.db${suffix}`), { force: true });
    }
  }

  async close(): Promise<void> {
    for (const id of [...this.members.keys()]) await this.crash(id);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

function registerNode(name: string) {
  const conditions = [{ type: 'Ready', status: 'True' }];
  const node = { metadata: { name }, status: { conditions, addresses: [] } };
  const now = new Date().toISOString();
  return {
    op: 'registerNode' as const,
    node: node as unknown as Pick<Node, 'metadata' | 'status'>,
    uid: `uid-${name}`,
    now,
  };
}

/** What the leader's lifecycle controller records for a node gossip found dead `agoMs` ago. */
function markedDead(name: string, agoMs: number): Command {
  const condition = {
    type: 'Ready',
    status: 'False' as const,
    reason: 'NodeUnreachable',
    message: 'node stopped answering gossip probes',
  };
  const now = new Date(Date.now() - agoMs).toISOString();
  return { op: 'nodeCondition' as const, name, condition, now };
}

function voters(m: Member): string[] {
  return [...m.node.log.status().config.voters].sort();
}

async function waitFor(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function rejection(promise: Promise<unknown>): Promise<FlotillaError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof FlotillaError, String(err));
    return err;
  }
  throw new Error('expected a rejection');
}

describe('cluster membership: removal and promotion', () => {
  const clusters: TestCluster[] = [];
  const newCluster = (promoteAfterMs = 60_000) => {
    const c = new TestCluster(promoteAfterMs);
    clusters.push(c);
    return c;
  };
  after(async () => {
    for (const c of clusters) await c.close();
  });

  test('the fourth server joins as a non-voter', async () => {
    const cluster = newCluster();
    await cluster.form();
    const status = cluster.get('a').node.log.status();
    assert.deepEqual(voters(cluster.get('a')), ['a', 'b', 'c']);
    assert.deepEqual(status.config.learners, ['d']);
    assert.equal(cluster.get('a').node.roleOf('d'), 'non-voter');
  });

  test('removing a voter takes it out everywhere and promotes the non-voter', async () => {
    const cluster = newCluster();
    await cluster.form();
    const answer = await cluster.get('b').node.removeMember('c');
    assert.equal(answer.configured, true);
    for (const id of ['a', 'b', 'd']) {
      const m = cluster.get(id);
      await waitFor(() => voters(m).join() === 'a,b,d', `voters a,b,d on ${id}`);
      assert.equal(m.store.get('Node', 'c'), undefined);
      assert.equal(m.store.getMeta('peer/c'), undefined);
      assert.equal(isRemovedNode(m.store, 'c'), true);
    }
  });

  test('removing the leader makes it step down and another member lead', async () => {
    const cluster = newCluster();
    await cluster.form();
    await waitFor(() => cluster.leader() !== undefined, 'a leader');
    const old = cluster.leader()!;
    const other = [...cluster.members.values()].find((m) => m !== old)!;
    await other.node.removeMember(old.id);
    await waitFor(() => {
      const now = cluster.leader();
      return now !== undefined && now.id !== old.id;
    }, 'a new leader');
    const rest = ['a', 'b', 'c', 'd'].filter((id) => id !== old.id).join();
    await waitFor(() => voters(other).join() === rest, `voters ${rest}`);
  });

  test('a server refuses to remove itself and an unknown node is NotFound', async () => {
    const cluster = newCluster();
    await cluster.form();
    assert.equal((await rejection(cluster.get('a').node.removeMember('a'))).code, 'Conflict');
    assert.equal((await rejection(cluster.get('a').node.removeMember('zz'))).code, 'NotFound');
  });

  test('a voter dead past promoteAfterMs is replaced by the Ready non-voter', async () => {
    const cluster = newCluster(500);
    await cluster.form();
    await waitFor(() => cluster.leader() !== undefined, 'a leader');
    const victim = ['a', 'b', 'c'].find((id) => id !== cluster.leader()!.id)!;
    await cluster.crash(victim);
    await cluster.leader()!.node.log.propose(markedDead(victim, 0));
    const alive = ['a', 'b', 'c', 'd'].filter((id) => id !== victim).join();
    for (const m of cluster.members.values()) {
      await waitFor(() => voters(m).join() === alive, `voters ${alive} on ${m.id}`);
    }
    assert.deepEqual(cluster.leader()!.node.log.status().config.learners, []);
  });

  test('a voter dead for less than promoteAfterMs keeps its place', async () => {
    const cluster = newCluster(60_000);
    await cluster.form();
    await cluster.crash('c');
    await cluster.get('a').node.log.propose(markedDead('c', 1000));
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(voters(cluster.get('a')), ['a', 'b', 'c']);
  });

  test('a removed server restarted with its data is refused; wiped, it joins again', async () => {
    const cluster = newCluster();
    await cluster.form();
    await cluster.get('a').node.removeMember('d');
    await cluster.crash('d');
    const refused = await rejection(cluster.start('d'));
    assert.equal(refused.code, 'NodeRemoved');
    assert.match(refused.message, /was removed from the cluster.*--join/);

    cluster.wipe('d');
    await cluster.start('d', 'a');
    const a = cluster.get('a');
    await waitFor(() => a.node.log.status().config.learners.includes('d'), 'd back as a member');
    assert.equal(isRemovedNode(a.store, 'd'), false);
    await a.node.log.propose(registerNode('d'));
    assert.ok(a.store.get('Node', 'd'));
  });

  test('a server removed while it was down learns it when it rejoins, and stops', async () => {
    const cluster = newCluster();
    await cluster.form();
    await cluster.crash('d');
    await cluster.get('a').node.removeMember('d');
    const d = await cluster.start('d', 'a');
    await waitFor(() => d.node.wasRemoved(), 'd to learn of its removal');
    assert.equal(cluster.get('a').store.get('Node', 'd'), undefined);
  });
});
