/**
 * The Raft command log as a whole cluster in one process: three (or four)
 * ClusterNodes on temp SQLite files, connected by the memory network, on a
 * fast clock. Crashes are simulated by cutting a member off and stopping it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { after, describe, test } from 'node:test';
import { formatToken, newToken, parseToken } from '../../src/auth/token-format';
import { listTokens, tokenRecord } from '../../src/auth/tokens';
import { ClusterNode } from '../../src/cluster/cluster-node';
import { MemoryNetwork } from '../../src/cluster/memory-transport';
import { openDatabase, type Database } from '../../src/db/open';
import { FlotillaError } from '../../src/errors';
import { LocalCommandLog } from '../../src/store/command-log';
import type { Command } from '../../src/store/commands';
import { Store } from '../../src/store/store';
import { NOW, service } from '../store/fixtures';

const TIMING = { tickMs: 20, electionTicks: 10, proposeTimeoutMs: 1500, compactEvery: 25 };
const logger = pino({ level: 'silent' });

interface Member {
  id: string;
  db: Database;
  store: Store;
  node: ClusterNode;
}

/** A cluster of ClusterNodes over one memory network, with its own temp dir. */
class TestCluster {
  readonly network = new MemoryNetwork();
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-raft-'));
  readonly members = new Map<string, Member>();
  token = '';

  /** Starts `id`: the first member founds the cluster, the others join it. */
  async start(id: string, opts: { join?: string; token?: string } = {}): Promise<Member> {
    const db = openDatabase(path.join(this.dir, `${id}.db`));
    const store = new Store(db);
    const transport = this.network.transport(id);
    const timing = TIMING;
    const node = new ClusterNode({ store, nodeId: id, address: id, logger, transport, timing });
    this.network.attach(id, node);
    this.network.setCut(id, false);
    const member = { id, db, store, node };
    this.members.set(id, member);
    const started = await node.start({ clusterId: 'test-cluster', ...opts });
    if (started.newToken) this.token = started.newToken;
    return member;
  }

  /** Founds with `a`, then joins `b` and `c` through `a`. */
  async form(): Promise<void> {
    await this.start('a');
    await this.start('b', { join: 'a', token: this.token });
    await this.start('c', { join: 'a', token: this.token });
  }

  /** Simulates a crash: the member stops answering and its process state is gone. */
  async crash(id: string): Promise<void> {
    const m = this.members.get(id)!;
    this.network.setCut(id, true);
    await m.node.stop();
    m.db.close();
    this.members.delete(id);
  }

  leader(): Member | undefined {
    return [...this.members.values()].find((m) => m.node.log.status().role === 'leader');
  }

  async waitForLeader(except?: string): Promise<Member> {
    let found: Member | undefined;
    await waitFor(() => {
      found = this.leader();
      return found !== undefined && found.id !== except;
    }, 'a leader');
    return found!;
  }

  follower(): Member {
    return [...this.members.values()].find((m) => m.node.log.status().role !== 'leader')!;
  }

