import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { ensureManifestModule, FakeApi, runCli, status } from './fake-api';
import { deployment, list, nodes, pods, service } from './fixtures';

const DEPLOYMENTS = '/apis/apps/v1/namespaces/default/deployments';
const SERVICES = '/api/v1/namespaces/default/services';
const PODS = '/api/v1/namespaces/default/pods';

describe('commands that change objects', () => {
  let api: FakeApi;
  const cli = (...args: string[]) => runCli(['--data-dir', api.dataDir, ...args]);

  before(async () => {
    ensureManifestModule();
    api = await new FakeApi()
      .on(`POST ${DEPLOYMENTS}`, (req) => ({ status: 201, body: req.body }))
      .on(`GET ${DEPLOYMENTS}/web`, { status: 200, body: deployment() })
      .on(`PATCH ${DEPLOYMENTS}/web`, { status: 200, body: deployment() })
      .on(`DELETE ${DEPLOYMENTS}/web`, { status: 200, body: deployment() })
      .on(`DELETE ${SERVICES}/web`, { status: 200, body: service() })
      .start();
  });
  beforeEach(() => {
    api.requests.length = 0;
  });
  after(() => api.stop());

  it('run creates a labelled one-container deployment', async () => {
    const image = '--image=ghcr.io/acme/api:2';
    const res = await cli('run', 'api', image, '--port=8080', '--replicas=3');
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, 'deployment.apps/api created\n');
    const [post] = api.writes();
    assert.deepEqual(post.body, {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'api', labels: { app: 'api' } },
      spec: {
        replicas: 3,
        selector: { matchLabels: { app: 'api' } },
        template: {
          metadata: { labels: { app: 'api' } },
          spec: {
            containers: [
              {
                name: 'api',
                image: 'ghcr.io/acme/api:2',
                ports: [{ containerPort: 8080, protocol: 'TCP' }],
              },
            ],
          },
        },
      },
    });
  });

  it('run refuses a negative replica count before sending anything', async () => {
    const res = await cli('run', 'api', '--image=x', '--replicas=-1');
    assert.equal(res.code, 1);
    assert.match(res.stderr, /^error: expected --replicas to be a whole number >= 0, got "-1"\n$/);
    assert.equal(api.writes().length, 0);
  });

  it('scale sends a merge patch of spec.replicas', async () => {
    const res = await cli('scale', 'deployment/web', '--replicas=5');
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, 'deployment.apps/web scaled\n');
    const [patch] = api.writes();
    assert.equal(patch.method, 'PATCH');
    assert.equal(patch.headers['content-type'], 'application/merge-patch+json');
    assert.deepEqual(patch.body, { spec: { replicas: 5 } });
  });

  it('scale also takes KIND NAME', async () => {
    const res = await cli('scale', 'deploy', 'web', '--replicas', '0');
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual(api.writes()[0].body, { spec: { replicas: 0 } });
  });

  it('set image sends the whole container list with the resourceVersion it read', async () => {
    const res = await cli('set', 'image', 'deployment/web', 'web=nginx:1.28');
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, 'deployment.apps/web image updated\n');
    const [patch] = api.writes();
    assert.equal(patch.headers['content-type'], 'application/merge-patch+json');
    assert.deepEqual(patch.body, {
      metadata: { resourceVersion: '41' },
      spec: {
        template: {
          spec: {
            containers: [
              { name: 'web', image: 'nginx:1.28', ports: [{ containerPort: 80, protocol: 'TCP' }] },
            ],
          },
        },
      },
    });
  });

  it('set image names a container that does not exist', async () => {
    const res = await cli('set', 'image', 'deployment/web', 'sidecar=busybox');
    assert.equal(res.code, 1);
    assert.equal(res.stderr, 'error: unable to find container named "sidecar"\n');
    assert.equal(api.writes().length, 0);
  });

  it('delete prints what it deleted, kubectl style', async () => {
    const res = await cli('delete', 'deploy', 'web');
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, 'deployment.apps "web" deleted\n');
    assert.equal(api.writes()[0].url, `${DEPLOYMENTS}/web`);
  });

  it('delete of a missing object fails unless --ignore-not-found is given', async () => {
    const missing = await cli('delete', 'svc', 'ghost');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^error: the server could not find DELETE/);

    const ignored = await cli('delete', 'svc', 'ghost', '--ignore-not-found');
    assert.equal(ignored.code, 0);
    assert.equal(ignored.stdout, '');
  });

  it('delete goes on after a failure and reports every failure', async () => {
    const res = await cli('delete', 'deploy/a', 'deploy/web', 'svc/b');
    assert.equal(res.code, 1);
    assert.equal(res.stdout, 'deployment.apps "web" deleted\n');
    assert.equal(res.stderr.trimEnd().split('\n').length, 2);
    assert.equal(api.writes().length, 3);
  });

  it('delete -f removes the objects a manifest names', async () => {
    const file = path.join(api.dataDir, 'svc.yaml');
    fs.writeFileSync(
      file,
      'apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n' +
        '  selector: { app: web }\n  ports:\n    - port: 80\n',
    );
    const res = await cli('delete', '-f', file);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, 'service "web" deleted\n');
  });

  it('refuses to delete pods and nodes', async () => {
    const res = await cli('delete', 'node', 'alpha');
    assert.equal(res.code, 1);
    assert.match(res.stderr, /^error: nodes cannot be deleted/);
  });
});

