import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import pino from 'pino';
import { ApiServer } from '../../src/api/server';
import type { Deployment, Service } from '../../src/manifest/types';
import { TestStore, deployment, service } from '../store/fixtures';

interface Reply {
  status: number;
  type: string;
  body: any;
}

/** One request over the unix socket; a body is sent as JSON unless it is a Buffer. */
function call(
  socketPath: string,
  method: string,
  urlPath: string,
  body?: unknown,
  contentType = 'application/json',
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    let text: string | undefined;
    if (Buffer.isBuffer(body)) text = body.toString();
    else if (body !== undefined) text = JSON.stringify(body);
    const headers: Record<string, string | number> = {};
    if (text !== undefined) {
      headers['content-type'] = contentType;
      headers['content-length'] = Buffer.byteLength(text);
    }
    const req = http.request({ socketPath, method, path: urlPath, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const type = String(res.headers['content-type'] ?? '');
        resolve({
          status: res.statusCode ?? 0,
          type,
          body: type.startsWith('application/json') ? JSON.parse(raw) : raw,
        });
      });
    });
    req.on('error', reject);
    req.end(text);
  });
}

/** Asserts a Kubernetes failure Status with this code and reason. */
function assertStatus(reply: Reply, code: number, reason: string): void {
  assert.equal(reply.status, code, JSON.stringify(reply.body));
  assert.deepEqual(
    { ...reply.body, message: undefined, details: undefined },
    {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      reason,
      code,
      message: undefined,
      details: undefined,
    },
  );
  assert.equal(typeof reply.body.message, 'string');
}

const DEPLOYMENTS = '/apis/apps/v1/namespaces/default/deployments';
const SERVICES = '/api/v1/namespaces/default/services';

