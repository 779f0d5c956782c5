import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import { FlotillaError } from '../../src/errors';
import type { Deployment, Service } from '../../src/manifest/types';
import type { Pod, ReplicaSet } from '../../src/model/types';
import {
  NODE_PORT_RANGE,
  REVISION_ANNOTATION,
  ownedReplicaSets,
  podsOwnedBy,
  revisionOf,
} from '../../src/store/apply';
import type { Change } from '../../src/store/store';
import { NOW, TestStore, deployment, hashOf, podOf, service } from './fixtures';

/** The same value with object keys in reverse order at every depth. */
function reverseKeys<T>(value: T): T {
  if (Array.isArray(value)) return value.map(reverseKeys) as T;
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value as Record<string, unknown>).reverse();
  return Object.fromEntries(entries.map(([k, v]) => [k, reverseKeys(v)])) as T;
}

function outcomes(t: TestStore, ...objects: (Deployment | Service)[]): string[] {
  return (t.apply(...objects).applied ?? []).map((a) => a.result);
}

function rejectsWith(fn: () => unknown, code: string): FlotillaError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof FlotillaError, `expected a FlotillaError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  return caught;
}

function replicaSetsOf(t: TestStore, name: string): ReplicaSet[] {
  const d = t.store.get<Deployment>('Deployment', name);
  assert.ok(d, `deployment ${name} exists`);
  return ownedReplicaSets(t.store, d.metadata.uid as string);
}

function revisionByImage(t: TestStore, name: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const rs of replicaSetsOf(t, name)) {
    out[rs.spec.template.spec.containers[0].image] = revisionOf(rs);
  }
  return out;
}

describe('store: apply outcomes', () => {
  let t: TestStore;
  beforeEach(() => (t = new TestStore()));
  afterEach(() => t.close());

  it('reports created, then unchanged, then configured', () => {
    assert.deepEqual(outcomes(t, deployment('web'), service('web')), ['created', 'created']);
    assert.deepEqual(outcomes(t, deployment('web'), service('web')), ['unchanged', 'unchanged']);
    const changed = [deployment('web', { replicas: 5 }), service('web', { ports: [{ port: 81 }] })];
    assert.deepEqual(outcomes(t, ...changed), ['configured', 'configured']);
  });

  it('treats identical content written in another key order as unchanged', () => {
    t.apply(deployment('web'), service('web', { type: 'NodePort' }));
    const before = t.store.get('Deployment', 'web')!.metadata.resourceVersion;

    const again = [
      reverseKeys(deployment('web')),
      reverseKeys(service('web', { type: 'NodePort' })),
    ];
    assert.deepEqual(outcomes(t, ...again), ['unchanged', 'unchanged']);
    assert.equal(t.store.get('Deployment', 'web')!.metadata.resourceVersion, before);
  });

  it('bumps generation on a spec change only', () => {
    t.apply(deployment('web'));
    const gen = () => t.store.get<Deployment>('Deployment', 'web')!.metadata.generation;
    assert.equal(gen(), 1);

    assert.deepEqual(outcomes(t, deployment('web', { labels: { team: 'a' } })), ['configured']);
    assert.equal(gen(), 1);
    assert.deepEqual(outcomes(t, deployment('web', { labels: { team: 'a' }, replicas: 3 })), [
      'configured',
    ]);
    assert.equal(gen(), 2);
    t.apply(deployment('web', { labels: { team: 'a' }, replicas: 3 }));
    assert.equal(gen(), 2);
  });

  it('keeps uid and creationTimestamp across updates and sets resourceVersion to the index', () => {
    const first = t.apply(deployment('web'));
    const created = t.store.get<Deployment>('Deployment', 'web')!;
    const second = t.apply(deployment('web', { replicas: 4 }));
    const updated = t.store.get<Deployment>('Deployment', 'web')!;
    assert.equal(updated.metadata.uid, created.metadata.uid);
    assert.equal(updated.metadata.creationTimestamp, NOW);
    assert.equal(created.metadata.resourceVersion, String(first.index));
    assert.equal(updated.metadata.resourceVersion, String(second.index));
  });

  it('tells listeners what changed, after the commit', () => {
    const seen: { changes: Change[]; index: number; logged: number }[] = [];
    t.store.on('change', (changes: Change[], index: number) =>
      seen.push({ changes, index, logged: t.logLength() }),
    );
    const result = t.apply(deployment('web'));
    assert.equal(seen.length, 1);
    assert.equal(seen[0].index, result.index);
    assert.equal(seen[0].logged, 1);
    const kinds = seen[0].changes.map((c) => `${c.type} ${c.kind}`).sort();
    assert.deepEqual(kinds, ['ADDED Deployment', 'ADDED ReplicaSet']);

    t.apply(deployment('web'));
    assert.equal(seen.length, 1, 'an unchanged apply tells nobody');
  });
});

describe('store: Deployment revisions', () => {
  let t: TestStore;
  beforeEach(() => (t = new TestStore()));
  afterEach(() => t.close());

  it('creates a ReplicaSet with the next revision when the template changes', () => {
    t.apply(deployment('web', { image: 'app:1' }));
    assert.deepEqual(revisionByImage(t, 'web'), { 'app:1': 1 });

    t.apply(deployment('web', { image: 'app:2' }));
    assert.deepEqual(revisionByImage(t, 'web'), { 'app:1': 1, 'app:2': 2 });
    const d = t.store.get<Deployment>('Deployment', 'web')!;
    assert.equal(d.metadata.annotations?.[REVISION_ANNOTATION], '2');
  });

  it('keeps the revision when only replicas change', () => {
    t.apply(deployment('web', { image: 'app:1' }));
    t.apply(deployment('web', { image: 'app:1', replicas: 7 }));
    assert.deepEqual(revisionByImage(t, 'web'), { 'app:1': 1 });
    const d = t.store.get<Deployment>('Deployment', 'web')!;
    assert.equal(d.metadata.annotations?.[REVISION_ANNOTATION], '1');
  });

  it('renumbers an older template as newest when it is applied again, as kubectl undo does', () => {
    t.apply(deployment('web', { image: 'app:1' }));
    t.apply(deployment('web', { image: 'app:2' }));
    t.apply(deployment('web', { image: 'app:1' }));
    assert.deepEqual(revisionByImage(t, 'web'), { 'app:1': 3, 'app:2': 2 });
    const d = t.store.get<Deployment>('Deployment', 'web')!;
    assert.equal(d.metadata.annotations?.[REVISION_ANNOTATION], '3');

    // A second undo goes back to the version just undone.
    t.apply(deployment('web', { image: 'app:2' }));
    assert.deepEqual(revisionByImage(t, 'web'), { 'app:1': 3, 'app:2': 4 });
    assert.equal(replicaSetsOf(t, 'web').length, 2);
  });

  it('names a ReplicaSet after the template hash its pods carry', () => {
    t.apply(deployment('web'));
    const [rs] = replicaSetsOf(t, 'web');
    const hash = hashOf(rs);
    assert.match(hash, /^[0-9a-z]{10}$/);
    assert.equal(rs.metadata.name, `web-${hash}`);
    assert.equal(rs.spec.selector.matchLabels['pod-template-hash'], hash);
    assert.equal(rs.spec.template.metadata.labels['pod-template-hash'], hash);
  });
});

describe('store: NodePorts and LoadBalancer ports', () => {
  let t: TestStore;
  beforeEach(() => (t = new TestStore()));
  afterEach(() => t.close());

  const nodePortOf = (store: TestStore, name: string, i = 0) =>
    store.store.get<Service>('Service', name)!.spec.ports[i].nodePort;

  it('allocates the same NodePort in range for the same command on any server', () => {
    const other = new TestStore();
    try {
      const ports = [
        { name: 'http', port: 80 },
        { name: 'admin', port: 9000 },
      ];
      t.apply(service('web', { type: 'NodePort', ports }));
      other.apply(service('web', { type: 'NodePort', ports }));
      for (const i of [0, 1]) {
        const port = nodePortOf(t, 'web', i)!;
        assert.ok(port >= NODE_PORT_RANGE.min && port <= NODE_PORT_RANGE.max, `${port} in range`);
        assert.equal(nodePortOf(other, 'web', i), port);
      }
      assert.notEqual(nodePortOf(t, 'web', 0), nodePortOf(t, 'web', 1));
    } finally {
      other.close();
    }
  });

  it('keeps an allocated NodePort when the Service is applied again or changed', () => {
    t.apply(service('web', { type: 'NodePort' }));
    const port = nodePortOf(t, 'web');
    assert.deepEqual(outcomes(t, service('web', { type: 'NodePort' })), ['unchanged']);
    assert.equal(nodePortOf(t, 'web'), port);

    const changed = service('web', { type: 'NodePort', selector: { app: 'other' } });
    assert.deepEqual(outcomes(t, changed), ['configured']);
    assert.equal(nodePortOf(t, 'web'), port);
  });

  it('gives distinct NodePorts to many Services', () => {
    const names = Array.from({ length: 30 }, (_, i) => `svc-${i}`);
    t.apply(...names.map((n) => service(n, { type: 'NodePort' })));
    const ports = new Set(names.map((n) => nodePortOf(t, n)));
    assert.equal(ports.size, names.length);
  });

  it('refuses a NodePort another Service holds, naming the field', () => {
    t.apply(service('web', { type: 'NodePort', ports: [{ port: 80, nodePort: 30080 }] }));
    const taken = service('api', {
      type: 'NodePort',
      ports: [
        { name: 'a', port: 81 },
        { name: 'b', port: 80, nodePort: 30080 },
      ],
    });
    const err = rejectsWith(() => t.apply(taken), 'Invalid');
    assert.equal(err.status, 422);
    assert.ok(err.message.startsWith('spec.ports[1].nodePort: '), err.message);
    assert.equal(t.store.get('Service', 'api'), undefined);
  });

  it('never allocates a port that a later port of the same Service asks for', () => {
    // A fresh store hands out the same uid, so the first port would be
    // allocated exactly the port that the second one names.
    const probe = new TestStore();
    let wanted: number;
    try {
      probe.apply(service('web', { type: 'NodePort', ports: [{ name: 'a', port: 80 }] }));
      wanted = nodePortOf(probe, 'web')!;
    } finally {
      probe.close();
    }
    const ports = [
      { name: 'a', port: 80 },
      { name: 'b', port: 81, nodePort: wanted },
    ];
    assert.deepEqual(outcomes(t, service('web', { type: 'NodePort', ports })), ['created']);
    assert.equal(nodePortOf(t, 'web', 1), wanted);
    assert.notEqual(nodePortOf(t, 'web', 0), wanted);
  });

  it('lets a Service keep asking for its own NodePort', () => {
    const svc = service('web', { type: 'NodePort', ports: [{ port: 80, nodePort: 30080 }] });
    t.apply(svc);
    assert.deepEqual(outcomes(t, svc), ['unchanged']);
  });

  it('refuses a second LoadBalancer Service on the same port', () => {
    t.apply(service('web', { type: 'LoadBalancer', ports: [{ port: 8080 }] }));
    const clash = service('api', { type: 'LoadBalancer', ports: [{ port: 8080 }] });
    const err = rejectsWith(() => t.apply(clash), 'Invalid');
    assert.ok(err.message.startsWith('spec.ports[0].port: '), err.message);
    assert.deepEqual(outcomes(t, service('api', { type: 'NodePort', ports: [{ port: 8080 }] })), [
      'created',
    ]);
  });
});

describe('store: commands and the log', () => {
  let t: TestStore;
  beforeEach(() => (t = new TestStore()));
  afterEach(() => t.close());

  it('rolls back a whole batch when one object fails and leaves no log row', () => {
    t.apply(service('web', { type: 'NodePort', ports: [{ port: 80, nodePort: 30080 }] }));
    const logged = t.logLength();
    const applied = t.store.getMeta('applied_index');
    const heard: Change[][] = [];
    t.store.on('change', (changes: Change[]) => heard.push(changes));

    const batch = [
      deployment('api'),
      service('api'),
      service('clash', { type: 'NodePort', ports: [{ port: 80, nodePort: 30080 }] }),
    ];
    rejectsWith(() => t.apply(...batch), 'Invalid');

    assert.equal(t.logLength(), logged);
    assert.equal(t.store.getMeta('applied_index'), applied);
    assert.equal(t.store.get('Deployment', 'api'), undefined);
    assert.equal(t.store.get('Service', 'api'), undefined);
    assert.deepEqual(t.store.list('ReplicaSet'), []);
    assert.equal(heard.length, 0);

    // The next command takes the index the failed one would have had.
    const next = t.apply(deployment('api'));
    assert.equal(next.index, Number(applied) + 1);
    assert.equal(heard.length, 1);
    assert.ok(heard[0].every((c) => c.type === 'ADDED'));
  });

  it('refuses an update based on a stale resourceVersion', () => {
    t.apply(deployment('web'));
    const stale = t.store.get<Deployment>('Deployment', 'web')!;
    t.apply(deployment('web', { replicas: 3 }));

    const update = { ...deployment('web', { replicas: 9 }), metadata: stale.metadata };
    const err = rejectsWith(() => t.commit({ op: 'update', object: update, now: NOW }), 'Conflict');
    assert.equal(err.status, 409);
    assert.equal(t.store.get<Deployment>('Deployment', 'web')!.spec.replicas, 3);
  });

  it('accepts an update based on the current resourceVersion', () => {
    t.apply(deployment('web'));
    const current = t.store.get<Deployment>('Deployment', 'web')!;
    const update = { ...deployment('web', { replicas: 9 }), metadata: current.metadata };
    t.commit({ op: 'update', object: update, now: NOW });
    assert.equal(t.store.get<Deployment>('Deployment', 'web')!.spec.replicas, 9);
  });

  it('answers NotFound for an update or delete of a missing object', () => {
    const update = () => t.commit({ op: 'update', object: deployment('ghost'), now: NOW });
    const remove = () => t.commit({ op: 'delete', kind: 'Service', name: 'ghost', now: NOW });
    rejectsWith(update, 'NotFound');
    rejectsWith(remove, 'NotFound');
    assert.equal(t.logLength(), 0);
  });

  it('refuses to create an object that exists', () => {
    const create = () =>
      t.commit({ op: 'create', object: deployment('web'), uid: t.nextUid(), now: NOW });
    create();
    rejectsWith(create, 'AlreadyExists');
  });

  it('a deleted Deployment loses its ReplicaSets; placed pods terminate, unplaced go', () => {
    t.apply(deployment('web', { image: 'app:1' }), deployment('other'));
    t.apply(deployment('web', { image: 'app:2' }));
    const [rs1, rs2] = replicaSetsOf(t, 'web');
    const [otherRs] = replicaSetsOf(t, 'other');
    const pods = [podOf(rs1, 'web-a'), podOf(rs2, 'web-b', 'n1'), podOf(otherRs, 'other-a')];
    t.commit({ op: 'createPods', pods });

    const later = '2030-01-02T00:00:00.000Z';
    t.commit({ op: 'delete', kind: 'Deployment', name: 'web', now: later });

    assert.equal(t.store.get('Deployment', 'web'), undefined);
    assert.deepEqual(
      t.store.list<ReplicaSet>('ReplicaSet').map((rs) => rs.metadata.name),
      [otherRs.metadata.name],
    );
    const stamp = (name: string) => t.store.get<Pod>('Pod', name)!.metadata.deletionTimestamp;
    assert.equal(t.store.get<Pod>('Pod', 'web-a'), undefined, 'never placed: removed at once');
    assert.equal(stamp('web-b'), later);
    assert.equal(stamp('other-a'), undefined);
  });

  it('lets a node bind, report on and remove a pod only while the uid matches', () => {
    t.apply(deployment('web'));
    const [rs] = replicaSetsOf(t, 'web');
    t.commit({ op: 'createPods', pods: [podOf(rs, 'web-a')] });
    t.commit({ op: 'bindPods', bindings: [{ name: 'web-a', uid: 'uid-other', nodeName: 'n9' }] });
    assert.equal(t.store.get<Pod>('Pod', 'web-a')!.spec.nodeName, undefined);

    t.commit({ op: 'bindPods', bindings: [{ name: 'web-a', uid: 'uid-web-a', nodeName: 'n1' }] });
    assert.equal(t.store.get<Pod>('Pod', 'web-a')!.spec.nodeName, 'n1');
    assert.equal(podsOwnedBy(t.store, rs.metadata.uid).length, 1);

    t.commit({ op: 'removePod', name: 'web-a', uid: 'uid-other' });
    assert.ok(t.store.get('Pod', 'web-a'));
    t.commit({ op: 'removePod', name: 'web-a', uid: 'uid-web-a' });
    assert.equal(t.store.get('Pod', 'web-a'), undefined);
  });
});

describe('store: durability', () => {
  const t = new TestStore();
  after(() => t.close());

  it('keeps objects, the log and the applied index across a reopen', () => {
    t.apply(deployment('web'), service('web', { type: 'NodePort' }));
    t.apply(deployment('web', { image: 'app:2' }));
    const before = {
      deployments: t.store.list('Deployment'),
      services: t.store.list('Service'),
      replicaSets: t.store.list('ReplicaSet'),
      applied: t.store.getMeta('applied_index'),
      logged: t.logLength(),
    };

    t.reopen();

    assert.deepEqual(t.store.list('Deployment'), before.deployments);
    assert.deepEqual(t.store.list('Service'), before.services);
    assert.deepEqual(t.store.list('ReplicaSet'), before.replicaSets);
    assert.equal(t.store.getMeta('applied_index'), before.applied);
    assert.equal(t.logLength(), before.logged);
    const next = t.apply(deployment('web', { image: 'app:2' }));
    assert.deepEqual(
      next.applied?.map((a) => a.result),
      ['unchanged'],
    );
    assert.equal(next.index, Number(before.applied) + 1);
  });

  it('opens a database at the current schema version', () => {
    assert.equal(t.db.pragma('user_version', { simple: true }), 1);
    assert.equal(t.db.pragma('journal_mode', { simple: true }), 'wal');
  });
});