describe('flotilla describe', () => {
  let api: FakeApi;
  const describeCli = (...args: string[]) =>
    runCli(['--data-dir', api.dataDir, 'describe', ...args]);

  before(async () => {
    api = await new FakeApi()
      .on(`GET ${DEPLOYMENTS}/web`, { status: 200, body: deployment() })
      .on(`GET ${SERVICES}/web`, { status: 200, body: service() })
      .on(`GET ${PODS}`, () => ({ status: 200, body: list(pods()) }))
      .on(`GET ${PODS}/web-7d4b9c-fghij`, { status: 200, body: pods()[1] })
      .on('GET /api/v1/nodes/alpha', { status: 200, body: nodes()[0] })
      .on('GET /api/v1/namespaces/default/events', { status: 200, body: list([portEvent()]) })
      .start();
  });
  after(() => api.stop());

  /** The event a node records when it cannot open a Service's port. */
  function portEvent() {
    return {
      kind: 'Event',
      apiVersion: 'v1',
      metadata: { name: 'web.1' },
      involvedObject: { kind: 'Service', name: 'web' },
      type: 'Warning',
      reason: 'FailedToListen',
      message: 'node alpha cannot listen on 10.0.0.1:80 (port http): EADDRINUSE; retrying',
      source: { component: 'flotilla-balancer', host: 'alpha' },
      lastTimestamp: new Date().toISOString(),
    };
  }

  it('shows a deployment with its replicas line, template, conditions and pods', async () => {
    const res = await describeCli('deployment', 'web');
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^Name: +web\n/);
    assert.match(res.stdout, /\nSelector: +app=web\n/);
    assert.match(
      res.stdout,
      /\nReplicas: +2 desired \| 2 updated \| 2 total \| 1 available \| 1 unavailable\n/,
    );
    assert.match(res.stdout, /\nRollingUpdateStrategy: +25% max unavailable, 25% max surge\n/);
    assert.match(res.stdout, /\n +Image: +nginx:1\.27\n/);
    assert.match(res.stdout, /\n +Available +True +MinimumReplicasAvailable\n/);
    assert.match(res.stdout, /\n +web-7d4b9c-fghij +0\/1 +CrashLoopBackOff/);
  });

  it('shows a pod with its container state and no events when the API has none', async () => {
    const res = await describeCli('pod/web-7d4b9c-fghij');
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /\nNode: +beta\/10\.0\.0\.1\n/);
    assert.match(res.stdout, /\n +State: +Waiting\n +Reason: +CrashLoopBackOff\n/);
    assert.match(res.stdout, /\n +Last State: +Terminated\n +Reason: +Error\n +Exit Code: +1\n/);
    assert.match(res.stdout, /\n +Restart Count: +4\n/);
    assert.match(res.stdout, /\nEvents: +<none>\n$/);
  });

  it('ends a deployment and a node with their events too', async () => {
    for (const args of [
      ['deployment', 'web'],
      ['node', 'alpha'],
    ]) {
      const res = await describeCli(...args);
      assert.match(res.stdout, /\nEvents: +<none>\n$/, args.join(' '));
    }
  });

  it('lists the ready pods behind a service as its endpoints', async () => {
    const res = await describeCli('svc', 'web');
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /\nNodePort: +http {2}31234\/TCP\n/);
    assert.match(res.stdout, /\nEndpoints: +10\.42\.0\.5:8080\n/);
    assert.match(res.stdout, /\nEvents:\n[^]*Warning +FailedToListen .*EADDRINUSE/);
  });

  it('shows a node with its capacity and its pods', async () => {
    const res = await describeCli('node', 'alpha');
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /\nRoles: +leader\n/);
    assert.match(res.stdout, /\nCapacity:\n {2}cpu: +4\n/);
    assert.match(res.stdout, /\n +web-7d4b9c-abcde +1\/1 +Running/);
    assert.doesNotMatch(res.stdout, /web-7d4b9c-fghij/);
  });

  it('reports a missing object as one error line', async () => {
    const res = await describeCli('deployment', 'ghost');
    assert.equal(res.code, 1);
    assert.equal(res.stdout, '');
    assert.match(res.stderr, /^error: [^\n]+\n$/);
  });
});

describe('flotilla version', () => {
  let api: FakeApi;

  before(async () => {
    api = await new FakeApi()
      .on('GET /version', { status: 200, body: { major: '0', minor: '1', gitVersion: 'v0.1.0' } })
      .start();
  });
  after(() => api.stop());

  it('prints the client and the server version', async () => {
    const res = await runCli(['--data-dir', api.dataDir, 'version']);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, 'Client Version: v0.1.0\nServer Version: v0.1.0\n');
  });

  it('prints only the client version with --client, without an agent', async () => {
    const res = await runCli(['--data-dir', '/nonexistent', 'version', '--client']);
    assert.equal(res.code, 0);
    assert.equal(res.stdout, 'Client Version: v0.1.0\n');
  });

  it('prints the client version and then fails when the agent is unreachable', async () => {
    const res = await runCli(['--data-dir', '/nonexistent', 'version']);
    assert.equal(res.code, 1);
    assert.equal(res.stdout, 'Client Version: v0.1.0\n');
    assert.match(res.stderr, /^error: cannot reach the flotilla agent/);
  });

  it('answers a server error with a one-line error and no stack', async () => {
    api.on('GET /version', status(503, 'ServiceUnavailable', 'no leader elected yet'));
    const res = await runCli(['--data-dir', api.dataDir, 'version']);
    assert.equal(res.code, 1);
    assert.equal(res.stderr, 'error: no leader elected yet\n');
  });
});
