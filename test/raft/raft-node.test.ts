import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createPrng } from '../../src/raft/prng';
import { RaftNode, type UnsafeBreaks } from '../../src/raft/raft-node';
import { SafetyViolation } from '../../src/raft/sim-checker';
import { SimCluster, type SimNode } from '../../src/raft/simulator';
import { MemoryStorage, bootstrapStorage, restoreState } from '../../src/raft/storage';
import type { Message, VoteResponse } from '../../src/raft/types';

const RELIABLE = { loss: 0, duplicate: 0, minDelay: 1, maxDelay: 1 };
const ELECTION = 10;

interface ClusterSetup {
  ids?: string[];
  voters?: string[];
  seed?: number;
  maxMsgEntries?: number;
  unsafe?: UnsafeBreaks;
}

function cluster(setup: ClusterSetup = {}): SimCluster {
  const ids = setup.ids ?? ['n1', 'n2', 'n3'];
  return new SimCluster({
    ids,
    voters: setup.voters ?? ids,
    random: createPrng(setup.seed ?? 7),
    net: RELIABLE,
    electionTicks: ELECTION,
    heartbeatTicks: 2,
    maxMsgEntries: setup.maxMsgEntries,
    unsafe: setup.unsafe,
  });
}

function electLeader(c: SimCluster, among?: string[]): SimNode {
  const ok = c.runUntil(() => {
    const leader = c.leader();
    return leader !== undefined && (!among || among.includes(leader.id));
  }, 20 * ELECTION);
  assert.ok(ok, 'expected a leader to be elected');
  return c.leader()!;
}

function status(node: SimNode) {
  const s = node.core?.status();
  assert.ok(s, `expected ${node.id} to be running`);
  return s;
}

function others(c: SimCluster, id: string): string[] {
  return [...c.nodes.keys()].filter((other) => other !== id);
}

function leadersNow(c: SimCluster): string[] {
  return [...c.nodes.values()].filter((n) => n.core?.status().role === 'leader').map((n) => n.id);
}

/**
 * A lone follower built from bootstrapped storage, driven message by message.
 * Unless `fresh`, it has ticked through the quiet period after a start.
 */
function loneFollower(fresh = false): RaftNode {
  const storage = new MemoryStorage();
  bootstrapStorage(storage, ['n1', 'n2', 'n3']);
  const options = { id: 'n1', electionTicks: ELECTION, heartbeatTicks: 2, random: createPrng(1) };
  const node = new RaftNode(options, restoreState(storage));
  for (let i = 0; !fresh && i < ELECTION; i++) {
    node.tick();
    drain(node);
  }
  return node;
}

function drain(node: RaftNode): Message[] {
  const rd = node.ready();
  node.advance();
  return rd.messages;
}

function voteRequest(from: string, term: number, lastIndex = 1, lastTerm = 1): Message {
  return { type: 'vote', from, to: 'n1', term, lastIndex, lastTerm };
}

describe('election safety (Raft §5.2)', () => {
  it('elects exactly one leader and keeps it while the network is healthy', () => {
    const c = cluster();
    const leader = electLeader(c);
    const term = status(leader).term;
    for (let i = 0; i < 300; i++) {
      c.tick();
      assert.deepEqual(leadersNow(c), [leader.id]);
    }
    assert.equal(status(leader).term, term);
  });

  it('elects a leader with a majority while one server is down', () => {
    const c = cluster();
    c.crash('n1');
    const leader = electLeader(c);
    assert.notEqual(leader.id, 'n1');
  });

  it('grants at most one vote per term', () => {
    const node = loneFollower();
    node.step(voteRequest('n2', 2));
    node.step(voteRequest('n3', 2));
    const answers = drain(node).filter((m): m is VoteResponse => m.type === 'voteResp');
    assert.deepEqual(
      answers.map((m) => [m.to, m.reject]),
      [
        ['n2', false],
        ['n3', true],
      ],
    );
  });

  it('ignores vote requests for an election timeout after starting', () => {
    // Before a crash it may have promised a leader not to vote for a while.
    const node = loneFollower(true);
    node.step(voteRequest('n2', 2));
    assert.deepEqual(drain(node), []);
    for (let i = 0; i < ELECTION; i++) {
      node.tick();
      drain(node);
    }
    node.step(voteRequest('n2', 5));
    assert.ok(drain(node).some((m) => m.type === 'voteResp' && !m.reject));
  });

  it('persists the vote in the hard state handed out with the grant', () => {
    const node = loneFollower();
    node.step(voteRequest('n2', 2));
    const rd = node.ready();
    assert.deepEqual(rd.hardState, { term: 2, vote: 'n2', commit: 1 });
    assert.equal(rd.messages[0].type, 'voteResp');
  });
});