  async close(): Promise<void> {
    for (const id of [...this.members.keys()]) await this.crash(id);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

function createService(name: string): Command {
  return { op: 'create', object: service(name), uid: `uid-${name}`, now: NOW };
}

async function waitFor(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function serviceNames(m: Member): string[] {
  return m.store.list('Service').map((s) => s.metadata.name);
}

describe('RaftCommandLog in a three-server cluster', () => {
  const clusters: TestCluster[] = [];
  const newCluster = () => {
    const c = new TestCluster();
    clusters.push(c);
    return c;
  };
  after(async () => {
    for (const c of clusters) await c.close();
  });

  test('three servers form one cluster with one leader and two voters', async () => {
    const cluster = newCluster();
    await cluster.form();
    const leader = await cluster.waitForLeader();
    for (const m of cluster.members.values()) {
      await waitFor(() => m.node.log.status().config.voters.length === 3, 'three voters');
      assert.deepEqual(m.node.log.status().config.voters.sort(), ['a', 'b', 'c']);
      assert.equal(m.node.roleOf(leader.id), 'leader');
    }
    const roles = ['a', 'b', 'c'].map((id) => leader.node.roleOf(id));
    assert.deepEqual(roles.sort(), ['leader', 'voter', 'voter']);
  });

  test('a command proposed on a follower is applied on every server', async () => {
    const cluster = newCluster();
    await cluster.form();
    await cluster.waitForLeader();
    const follower = cluster.follower();
    const result = await follower.node.log.propose(createService('web'));
    assert.ok(result.index > 0);
    // The proposer's own tables hold the change when the promise resolves.
    assert.deepEqual(serviceNames(follower), ['web']);
    for (const m of cluster.members.values()) {
      await waitFor(() => serviceNames(m).includes('web'), `web on ${m.id}`);
    }
  });

  test('a command that fails to apply fails alike everywhere yet counts as applied', async () => {
    const cluster = newCluster();
    await cluster.form();
    const leader = await cluster.waitForLeader();
    await leader.node.log.propose(createService('dup'));
    const follower = cluster.follower();
    await assert.rejects(follower.node.log.propose(createService('dup')), (err: FlotillaError) => {
      assert.equal(err.code, 'AlreadyExists');
      return true;
    });
    await assert.rejects(leader.node.log.propose(createService('dup')), { code: 'AlreadyExists' });
    const after = await leader.node.log.propose(createService('next'));
    for (const m of cluster.members.values()) {
      await waitFor(() => Number(m.store.getMeta('applied_index')) >= after.index, 'applied');
      const dup = m.store.get('Service', 'dup')!;
      assert.equal(dup.metadata.uid, 'uid-dup');
      const expected = leader.store.get('Service', 'dup')!.metadata.resourceVersion;
      assert.equal(dup.metadata.resourceVersion, expected);
    }
  });

  test('proposals made together commit in call order, each with its own result', async () => {
    const cluster = newCluster();
    await cluster.form();
    const leader = await cluster.waitForLeader();
    await leader.node.log.propose(createService('taken'));
    const names = Array.from({ length: 12 }, (_, i) => (i === 5 ? 'taken' : `batch-${i}`));
    // Issued in one turn of the event loop: they share one Raft round.
    const settled = await Promise.allSettled(
      names.map((n) => leader.node.log.propose(createService(n))),
    );

    const failed = settled.flatMap((s, i) => (s.status === 'rejected' ? [i] : []));
    assert.deepEqual(failed, [5], 'only the duplicate fails');
    assert.equal((settled[5] as PromiseRejectedResult).reason.code, 'AlreadyExists');
    const indices = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value.index] : []));
    assert.deepEqual(
      indices,
      [...indices].sort((a, b) => a - b),
      'indices follow call order',
    );
    assert.equal(new Set(indices).size, indices.length, 'every caller has its own entry');
    assert.equal(indices.at(-1)! - indices[0], names.length - 1, 'one contiguous run of entries');
    const expected = names.filter((n) => n !== 'taken');
    for (const m of cluster.members.values()) {
      await waitFor(() => expected.every((n) => serviceNames(m).includes(n)), `batch on ${m.id}`);
    }
  });

  test('a malformed command fails with CommandFailed everywhere instead of crashing', async () => {
    const cluster = newCluster();
    await cluster.form();
    const leader = await cluster.waitForLeader();
    const malformed = { op: 'createPods', pods: null } as unknown as Command;
    await assert.rejects(cluster.follower().node.log.propose(malformed), { code: 'CommandFailed' });
    const after = await leader.node.log.propose(createService('still-working'));
    for (const m of cluster.members.values()) {
      await waitFor(() => Number(m.store.getMeta('applied_index')) >= after.index, 'applied');
      assert.ok(serviceNames(m).includes('still-working'));
    }
  });

  test('a new leader takes over after a crash with every acknowledged change', async () => {
    const cluster = newCluster();
    await cluster.form();
    const old = await cluster.waitForLeader();
    const acknowledged: string[] = [];
    for (let i = 0; i < 5; i++) {
      await old.node.log.propose(createService(`before-${i}`));
      acknowledged.push(`before-${i}`);
    }
    await cluster.crash(old.id);
    const next = await cluster.waitForLeader(old.id);
    await cluster.follower().node.log.propose(createService('after'));
    // Applying 'after' means everything committed before it is applied too.
    await waitFor(() => serviceNames(next).includes('after'), 'after on the new leader');
    for (const name of acknowledged) assert.ok(serviceNames(next).includes(name), name);

    await cluster.start(old.id);
    const back = cluster.members.get(old.id)!;
    await waitFor(() => serviceNames(back).includes('after'), 'the old leader to catch up');
    assert.equal(back.node.log.status().role, 'follower');
  });

  test('a leader cut off from the others stops leading within an election timeout', async () => {
    const cluster = newCluster();
    await cluster.form();
    const leader = await cluster.waitForLeader();
    await waitFor(() => leader.node.log.isLeader(), 'a valid lease');
    const stopped = new Promise<boolean>((resolve) => leader.node.log.once('leading', resolve));
    cluster.network.setCut(leader.id, true);
    assert.equal(await stopped, false);
    assert.equal(leader.node.log.isLeader(), false);
  });

  test('a restarted server resumes from its database with everything it applied', async () => {
    const cluster = newCluster();
    await cluster.form();
    await cluster.waitForLeader();
    await cluster.leader()!.node.log.propose(createService('kept'));
    const follower = cluster.follower();
    await waitFor(() => serviceNames(follower).includes('kept'), 'kept on the follower');
    await cluster.crash(follower.id);
    const back = await cluster.start(follower.id);
    assert.ok(serviceNames(back).includes('kept'));
    await back.node.log.propose(createService('later'));
    assert.ok(serviceNames(back).includes('later'));
  });

  test('without a majority a proposal fails with NoQuorum instead of hanging', async () => {
    const cluster = newCluster();
    await cluster.form();
    await cluster.waitForLeader();
    const survivor = cluster.follower();
    for (const id of ['a', 'b', 'c']) if (id !== survivor.id) await cluster.crash(id);
    const started = Date.now();
    await assert.rejects(survivor.node.log.propose(createService('lost')), (err: FlotillaError) => {
      assert.equal(err.code, 'NoQuorum');
      assert.match(err.message, /^no quorum: .*1 of 3 voters reachable/);
      return true;
    });
    // Bounded by the proposal timeout plus one forwarding attempt, not a hang.
    assert.ok(Date.now() - started < 3 * TIMING.proposeTimeoutMs);
  });

  test('a server joining after compaction gets a snapshot and becomes a non-voter', async () => {
    const cluster = newCluster();
    await cluster.form();
    const leader = await cluster.waitForLeader();
    for (let i = 0; i < TIMING.compactEvery + 5; i++) {
      await leader.node.log.propose(createService(`s-${i}`));
    }
    await waitFor(() => leader.node.log.status().applied > TIMING.compactEvery, 'compaction');
    const late = await cluster.start('d', { join: 'b', token: cluster.token });
    await waitFor(() => serviceNames(late).length === TIMING.compactEvery + 5, 'the snapshot');
    assert.equal(leader.node.roleOf('d'), 'non-voter');
    // The cluster's CA and tokens travel in the snapshot too.
    assert.equal(late.store.getMeta('ca_cert'), leader.store.getMeta('ca_cert'));
    assert.deepEqual(listTokens(late.store), listTokens(leader.store));
  });

  test('a server whose data was wiped rejoins by name and gets the whole state', async () => {
    const cluster = newCluster();
    await cluster.form();
    const leader = await cluster.waitForLeader();
    await leader.node.log.propose(createService('survives-wipe'));
    const victim = cluster.follower();
    await cluster.crash(victim.id);
    for (const suffix of ['', '-wal', '-shm']) {
      fs.rmSync(path.join(cluster.dir, `${victim.id}.db${suffix}`), { force: true });
    }
    const back = await cluster.start(victim.id, { join: leader.id, token: cluster.token });
    await waitFor(() => serviceNames(back).includes('survives-wipe'), 'state on the wiped server');
    assert.deepEqual(back.node.log.status().config.voters.sort(), ['a', 'b', 'c']);
  });

  test('a single-server data directory becomes the first snapshot of a new cluster', async () => {
    const cluster = newCluster();
    const db = openDatabase(path.join(cluster.dir, 'a.db'));
    const old = new LocalCommandLog(new Store(db)).commit(createService('from-before'));
    db.close();
    const founder = await cluster.start('a');
    assert.deepEqual(serviceNames(founder), ['from-before']);
    const next = await founder.node.log.propose(createService('after-upgrade'));
    assert.ok(next.index > old.index, `index ${next.index} after ${old.index}`);
    assert.deepEqual(serviceNames(founder), ['after-upgrade', 'from-before']);
  });

  test('a join with a wrong, revoked, expired, foreign or non-join token is refused', async () => {
    const cluster = newCluster();
    const founder = await cluster.start('a');
    const good = parseToken(cluster.token);
    const refused = async (token: string) =>
      assert.rejects(cluster.start('x', { join: 'a', token }), { code: 'JoinRefused' });

    await refused(formatToken({ ...good, secret: '0'.repeat(32) }));
    await refused(formatToken({ ...good, caHash: 'f'.repeat(64) }));
    const expired = newToken(good.caHash);
    const past = new Date(Date.now() - 3_600_000);
    await founder.node.log.submit({
      token: tokenRecord(expired.id, expired.secret, 'join', { now: past, ttlMs: 60_000 }),
    });
    await refused(expired.text);
    const admin = newToken(good.caHash);
    await founder.node.log.submit({
      token: tokenRecord(admin.id, admin.secret, 'admin', { now: new Date() }),
    });
    await refused(admin.text);
    await founder.node.log.submit({ revokeToken: { id: good.id } });
    await refused(cluster.token);
    await assert.rejects(cluster.start('y', { join: 'a', token: 'wrong' }), { code: 'Invalid' });
  });

  test('a new join token admits a server, and the cluster never stores its secret', async () => {
    const cluster = newCluster();
    const founder = await cluster.start('a');
    const fresh = newToken(parseToken(cluster.token).caHash);
    await founder.node.log.submit({
      token: tokenRecord(fresh.id, fresh.secret, 'join', { now: new Date(), ttlMs: 60_000 }),
    });
    const joined = await cluster.start('b', { join: 'a', token: fresh.text });
    await waitFor(() => founder.node.log.status().config.voters.includes('b'), 'b as a voter');
    for (const member of [founder, joined]) {
      const rows = member.store.db.prepare('SELECT value FROM meta').all() as { value: string }[];
      assert.ok(!rows.some((r) => r.value.includes(fresh.secret)), 'a secret in the state');
    }
  });
});
