import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Deployment } from '../../src/model/k8s-types';
import { progressBar, viewRollout } from '../../src/cli/rollout';
import { FakeApi, runCli, type Recorded } from './fake-api';

const DEPLOY = '/apis/apps/v1/namespaces/default/deployments/web';
const RS_LIST = '/apis/apps/v1/namespaces/default/replicasets';

interface WebOptions {
  generation?: number;
  revision?: string;
  annotations?: Record<string, string>;
}

function web(status: Record<string, unknown>, extra: WebOptions = {}): Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: 'web',
      uid: 'uid-web',
      resourceVersion: '7',
      generation: extra.generation ?? 2,
      annotations: {
        'deployment.kubernetes.io/revision': extra.revision ?? '3',
        ...(extra.annotations ?? {}),
      },
    },
    spec: {
      replicas: 4,
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: { containers: [{ name: 'main', image: 'app:3' }] },
      },
    },
    status: { observedGeneration: 2, ...status },
  } as unknown as Deployment;
}

function progressing(reason: string) {
  const status = reason === 'ProgressDeadlineExceeded' ? 'False' : 'True';
  return [{ type: 'Progressing', status, reason }];
}

function replicaSet(revision: number, image: string) {
  return {
    metadata: {
      name: `web-h${revision}`,
      uid: `uid-rs-${revision}`,
      labels: { app: 'web', 'pod-template-hash': `h${revision}` },
      annotations: { 'deployment.kubernetes.io/revision': String(revision) },
      ownerReferences: [{ kind: 'Deployment', name: 'web', uid: 'uid-web', controller: true }],
    },
    spec: {
      replicas: 0,
      template: {
        metadata: { labels: { app: 'web', 'pod-template-hash': `h${revision}` } },
        spec: { containers: [{ name: 'main', image }] },
      },
    },
  };
}

