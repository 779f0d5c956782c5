import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApiClient } from '../../src/api/client';
import { applyLoaded } from '../../src/cli/apply';
import type { Output } from '../../src/cli/context';
import { ensureManifestModule, FakeApi, runCli, status, type Recorded } from './fake-api';

const APPLY = 'POST /apis/flotilla.io/v1/apply';

const MANIFEST = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: { app: web }
  template:
    metadata:
      labels: { app: web }
    spec:
      containers:
        - name: web
          image: nginx:1.27
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  type: NodePort
  selector: { app: web }
  ports:
    - port: 80
`;

function capture(): Output & { stdout: string; stderr: string } {
  const sink = {
    stdout: '',
    stderr: '',
    out: (text: string) => void (sink.stdout += text),
    err: (text: string) => void (sink.stderr += text),
  };
  return sink;
}

describe('flotilla apply', () => {
  let api: FakeApi;
  let file: string;
  const applied = (req: Recorded) => {
    const objects = (req.body as { objects: { kind: string; metadata: { name: string } }[] })
      .objects;
    // Answered in reverse to prove the CLI prints in input order.
    const items = objects
      .map((o, i) => ({ kind: o.kind, name: o.metadata.name, result: i ? 'unchanged' : 'created' }))
      .reverse();
    return { status: 200, body: { items, warnings: ['service web: nodePort assigned'] } };
  };

  before(async () => {
    ensureManifestModule();
    api = await new FakeApi().on(APPLY, applied).start();
    file = path.join(api.dataDir, 'web.yaml');
    fs.writeFileSync(file, MANIFEST);
  });
  after(() => api.stop());

  it('posts every object in one request and prints each result in input order', async () => {
    const res = await runCli(['--data-dir', api.dataDir, 'apply', '-f', file]);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, 'deployment.apps/web created\nservice/web unchanged\n');
    assert.equal(res.stderr, 'Warning: service web: nodePort assigned\n');

    const post = api.requests.find((r) => r.method === 'POST');
    const objects = (post?.body as { objects: { kind: string }[] }).objects;
    assert.deepEqual(
      objects.map((o) => o.kind),
      ['Deployment', 'Service'],
    );
  });

  it('reads manifests from stdin for -f -', async () => {
    const res = await runCli(['--data-dir', api.dataDir, 'apply', '-f', '-'], { input: MANIFEST });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, 'deployment.apps/web created\nservice/web unchanged\n');
  });

  it('reports a manifest that does not parse in one line and sends nothing', async () => {
    const bad = path.join(api.dataDir, 'bad.yaml');
    fs.writeFileSync(bad, 'kind: Deployment\nmetadata: [unclosed\n');
    const before = api.requests.length;
    const res = await runCli(['--data-dir', api.dataDir, 'apply', '-f', bad]);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /^error: .*bad\.yaml/);
    assert.equal(res.stderr.split('\n').length, 2, res.stderr);
    assert.equal(api.requests.length, before);
  });

  it('requires -f', async () => {
    const res = await runCli(['--data-dir', api.dataDir, 'apply']);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /required option '-f, --filename <path>' not specified/);
  });
});

describe('apply against a server that refuses', () => {
  let api: FakeApi;

  before(async () => {
    ensureManifestModule();
    const causes = [{ field: 'spec.ports[0].nodePort', message: 'port 31234 is taken' }];
    api = await new FakeApi()
      .on(APPLY, status(422, 'Invalid', 'Service "web" is invalid', causes))
      .start();
  });
  after(() => api.stop());

  it('prints the Status message with its causes and exits 1', async () => {
    const file = path.join(api.dataDir, 'web.yaml');
    fs.writeFileSync(file, MANIFEST);
    const res = await runCli(['--data-dir', api.dataDir, 'apply', '-f', file]);
    assert.equal(res.code, 1);
    assert.equal(res.stdout, '');
    assert.equal(
      res.stderr,
      'error: Service "web" is invalid (spec.ports[0].nodePort: port 31234 is taken)\n',
    );
  });

  it('prints manifest warnings with file and line before sending', async () => {
    const client = new ApiClient({ socketPath: path.join(api.dataDir, 'flotilla.sock') });
    const sink = capture();
    const object = { kind: 'Service', metadata: { name: 'web' } };
    const loaded = {
      objects: [{ object, source: { file: 'a.yaml', line: 1 } }],
      warnings: [
        { file: 'a.yaml', line: 7, fieldPath: 'spec.sessionAffinity', message: 'ignored' },
      ],
    };
    await assert.rejects(applyLoaded(client, loaded, sink), { code: 'Invalid', status: 422 });
    assert.equal(sink.stderr, 'Warning: a.yaml:7: spec.sessionAffinity: ignored\n');
  });

  it('refuses to send an empty set of objects', async () => {
    const client = new ApiClient({ socketPath: path.join(api.dataDir, 'flotilla.sock') });
    await assert.rejects(applyLoaded(client, { objects: [], warnings: [] }, capture()), {
      message: 'no objects passed to apply',
    });
  });
});