describe('log matching (Raft §5.3)', () => {
  it('rejects an append whose previous entry does not match, with a hint', () => {
    const node = loneFollower();
    node.step({
      type: 'append', from: 'n2', to: 'n1', term: 2, prevIndex: 5, prevTerm: 2, entries: [],
      commit: 0,
    });
    const [answer] = drain(node);
    assert.equal(answer.type, 'appendResp');
    assert.ok(answer.type === 'appendResp' && answer.reject);
    assert.deepEqual([answer.hintIndex, answer.hintTerm], [1, 1]);
  });

  it('overwrites a deposed leader’s uncommitted entries with the new leader’s log', () => {
    const c = cluster();
    const old = electLeader(c);
    c.run(5);
    c.partition([[old.id]]);
    for (let i = 0; i < 5; i++) c.propose(old.id, `lost-${i}`);
    const rest = others(c, old.id);
    const fresh = electLeader(c, rest);
    assert.ok(c.propose(fresh.id, 'kept'));
    c.run(20);
    c.heal();
    assert.ok(c.runUntil(() => status(old).lastIndex === status(fresh).lastIndex, 200));
    c.run(20);

    const logOf = (n: SimNode) => n.storage.entries(1, n.storage.lastIndex() + 1);
    assert.deepEqual(logOf(old), logOf(fresh));
    assert.ok(c.isCommitted('kept'));
    assert.ok(!c.isCommitted('lost-0'));
  });

  it('finds the matching point of a long conflicting term in a few round trips', () => {
    const c = cluster();
    const old = electLeader(c);
    c.run(5);
    c.partition([[old.id]]);
    for (let i = 0; i < 60; i++) c.propose(old.id, `stale-${i}`);
    const fresh = electLeader(c, others(c, old.id));
    c.run(10);
    let rejections = 0;
    c.observe = (m) => {
      if (m.type === 'appendResp' && m.reject && m.from === old.id) rejections++;
    };
    c.heal();
    assert.ok(c.runUntil(() => status(old).lastIndex === status(fresh).lastIndex, 200));
    assert.ok(rejections <= 3, `expected at most 3 rejections, got ${rejections}`);
  });
});

describe('leader completeness (Raft §5.4)', () => {
  it('refuses its vote to a candidate whose log is behind', () => {
    const node = loneFollower();
    node.step(voteRequest('n2', 2, 0, 0));
    const [answer] = drain(node);
    assert.ok(answer.type === 'voteResp' && answer.reject);
  });

  it('commits an earlier term’s entry only through an entry of its own term (figure 8)', () => {
    const { c, index, term } = runFigure8({});
    assert.ok(c.isCommitted('e'), 'expected e to be committed through the new no-op');
    for (const node of c.nodes.values()) {
      assert.equal(node.storage.term(index), term, `expected ${node.id} to keep e`);
    }
  });

  it('lets the checker catch a leader that commits an earlier term’s entry by counting', () => {
    assert.throws(
      () => runFigure8({ commitPreviousTermByCounting: true }),
      (err: unknown) => err instanceof SafetyViolation && err.property === 'leader completeness',
    );
  });
});

/**
 * The Raft paper's figure 8 on three servers, one entry per append:
 * A writes e alone; B leads a later term and writes its no-op alone; A
 * returns, leads again and replicates e to C. If A committed e by counting
 * at that moment, B could win the next election and overwrite it.
 */
function runFigure8(unsafe: UnsafeBreaks) {
  const c = cluster({ maxMsgEntries: 1, unsafe, seed: 3 });
  const a = electLeader(c);
  c.run(10);
  c.partition([[a.id]]);
  const proposed = a.core!.propose('e');
  assert.ok(proposed.ok);
  const { index, term } = proposed;

  // B wins a later term and is cut off before its no-op leaves.
  const b = electLeader(c, others(c, a.id));
  c.partition([[b.id]]);
  electLeader(c, [a.id]);
  // Cut A off as soon as it commits e, before its own no-op reaches C.
  assert.ok(c.runUntil(() => status(a).commit >= index, 200));
  c.partition([[a.id]]);
  c.run(30 * ELECTION);
  c.heal();
  c.run(10 * ELECTION);
  return { c, index, term };
}

