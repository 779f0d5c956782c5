/**
 * Drives many desired-state changes through a one-member Raft command log
 * (in process, memory network) and samples the size of the state database
 * on disk. Shared by test/db/state-size.test.ts and
 * scripts/bench/state-size.sh, which runs it with 100,000 changes.
 */
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { ClusterNode } from '../../src/cluster/cluster-node';
import { MemoryNetwork } from '../../src/cluster/memory-transport';
import { openDatabase } from '../../src/db/open';
import type { Deployment } from '../../src/manifest/types';
import type { ReplicaSet } from '../../src/model/types';
import { revisionOf } from '../../src/store/apply';
import type { Command, EventRecord } from '../../src/store/commands';
import { Store } from '../../src/store/store';
import { deployment } from '../store/fixtures';

/** How much churn to make and how often to look. */
export interface ChurnOptions {
  dir: string;
  changes: number;
  /** Applied entries between two Raft log compactions (the agent uses 10,000). */
  compactEvery: number;
  sampleEvery: number;
  /** Every this many changes, one event about a new object is recorded too. */
  eventsEvery: number;
  deployments?: number;
  onSample?: (sample: SizeSample) => void;
}

/** The database's footprint after some number of changes. */
export interface SizeSample {
  changes: number;
  dbBytes: number;
  walBytes: number;
  /** state.db plus its WAL: what the data directory holds. */
  totalBytes: number;
  raftEntries: number;
  objects: number;
}

const BASE_TIME = Date.parse('2030-01-01T00:00:00.000Z');

/** Runs the churn and returns one sample per `sampleEvery` changes, plus the last. */
export async function churnState(opts: ChurnOptions): Promise<SizeSample[]> {
  const file = path.join(opts.dir, 'state.db');
  const db = openDatabase(file);
  // The size does not depend on fsync; without it the run takes seconds, not minutes.
  db.pragma('synchronous = OFF');
  const store = new Store(db);
  const network = new MemoryNetwork();
  const timing = { tickMs: 1000, compactEvery: opts.compactEvery };
  const logger = pino({ level: 'silent' });
  const transport = network.transport('churn');
  const node = new ClusterNode({ store, nodeId: 'churn', address: '', logger, transport, timing });
  network.attach('churn', node);
  await node.start({ clusterId: 'churn' });

  const samples: SizeSample[] = [];
  const sample = (changes: number) => {
    const s = measure(file, db, changes);
    samples.push(s);
    opts.onSample?.(s);
  };
  try {
    for (let i = 1; i <= opts.changes; i++) {
      const change = changeNumber(i, opts.deployments ?? 5);
      await node.log.propose(change);
      await node.log.propose(settledStatus(store, change.objects[0].metadata.name));
      if (i % opts.eventsEvery === 0) await node.log.propose(eventAbout(i));
      if (i % opts.sampleEvery === 0 || i === opts.changes) sample(i);
    }
  } finally {
    await node.stop();
    db.close();
  }
  return samples;
}

/** A scale (replicas) or an apply of a new image, alternating over the deployments. */
function changeNumber(i: number, deployments: number): Command & { op: 'apply' } {
  const k = i % deployments;
  const round = Math.floor(i / deployments);
  const image = `registry.test/app:v${round % 2 === 0 ? round : round - 1}`;
  const manifest = deployment(`app-${k}`, { replicas: 1 + (round % 5), image });
  return { op: 'apply', objects: [manifest], uids: [`uid-${k}-${i}`], now: timeOf(i) };
}

/**
 * What the deployment controller proposes once a rollout is over (without
 * pods, here): old ReplicaSets at zero, those beyond the revision history
 * limit pruned. The controller is not running, so this stands in for it.
 */
function settledStatus(store: Store, name: string): Command {
  const d = store.get<Deployment>('Deployment', name)!;
  const owned = store
    .list<ReplicaSet>('ReplicaSet')
    .filter((rs) => rs.metadata.ownerReferences?.[0]?.uid === d.metadata.uid)
    .sort((a, b) => revisionOf(a) - revisionOf(b));
  const current = owned.at(-1);
  const old = owned.slice(0, -1);
  const limit = d.spec.revisionHistoryLimit ?? 10;
  const replicaSets = owned.map((rs) => ({
    name: rs.metadata.name,
    replicas: rs === current ? d.spec.replicas : 0,
    readyReplicas: 0,
  }));
  return {
    op: 'deploymentStatus',
    name,
    uid: d.metadata.uid!,
    status: { observedGeneration: d.metadata.generation, replicas: 0 } as never,
    replicaSets,
    pruneReplicaSets: old.slice(0, Math.max(0, old.length - limit)).map((rs) => rs.metadata.name),
  };
}

function eventAbout(i: number): Command {
  const event: EventRecord = {
    involvedObject: { kind: 'Pod', name: `pod-${i}` },
    type: 'Normal',
    reason: 'Started',
    message: `Started container of pod-${i}`,
    source: { component: 'kubelet', host: 'churn' },
    count: 1,
    firstTimestamp: timeOf(i),
    lastTimestamp: timeOf(i),
  };
  return { op: 'recordEvents', events: [event], now: timeOf(i) };
}

/**
 * Change i happens 5·i seconds in, so events also expire by age (after an
 * hour, 720 changes) as they do in a cluster that runs for days.
 */
function timeOf(i: number): string {
  return new Date(BASE_TIME + i * 5000).toISOString();
}

function measure(file: string, db: ReturnType<typeof openDatabase>, changes: number): SizeSample {
  const size = (f: string) => (fs.existsSync(f) ? fs.statSync(f).size : 0);
  const dbBytes = size(file);
  const walBytes = size(`${file}-wal`);
  const count = (sql: string) => db.prepare(sql).pluck().get() as number;
  return {
    changes,
    dbBytes,
    walBytes,
    totalBytes: dbBytes + walBytes,
    raftEntries: count('SELECT COUNT(*) FROM raft_log'),
    objects: count('SELECT COUNT(*) FROM objects'),
  };
}
