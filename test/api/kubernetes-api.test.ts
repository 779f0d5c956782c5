import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import pino from 'pino';
import { ApiServer } from '../../src/api/server';
import type { Deployment } from '../../src/manifest/types';
import type { ReplicaSet } from '../../src/model/types';
import { FakeRuntime } from '../../src/runtime/fake-runtime';
import { TestStore, deployment, podOf, service } from '../store/fixtures';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: any;
}

const DEPLOYMENTS = '/apis/apps/v1/namespaces/default/deployments';
const TABLE = 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json';

/** One request over the unix socket, with optional headers. */
function call(
  socketPath: string,
  method: string,
  urlPath: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const all: Record<string, string | number> = { ...headers };
    if (text !== undefined) {
      all['content-type'] ??= 'application/json';
      all['content-length'] = Buffer.byteLength(text);
    }
    const req = http.request({ socketPath, method, path: urlPath, headers: all }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const json = String(res.headers['content-type']).startsWith('application/json');
        const status = res.statusCode ?? 0;
        resolve({ status, headers: res.headers, body: json ? JSON.parse(raw) : raw });
      });
    });
    req.on('error', reject);
    req.end(text);
  });
}

/** A watch stream: its events so far, a way to wait for more, and close. */
class Watch {
  readonly events: any[] = [];
  status = 0;
  private buffer = '';
  private readonly req: http.ClientRequest;
  private readonly waiters: (() => void)[] = [];

  constructor(socketPath: string, urlPath: string, headers: Record<string, string> = {}) {
    this.req = http.get({ socketPath, path: urlPath, headers }, (res) => {
      this.status = res.statusCode ?? 0;
      res.on('data', (chunk: Buffer) => {
        this.buffer += chunk.toString('utf8');
        const lines = this.buffer.split('\n');
        this.buffer = lines.pop() ?? '';
        for (const line of lines) if (line.trim()) this.events.push(JSON.parse(line));
        if (this.status !== 200 && this.buffer.trim()) this.events.push(JSON.parse(this.buffer));
        this.waiters.splice(0).forEach((w) => w());
      });
    });
    this.req.on('error', () => undefined);
  }