describe('pre-vote (Raft dissertation §9.6)', () => {
  it('keeps a partitioned server’s term, so its return does not depose the leader', () => {
    const c = cluster();
    const leader = electLeader(c);
    const term = status(leader).term;
    const loner = others(c, leader.id)[0];
    c.partition([[loner]]);
    c.run(30 * ELECTION);
    assert.equal(status(c.nodes.get(loner)!).term, term);

    c.heal();
    c.run(20 * ELECTION);
    assert.equal(c.leader()?.id, leader.id);
    assert.equal(status(leader).term, term);
  });
});

describe('check-quorum and the leader lease', () => {
  it('holds a valid lease while a majority answers', () => {
    const c = cluster();
    const leader = electLeader(c);
    c.run(3 * ELECTION);
    assert.ok(leader.core!.leaseValid());
    assert.ok(!c.nodes.get(others(c, leader.id)[0])!.core!.leaseValid());
  });

  it('steps a leader cut off from the majority down within two election timeouts', () => {
    const c = cluster();
    const leader = electLeader(c);
    c.run(ELECTION);
    c.partition([[leader.id]]);
    assert.ok(c.runUntil(() => !leader.core!.leaseValid(), ELECTION + 1));
    assert.ok(c.runUntil(() => status(leader).role !== 'leader', 2 * ELECTION + 1));
  });
});

describe('log compaction and InstallSnapshot (Raft §7)', () => {
  it('brings a follower that fell behind the compacted log up to date with a snapshot', () => {
    const c = cluster();
    const leader = electLeader(c);
    const lagging = others(c, leader.id)[0];
    c.crash(lagging);
    for (let i = 0; i < 30; i++) {
      c.propose(leader.id, `cmd-${i}`);
      c.tick();
    }
    c.run(10);
    c.compact(leader.id);
    assert.ok(leader.core!.snapshotIndex() > 20);

    let snapshots = 0;
    c.observe = (m) => {
      if (m.type === 'snapshot' && m.to === lagging) snapshots++;
    };
    c.restart(lagging, true);
    const node = c.nodes.get(lagging)!;
    assert.ok(c.runUntil(() => node.app.applied === leader.app.applied, 200));
    assert.equal(snapshots, 1);
    assert.equal(node.app.digest, leader.app.digest);
    assert.equal(node.storage.snapshot()?.index, leader.core!.snapshotIndex());
  });

  it('refuses to compact beyond the applied index', () => {
    const c = cluster();
    const leader = electLeader(c);
    const result = leader.core!.compact(status(leader).applied + 1, new Uint8Array());
    assert.equal(result.ok, false);
  });
});

describe('membership changes (Raft dissertation §4)', () => {
  it('adds a learner that receives the log without voting, then promotes it', () => {
    const c = cluster({ ids: ['n1', 'n2', 'n3', 'n4'], voters: ['n1', 'n2', 'n3'] });
    const leader = electLeader(c);
    c.run(5);
    assert.ok(c.proposeChange(leader.id, { type: 'addLearner', nodeId: 'n4' }));
    c.propose(leader.id, 'for-the-learner');
    const n4 = c.nodes.get('n4')!;
    assert.ok(c.runUntil(() => n4.app.applied === leader.app.applied, 200));
    assert.deepEqual(status(n4).config.learners, ['n4']);
    assert.equal(status(n4).role, 'follower');

    assert.ok(c.proposeChange(leader.id, { type: 'promoteLearner', nodeId: 'n4' }));
    c.run(20);
    assert.deepEqual([...status(n4).config.voters].sort(), ['n1', 'n2', 'n3', 'n4']);
  });

  it('refuses a second change while the first is uncommitted', () => {
    const c = cluster({ ids: ['n1', 'n2', 'n3', 'n4'], voters: ['n1', 'n2', 'n3'] });
    const leader = electLeader(c);
    c.run(5);
    const core = leader.core!;
    assert.ok(core.proposeChange({ type: 'addLearner', nodeId: 'n4' }).ok);
    const second = core.proposeChange({ type: 'remove', nodeId: 'n4' });
    assert.deepEqual(second.ok ? undefined : second.reason, 'changePending');
  });

  it('steps a removed leader down once its removal commits, and the rest elect a leader', () => {
    const c = cluster();
    const leader = electLeader(c);
    c.run(5);
    assert.ok(c.proposeChange(leader.id, { type: 'remove', nodeId: leader.id }));
    assert.ok(c.runUntil(() => status(leader).role !== 'leader', 50));
    const next = electLeader(c, others(c, leader.id));
    assert.deepEqual([...status(next).config.voters].sort(), others(c, leader.id).sort());
    assert.ok(c.propose(next.id, 'after-removal'));
    assert.ok(c.runUntil(() => c.isCommitted('after-removal'), 100));
  });

  it('rejects a change that is not a single-server step', () => {
    const c = cluster();
    const leader = electLeader(c);
    c.run(5);
    const result = leader.core!.proposeChange({ type: 'promoteLearner', nodeId: 'n2' });
    assert.deepEqual(result.ok ? undefined : result.reason, 'invalidChange');
  });
});