describe('rollout status reading', () => {
  it('waits for the spec update to be observed first', () => {
    const view = viewRollout(web({ updatedReplicas: 4 }, { generation: 3 }));
    assert.equal(view.done, false);
    assert.equal(view.message, 'Waiting for deployment spec update to be observed...');
  });

  it("prints kubectl's waiting messages in kubectl's order", () => {
    const msg = (s: Record<string, unknown>) => viewRollout(web(s)).message;
    const prefix = 'Waiting for deployment "web" rollout to finish: ';
    assert.equal(
      msg({ updatedReplicas: 1, replicas: 4 }),
      `${prefix}1 out of 4 new replicas have been updated...`,
    );
    assert.equal(
      msg({ updatedReplicas: 4, replicas: 5 }),
      `${prefix}1 old replicas are pending termination...`,
    );
    assert.equal(
      msg({ updatedReplicas: 4, replicas: 4, availableReplicas: 2 }),
      `${prefix}2 of 4 updated replicas are available...`,
    );
  });

  it('is done only once the controller says the new ReplicaSet is available', () => {
    const counts = { updatedReplicas: 4, replicas: 4, availableReplicas: 4, readyReplicas: 4 };
    const updating = web({ ...counts, conditions: progressing('ReplicaSetUpdated') });
    assert.equal(viewRollout(updating).done, false);
    const done = viewRollout(web({ ...counts, conditions: progressing('NewReplicaSetAvailable') }));
    assert.equal(done.done, true);
    assert.equal(done.message, 'deployment "web" successfully rolled out');
  });

  it('fails on ProgressDeadlineExceeded and on a rollback of the watched revision', () => {
    const conditions = progressing('ProgressDeadlineExceeded');
    const late = viewRollout(web({ updatedReplicas: 1, conditions }));
    assert.equal(late.failure, 'deployment "web" exceeded its progress deadline');
    const annotations = {
      'flotilla.io/rolled-back-from-revision': '3',
      'flotilla.io/rollback-reason': 'pod "web-x" of the new revision is crash-looping',
    };
    const rolled = viewRollout(web({}, { annotations, revision: '4' }), '3');
    assert.equal(rolled.failureCode, 'RolledBack');
    assert.match(rolled.failure ?? '', /rolled back from revision 3: pod "web-x"/);
  });

  it('draws a bar of available replicas', () => {
    const view = { done: false, message: '', desired: 4, updated: 4, ready: 3, available: 2 };
    const bar = progressBar(view, 8);
    assert.match(bar, /^\[####\.\.\.\.\] 4\/4 updated {2}3\/4 ready {2}2\/4 available/);
  });
});

describe('flotilla rollout', () => {
  let api: FakeApi;
  let current: Deployment;

  before(async () => {
    current = web({});
    api = new FakeApi()
      .on(`GET ${DEPLOY}`, () => ({ status: 200, body: current }))
      .on(`PUT ${DEPLOY}`, (req) => ({ status: 200, body: req.body }))
      .on(`PATCH ${DEPLOY}`, (req) => ({ status: 200, body: req.body }))
      .on(`GET ${RS_LIST}`, {
        status: 200,
        body: { items: [replicaSet(1, 'app:1'), replicaSet(3, 'app:3'), replicaSet(2, 'app:2')] },
      });
    await api.start();
  });
  after(() => api.stop());

  const run = (...args: string[]) => runCli(['--data-dir', api.dataDir, 'rollout', ...args]);
  const lastWrite = (): Recorded => api.writes().at(-1)!;

  it('undoes by putting back the previous template without the hash label', async () => {
    const r = await run('undo', 'deployment/web');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'deployment.apps/web rolled back\n');
    const sent = lastWrite().body as Deployment;
    assert.equal(lastWrite().method, 'PUT');
    assert.equal(sent.metadata?.resourceVersion, '7', 'a concurrent change makes it a conflict');
    assert.deepEqual(sent.spec?.template?.metadata?.labels, { app: 'web' });
    assert.equal(sent.spec?.template?.spec?.containers?.[0].image, 'app:2');
  });

  it('undoes to the revision asked for and refuses one that does not exist', async () => {
    const r = await run('undo', 'deployment', 'web', '--to-revision=1');
    assert.equal(r.code, 0, r.stderr);
    const sent = lastWrite().body as Deployment;
    assert.equal(sent.spec?.template?.spec?.containers?.[0].image, 'app:1');
    const missing = await run('undo', 'deployment/web', '--to-revision=9');
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, 'error: unable to find specified revision 9 in history\n');
  });

  it('lists the revisions oldest first', async () => {
    const r = await run('history', 'deployment/web');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => l.trim().split(/\s+/)[0]),
      ['deployment.apps/web', 'REVISION', '1', '2', '3'],
    );
  });

  it('exits non-zero with the reason when the deadline is exceeded', async () => {
    current = web({ updatedReplicas: 1, conditions: progressing('ProgressDeadlineExceeded') });
    const r = await run('status', 'deployment/web');
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'error: deployment "web" exceeded its progress deadline\n');
  });

  it('restarts by stamping the pod template, which makes a new revision', async () => {
    const r = await run('restart', 'deployment/web');
    assert.equal(r.code, 0, r.stderr);
    type Patch = { spec: { template: { metadata: { annotations: Record<string, string> } } } };
    const patch = lastWrite().body as Patch;
    const stamp = patch.spec.template.metadata.annotations['kubectl.kubernetes.io/restartedAt'];
    assert.ok(!Number.isNaN(Date.parse(stamp)));
  });

  it('pauses and resumes through spec.paused', async () => {
    current = web({});
    assert.equal((await run('pause', 'deployment/web')).stdout, 'deployment.apps/web paused\n');
    assert.deepEqual(lastWrite().body, { spec: { paused: true } });
    current = { ...current, spec: { ...current.spec, paused: true } } as Deployment;
    assert.equal((await run('resume', 'deployment/web')).stdout, 'deployment.apps/web resumed\n');
    assert.deepEqual(lastWrite().body, { spec: { paused: null } });
  });
});