  /** Resolves once `check` holds for the events received. */
  async until(check: (events: any[]) => boolean, timeoutMs = 10_000): Promise<any[]> {
    const deadline = Date.now() + timeoutMs;
    while (!check(this.events)) {
      if (Date.now() > deadline) throw new Error(`watch got only ${JSON.stringify(this.events)}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
    return this.events;
  }

  close(): void {
    this.req.destroy();
  }
}

describe('ApiServer in the Kubernetes dialect', () => {
  let t: TestStore;
  let server: ApiServer;
  let socket: string;
  const api = (method: string, urlPath: string, body?: unknown, headers?: Record<string, string>) =>
    call(socket, method, urlPath, body, headers);
  const watches: Watch[] = [];
  const watch = (urlPath: string, headers?: Record<string, string>) => {
    const w = new Watch(socket, urlPath, headers);
    watches.push(w);
    return w;
  };

  before(async () => {
    t = new TestStore('flotilla-kapi-');
    socket = path.join(t.dir, 'api.sock');
    server = new ApiServer({
      store: t.store,
      log: t.log,
      logger: pino({ level: 'silent' }),
      historySize: 20,
      bookmarkIntervalMs: 100,
    });
    await server.listenUnix(socket);
  });
  after(async () => {
    for (const w of watches) w.close();
    await server.close();
    t.close();
  });
  beforeEach(() => {
    for (const d of t.store.list('Deployment')) {
      t.commit({ op: 'delete', kind: 'Deployment', name: d.metadata.name, now: 'x' });
    }
  });

  it('serves discovery with verbs, short names and the scale subresource', async () => {
    const core = await api('GET', '/api');
    assert.deepEqual(core.body.versions, ['v1']);
    const groups = await api('GET', '/apis');
    assert.deepEqual(groups.body.groups.map((g: { name: string }) => g.name), ['apps']);
    const apps = (await api('GET', '/apis/apps/v1')).body;
    const byName = new Map(apps.resources.map((r: { name: string }) => [r.name, r]));
    assert.deepEqual((byName.get('deployments') as any).shortNames, ['deploy']);
    assert.ok((byName.get('deployments') as any).verbs.includes('watch'));
    assert.deepEqual((byName.get('replicasets') as any).verbs, ['get', 'list', 'watch']);
    const scale = byName.get('deployments/scale') as any;
    assert.deepEqual([scale.group, scale.version, scale.kind], ['autoscaling', 'v1', 'Scale']);
    const core1 = (await api('GET', '/api/v1')).body;
    assert.ok(core1.resources.some((r: { name: string }) => r.name === 'pods/log'));
  });

  it('says in OpenAPI v3 that PATCH takes fieldValidation', async () => {
    const index = (await api('GET', '/openapi/v3')).body;
    const url = index.paths['apis/apps/v1'].serverRelativeURL as string;
    const doc = (await api('GET', url)).body;
    const patch = doc.paths['/apis/apps/v1/namespaces/{namespace}/deployments/{name}'].patch;
    assert.equal(patch['x-kubernetes-group-version-kind'].kind, 'Deployment');
    assert.ok(patch.parameters.some((p: { name: string }) => p.name === 'fieldValidation'));
  });

  it('refuses unknown fields with fieldValidation=Strict and warns of them otherwise', async () => {
    const body = { ...deployment('web'), spec: { ...deployment('web').spec, replicaz: 3 } };
    const strict = await api('POST', `${DEPLOYMENTS}?fieldValidation=Strict`, body);
    assert.equal(strict.status, 400, JSON.stringify(strict.body));
    assert.match(strict.body.message, /replicaz/);
    const warned = await api('POST', DEPLOYMENTS, body);
    assert.equal(warned.status, 201);
    assert.match(String(warned.headers.warning), /^299 - ".*replicaz/);
  });

  it('answers NotFound for another namespace, naming the only one', async () => {
    const reply = await api('GET', '/apis/apps/v1/namespaces/kube-system/deployments');
    assert.equal(reply.status, 404);
    assert.equal(reply.body.reason, 'NotFound');
    assert.match(reply.body.message, /"default"/);
    const ns = await api('GET', '/api/v1/namespaces/default');
    assert.equal(ns.body.status.phase, 'Active');
  });

  it('serves a Table with wide columns at priority 1 when kubectl asks for one', async () => {
    t.apply(deployment('web'));
    const reply = await api('GET', DEPLOYMENTS, undefined, { accept: TABLE });
    assert.equal(reply.body.kind, 'Table');
    const columns = reply.body.columnDefinitions;
    assert.deepEqual(columns[0], {
      name: 'NAME',
      type: 'string',
      format: 'name',
      description: 'NAME',
      priority: 0,
    });
    assert.equal(columns.find((c: { name: string }) => c.name === 'IMAGES').priority, 1);
    assert.equal(reply.body.rows[0].cells[0], 'web');
    assert.equal(reply.body.rows[0].object.metadata.name, 'web');
  });

  it('scales through the scale subresource, with a merge patch and with a PUT', async () => {
    t.apply(deployment('web', { replicas: 2 }));
    const scale = (await api('GET', `${DEPLOYMENTS}/web/scale`)).body;
    const seen = [scale.kind, scale.spec.replicas, scale.status.selector];
    assert.deepEqual(seen, ['Scale', 2, 'app=web']);
    const patched = await api('PATCH', `${DEPLOYMENTS}/web/scale`, { spec: { replicas: 6 } }, {
      'content-type': 'application/merge-patch+json',
    });
    assert.equal(patched.body.spec.replicas, 6);
    const stale = { ...scale, spec: { replicas: 1 } };
    assert.equal((await api('PUT', `${DEPLOYMENTS}/web/scale`, stale)).status, 409);
    assert.equal(t.store.get<Deployment>('Deployment', 'web')!.spec.replicas, 6);
  });

  it('applies strategic merge and JSON patches', async () => {
    t.apply(deployment('web'));
    const smp = {
      spec: {
        template: { spec: { containers: [{ name: 'main', image: 'registry.test/app:2' }] } },
      },
    };
    const one = await api('PATCH', `${DEPLOYMENTS}/web`, smp, {
      'content-type': 'application/strategic-merge-patch+json',
    });
    assert.equal(one.status, 200, JSON.stringify(one.body));
    assert.equal(one.body.spec.template.spec.containers[0].image, 'registry.test/app:2');
    const json = [{ op: 'replace', path: '/spec/replicas', value: 3 }];
    const two = await api('PATCH', `${DEPLOYMENTS}/web`, json, {
      'content-type': 'application/json-patch+json',
    });
    assert.equal(two.body.spec.replicas, 3);
    assert.equal(two.body.spec.template.spec.containers[0].image, 'registry.test/app:2');
  });

  it('does not make a new revision for an annotation change alone', async () => {
    t.apply(deployment('web'));
    const before = t.store.get<Deployment>('Deployment', 'web')!;
    const patch = { metadata: { annotations: { note: 'hello' } } };
    const reply = await api('PATCH', `${DEPLOYMENTS}/web`, patch, {
      'content-type': 'application/strategic-merge-patch+json',
    });
    assert.equal(reply.body.metadata.annotations.note, 'hello');
    assert.equal(reply.body.metadata.generation, before.metadata.generation);
    const revision = 'deployment.kubernetes.io/revision';
    assert.equal(reply.body.metadata.annotations[revision], before.metadata.annotations![revision]);
  });

  it('watches changes after a resourceVersion, filtered by kind and field selector', async () => {
    t.apply(deployment('web'), deployment('api'));
    const from = (await api('GET', DEPLOYMENTS)).body.metadata.resourceVersion;
    t.apply(deployment('web', { replicas: 5 }));
    t.apply(service('web'));
    const query = `watch=true&resourceVersion=${from}&fieldSelector=metadata.name%3Dweb`;
    const w = watch(`${DEPLOYMENTS}?${query}`);
    const events = await w.until((e) => e.length >= 1);
    assert.deepEqual([events[0].type, events[0].object.spec.replicas], ['MODIFIED', 5]);
    t.commit({ op: 'delete', kind: 'Deployment', name: 'api', now: 'x' });
    t.commit({ op: 'delete', kind: 'Deployment', name: 'web', now: 'x' });
    const all = await w.until((e) => e.some((x) => x.type === 'DELETED'));
    assert.deepEqual(all.map((e) => [e.type, e.object.metadata.name]), [
      ['MODIFIED', 'web'],
      ['DELETED', 'web'],
    ]);
  });

  it('starts a watch without a version with the current objects, and bookmarks', async () => {
    t.apply(deployment('web'));
    const w = watch(`${DEPLOYMENTS}?watch=true&allowWatchBookmarks=true`);
    const events = await w.until((e) => e.some((x) => x.type === 'BOOKMARK'));
    assert.deepEqual([events[0].type, events[0].object.metadata.name], ['ADDED', 'web']);
    const mark = events.find((x) => x.type === 'BOOKMARK');
    assert.equal(mark.object.kind, 'Deployment');
    assert.ok(Number(mark.object.metadata.resourceVersion) > 0);
  });

  it('sends DELETED when an object stops matching the selector, ADDED when it starts', async () => {
    t.apply(deployment('web', { labels: { tier: 'front' } }));
    const w = watch(`${DEPLOYMENTS}?watch=true&labelSelector=tier%3Dfront`);
    await w.until((e) => e.length === 1);
    t.apply(deployment('web', { labels: { tier: 'back' } }));
    t.apply(deployment('web', { labels: { tier: 'front' } }));
    const events = await w.until((e) => e.length === 3);
    assert.deepEqual(events.map((e) => e.type), ['ADDED', 'DELETED', 'ADDED']);
  });

  it('ends the initial events of a watch list with a marked bookmark', async () => {
    t.apply(deployment('web'));
    const w = watch(`${DEPLOYMENTS}?watch=true&sendInitialEvents=true&allowWatchBookmarks=true`);
    const events = await w.until((e) => e.some((x) => x.type === 'BOOKMARK'));
    const mark = events.find((x) => x.type === 'BOOKMARK');
    assert.equal(mark.object.metadata.annotations['k8s.io/initial-events-end'], 'true');
  });

  it('answers 410 Expired to a watch from a version the history no longer holds', async () => {
    const from = (await api('GET', DEPLOYMENTS)).body.metadata.resourceVersion;
    for (let i = 1; i <= 25; i++) t.apply(deployment('web', { replicas: i }));
    const reply = await api('GET', `${DEPLOYMENTS}?watch=true&resourceVersion=${from}`);
    assert.equal(reply.status, 410);
    const { kind, reason, code } = reply.body;
    assert.deepEqual([kind, reason, code], ['Status', 'Expired', 410]);
    assert.match(reply.body.message, /too old resource version/);
  });

  it('streams watch events as one-row Tables when kubectl asks for Tables', async () => {
    t.apply(deployment('web'));
    const w = watch(`${DEPLOYMENTS}?watch=true`, { accept: TABLE });
    const [event] = await w.until((e) => e.length >= 1);
    assert.equal(event.object.kind, 'Table');
    assert.equal(event.object.rows[0].cells[0], 'web');
  });

  it('deletes a pod by terminating it, and refuses writes to read-only kinds', async () => {
    const reply = await api('POST', '/api/v1/nodes', { kind: 'Node' });
    assert.deepEqual([reply.status, reply.body.reason], [405, 'MethodNotAllowed']);
    const missing = await api('DELETE', '/api/v1/namespaces/default/pods/ghost');
    assert.deepEqual([missing.status, missing.body.message], [404, 'pods "ghost" not found']);
  });

  it('serves the logs of a pod of this node from its container, and refuses others', async () => {
    const runtime = new FakeRuntime();
    runtime.addImage('registry.test/app:1');
    const spec = { name: 'c', image: 'registry.test/app:1', labels: {}, env: [] };
    const id = await runtime.createContainer(spec);
    runtime.writeLog(id, 'hello from the container');
    server.useRuntime(runtime);
    t.apply(deployment('web'));
    const rs = t.store.list<ReplicaSet>('ReplicaSet')[0];
    t.commit({ op: 'createPods', pods: [podOf(rs, 'web-1')] });
    const status = {
      phase: 'Running',
      containerStatuses: [{ name: 'main', containerID: `docker://${id}`, ready: true }],
    };
    t.commit({ op: 'podStatus', name: 'web-1', uid: 'uid-web-1', status: status as never });
    const pods = '/api/v1/namespaces/default/pods';
    const logs = await api('GET', `${pods}/web-1/log?container=main`);
    assert.equal(logs.status, 200);
    assert.match(logs.body, /hello from the container/);

    t.commit({ op: 'createPods', pods: [podOf(rs, 'web-2', 'elsewhere')] });
    const remote = await api('GET', `${pods}/web-2/log`);
    assert.deepEqual([remote.status, remote.body.reason], [400, 'BadRequest']);
    assert.match(remote.body.message, /node "elsewhere"/);
  });

  it('tells where its network listener is, for kubeconfigs', async () => {
    const port = await server.listenTcp('127.0.0.1', 0);
    const info = (await api('GET', '/apis/flotilla.io/v1/info')).body;
    assert.equal(info.server, `http://127.0.0.1:${port}`);
  });
});