describe('learners', () => {
  it('never campaigns, even when every voter is down', () => {
    const c = cluster({ ids: ['n1', 'n2', 'n3', 'n4'], voters: ['n1', 'n2', 'n3'] });
    const leader = electLeader(c);
    c.run(5);
    assert.ok(c.proposeChange(leader.id, { type: 'addLearner', nodeId: 'n4' }));
    c.run(20);
    for (const id of ['n1', 'n2', 'n3']) c.crash(id);
    const n4 = c.nodes.get('n4')!;
    const term = status(n4).term;
    c.run(50 * ELECTION);
    assert.equal(status(n4).role, 'follower');
    assert.equal(status(n4).term, term);
  });
});

describe('linearizable reads (Raft dissertation §6.4)', () => {
  it('answers a read on a follower with an index covering every earlier commit', () => {
    const c = cluster();
    const leader = electLeader(c);
    c.propose(leader.id, 'before-read');
    assert.ok(c.runUntil(() => c.isCommitted('before-read'), 50));
    const follower = c.nodes.get(others(c, leader.id)[0])!;
    const committed = status(leader).commit;
    const context = c.read(follower.id);
    assert.ok(context);
    assert.ok(c.runUntil(() => follower.reads.some((r) => r.context === context), 50));
    const answer = follower.reads.find((r) => r.context === context)!;
    assert.ok(answer.index >= committed);
  });

  it('never answers a read on a leader cut off from the majority', () => {
    const c = cluster();
    const leader = electLeader(c);
    c.run(5);
    c.partition([[leader.id]]);
    const context = c.read(leader.id);
    c.run(5 * ELECTION);
    assert.ok(!leader.reads.some((r) => r.context === context));
  });
});

describe('proposals and the Ready contract', () => {
  it('answers a proposal on a follower with the known leader id', () => {
    const c = cluster();
    const leader = electLeader(c);
    c.run(5);
    const follower = c.nodes.get(others(c, leader.id)[0])!;
    const result = follower.core!.propose('x');
    assert.deepEqual(result, { ok: false, reason: 'notLeader', leaderId: leader.id });
  });

  it('lets a single voter elect itself and commit alone', () => {
    const c = cluster({ ids: ['solo'] });
    const leader = electLeader(c);
    assert.ok(c.propose(leader.id, 'alone'));
    assert.ok(c.isCommitted('alone'));
  });

  it('refuses input between ready() and advance()', () => {
    const node = loneFollower();
    node.tick();
    node.ready();
    assert.throws(() => node.tick(), /between ready\(\) and advance\(\)/);
    node.advance();
    node.tick();
  });

  it('restarts from storage with the same term, vote and log', () => {
    const c = cluster();
    const leader = electLeader(c);
    c.propose(leader.id, 'durable');
    c.run(10);
    const before = status(leader);
    c.crash(leader.id);
    c.restart(leader.id, false);
    const after = status(leader);
    assert.deepEqual(
      [after.term, after.vote, after.lastIndex, after.commit],
      [before.term, before.vote, before.lastIndex, before.commit],
    );
  });
});