describe('ApiServer', () => {
  let t: TestStore;
  let server: ApiServer;
  let socket: string;
  const api = (method: string, urlPath: string, body?: unknown, type?: string) =>
    call(socket, method, urlPath, body, type);

  before(async () => {
    t = new TestStore('flotilla-api-');
    socket = path.join(t.dir, 'api.sock');
    server = new ApiServer({ store: t.store, log: t.log, logger: pino({ level: 'silent' }) });
    await server.listenUnix(socket);
  });
  after(async () => {
    await server.close();
    t.close();
  });
  beforeEach(() => {
    for (const d of t.store.list('Deployment')) {
      t.commit({ op: 'delete', kind: 'Deployment', name: d.metadata.name, now: 'x' });
    }
    for (const s of t.store.list('Service')) {
      t.commit({ op: 'delete', kind: 'Service', name: s.metadata.name, now: 'x' });
    }
  });

  it('lists objects as a typed List with the store version', async () => {
    t.apply(deployment('web'), deployment('api'));
    const reply = await api('GET', DEPLOYMENTS);
    assert.equal(reply.status, 200);
    assert.equal(reply.body.kind, 'DeploymentList');
    assert.equal(reply.body.apiVersion, 'apps/v1');
    assert.equal(reply.body.metadata.resourceVersion, t.store.getMeta('applied_index'));
    assert.deepEqual(
      reply.body.items.map((d: Deployment) => d.metadata.name),
      ['api', 'web'],
    );
  });

  it('filters a list by labelSelector', async () => {
    t.apply(
      deployment('web', { labels: { tier: 'front', app: 'web' } }),
      deployment('api', { labels: { tier: 'back', app: 'api' } }),
    );
    const names = async (selector: string) => {
      const query = `labelSelector=${encodeURIComponent(selector)}`;
      const reply = await api('GET', `${DEPLOYMENTS}?${query}`);
      return reply.body.items.map((d: Deployment) => d.metadata.name);
    };
    assert.deepEqual(await names('tier=front'), ['web']);
    assert.deepEqual(await names('tier!=front'), ['api']);
    assert.deepEqual(await names('tier'), ['api', 'web']);
    assert.deepEqual(await names('tier=none'), []);
  });

  it('gets one object, and answers a NotFound Status for a missing one', async () => {
    t.apply(service('web'));
    const reply = await api('GET', `${SERVICES}/web`);
    assert.equal(reply.status, 200);
    assert.equal(reply.body.kind, 'Service');
    assert.equal(reply.body.metadata.name, 'web');

    assertStatus(await api('GET', `${SERVICES}/ghost`), 404, 'NotFound');
  });

  it('answers a NotFound Status for an unknown path', async () => {
    assertStatus(await api('GET', '/apis/batch/v1/namespaces/default/jobs'), 404, 'NotFound');
  });

  it('answers MethodNotAllowed for a write to a read-only kind', async () => {
    const replicaSet = '/apis/apps/v1/namespaces/default/replicasets/x';
    assertStatus(await api('DELETE', replicaSet), 405, 'MethodNotAllowed');
  });

  it('scales with a merge patch of replicas', async () => {
    t.apply(deployment('web', { replicas: 2 }));
    const patch = { spec: { replicas: 5 } };
    const reply = await api('PATCH', `${DEPLOYMENTS}/web`, patch, 'application/merge-patch+json');
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    assert.equal(reply.body.spec.replicas, 5);
    assert.equal(reply.body.metadata.generation, 2);
    assert.equal(t.store.get<Deployment>('Deployment', 'web')!.spec.replicas, 5);
  });

  it('answers a Conflict Status to a patch pinned to a stale resourceVersion', async () => {
    t.apply(deployment('web'));
    const version = t.store.get('Deployment', 'web')!.metadata.resourceVersion;
    t.apply(deployment('web', { replicas: 4 }));
    const patch = { metadata: { resourceVersion: version }, spec: { replicas: 7 } };
    const reply = await api('PATCH', `${DEPLOYMENTS}/web`, patch, 'application/merge-patch+json');
    assertStatus(reply, 409, 'Conflict');
    assert.equal(t.store.get<Deployment>('Deployment', 'web')!.spec.replicas, 4);
  });

  it('keeps an allocated NodePort through a merge patch of the selector', async () => {
    t.apply(service('web', { type: 'NodePort' }));
    const before = t.store.get<Service>('Service', 'web')!.spec.ports[0].nodePort;
    const patch = { spec: { selector: { app: 'other' } } };
    const reply = await api('PATCH', `${SERVICES}/web`, patch, 'application/merge-patch+json');
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    assert.equal(reply.body.spec.ports[0].nodePort, before);
    assert.deepEqual(reply.body.spec.selector, { app: 'other' });
  });

  it('refuses a patch type it does not support with 415', async () => {
    t.apply(deployment('web'));
    const patch = Buffer.from('spec:\n  replicas: 3\n');
    const reply = await api('PATCH', `${DEPLOYMENTS}/web`, patch, 'application/apply-patch+yaml');
    assertStatus(reply, 415, 'UnsupportedMediaType');
    assert.equal(t.store.get<Deployment>('Deployment', 'web')!.spec.replicas, 2);
  });

  it('answers a Conflict Status to a PUT based on a stale resourceVersion', async () => {
    t.apply(deployment('web'));
    const stale = (await api('GET', `${DEPLOYMENTS}/web`)).body;
    t.apply(deployment('web', { replicas: 4 }));

    stale.spec.replicas = 9;
    assertStatus(await api('PUT', `${DEPLOYMENTS}/web`, stale), 409, 'Conflict');
    assert.equal(t.store.get<Deployment>('Deployment', 'web')!.spec.replicas, 4);

    const fresh = (await api('GET', `${DEPLOYMENTS}/web`)).body;
    fresh.spec.replicas = 9;
    const reply = await api('PUT', `${DEPLOYMENTS}/web`, fresh);
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    assert.equal(reply.body.spec.replicas, 9);
  });

  it('refuses a PUT whose body names another object', async () => {
    t.apply(deployment('web'));
    const body = (await api('GET', `${DEPLOYMENTS}/web`)).body;
    body.metadata.name = 'other';
    assertStatus(await api('PUT', `${DEPLOYMENTS}/web`, body), 400, 'BadRequest');
  });

  it('applies a batch and says created, then unchanged', async () => {
    const objects = [deployment('web'), service('web', { type: 'NodePort' })];
    const first = await api('POST', '/apis/flotilla.io/v1/apply', { objects });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.deepEqual(first.body.items, [
      { kind: 'Deployment', name: 'web', result: 'created' },
      { kind: 'Service', name: 'web', result: 'created' },
    ]);
    const again = await api('POST', '/apis/flotilla.io/v1/apply', { objects });
    assert.deepEqual(
      again.body.items.map((i: { result: string }) => i.result),
      ['unchanged', 'unchanged'],
    );
  });

  it('answers Invalid, naming the field, for a bad manifest and applies nothing', async () => {
    const bad = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' }, spec: {} };
    const objects = [service('ok'), bad];
    const reply = await api('POST', '/apis/flotilla.io/v1/apply', { objects });
    assert.equal(reply.status, 422);
    assert.equal(reply.body.reason, 'Invalid');
    const field = reply.body.details?.causes?.[0]?.field;
    assert.ok(field?.startsWith('spec.'), JSON.stringify(reply.body));
    assert.equal(t.store.get('Service', 'ok'), undefined);
  });

  it('answers BadRequest for a body that is not JSON', async () => {
    assertStatus(await api('POST', SERVICES, Buffer.from('{not json')), 400, 'BadRequest');
  });

  it('creates, refuses a duplicate, and deletes', async () => {
    const created = await api('POST', SERVICES, service('web'));
    assert.equal(created.status, 201);
    assert.equal(created.body.metadata.name, 'web');
    assertStatus(await api('POST', SERVICES, service('web')), 409, 'AlreadyExists');
    const deleted = await api('DELETE', `${SERVICES}/web`);
    assert.equal(deleted.status, 200);
    assertStatus(await api('GET', `${SERVICES}/web`), 404, 'NotFound');
    assertStatus(await api('DELETE', `${SERVICES}/web`), 404, 'NotFound');
  });

  it('serves its version and health', async () => {
    const version = await api('GET', '/version');
    assert.equal(version.status, 200);
    assert.match(version.body.gitVersion, /^v\d+\.\d+\.\d+/);
    const health = await api('GET', '/healthz');
    assert.deepEqual([health.status, health.body], [200, 'ok']);
  });
  it('gives a LoadBalancer Service every Ready node address as its ingress', async () => {
    for (const [name, address, ready] of [
      ['lb-a', '10.0.0.5', 'True'],
      ['lb-b', '10.0.0.6', 'True'],
      ['lb-c', '10.0.0.7', 'False'],
    ]) {
      t.commit({
        op: 'registerNode',
        node: {
          metadata: { name, uid: '', resourceVersion: '' },
          status: {
            conditions: [{ type: 'Ready', status: ready }],
            addresses: [{ type: 'InternalIP', address }],
          },
        } as never,
        uid: t.nextUid(),
        now: 'x',
      });
    }
    t.apply(service('front', { type: 'LoadBalancer' }), service('inside'));
    const front = await api('GET', `${SERVICES}/front`);
    assert.deepEqual(front.body.status.loadBalancer.ingress, [
      { ip: '10.0.0.5' },
      { ip: '10.0.0.6' },
    ]);
    const inside = await api('GET', `${SERVICES}/inside`);
    assert.equal(inside.body.status?.loadBalancer?.ingress, undefined);
  });
});
