import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import YAML from 'yaml';
import { FakeApi, runCli, status } from './fake-api';
import { deployment, list, nodes, pods, service } from './fixtures';

const PODS = '/api/v1/namespaces/default/pods';
const DEPLOYMENTS = '/apis/apps/v1/namespaces/default/deployments';
const SERVICES = '/api/v1/namespaces/default/services';
const web = deployment();

describe('flotilla get', () => {
  let api: FakeApi;
  const get = (...args: string[]) => runCli(['--data-dir', api.dataDir, 'get', ...args]);

  before(async () => {
    api = await new FakeApi()
      .on('GET /api/v1/nodes', { status: 200, body: list(nodes()) })
      .on(`GET ${PODS}`, () => ({ status: 200, body: list(pods()) }))
      .on(`GET ${DEPLOYMENTS}`, { status: 200, body: list([deployment()]) })
      .on(`GET ${DEPLOYMENTS}/web`, { status: 200, body: web })
      .on(`GET ${DEPLOYMENTS}/nope`, status(404, 'NotFound', 'deployments.apps "nope" not found'))
      .on(`GET ${SERVICES}`, { status: 200, body: list([service()]) })
      .start();
  });
  after(() => api.stop());

  it('prints nodes with their status, role, age and version', async () => {
    const res = await get('nodes');
    assert.equal(res.code, 0, res.stderr);
    assert.equal(
      res.stdout,
      'NAME    STATUS    ROLES    AGE    VERSION\n' +
        'alpha   Ready     leader   3d1h   v0.1.0\n' +
        'beta    Unknown   voter    3d1h   v0.1.0\n',
    );
  });

  it('adds the internal IP and the pod count per node with -o wide', async () => {
    const res = await get('no', '-o', 'wide');
    const lines = res.stdout.trimEnd().split('\n');
    assert.match(lines[0], /VERSION {3}INTERNAL-IP {3}PODS$/);
    assert.match(lines[1], /v0\.1\.0 {4}10\.0\.0\.1 {6}1$/);
  });

  it('shows waiting reasons and recent restarts in the pod table', async () => {
    const res = await get('po');
    assert.equal(
      res.stdout,
      'NAME               READY   STATUS             RESTARTS        AGE\n' +
        'web-7d4b9c-abcde   1/1     Running            0               130m\n' +
        'web-7d4b9c-fghij   0/1     CrashLoopBackOff   4 (5m30s ago)   130m\n',
    );
  });

  it('prints deployments as READY, UP-TO-DATE, AVAILABLE and AGE', async () => {
    const res = await get('deploy');
    assert.equal(
      res.stdout,
      'NAME   READY   UP-TO-DATE   AVAILABLE   AGE\n' +
        'web    1/2     2            1           2d3h\n',
    );
  });

  it('adds containers, images and selector to deployments with -o wide', async () => {
    const res = await get('deployments', '-o', 'wide');
    const [header, row] = res.stdout.trimEnd().split('\n');
    assert.match(header, /AGE {4}CONTAINERS {3}IMAGES {7}SELECTOR$/);
    assert.match(row, /web {10}nginx:1\.27 {3}app=web$/);
  });

  it('prints service ports with their node ports', async () => {
    const res = await get('svc');
    assert.equal(
      res.stdout,
      'NAME   TYPE       CLUSTER-IP   EXTERNAL-IP   PORT(S)        AGE\n' +
        'web    NodePort   10.43.0.10   <none>        80:31234/TCP   45m\n',
    );
  });

  it('prints one table per kind with qualified names for a comma list', async () => {
    const res = await get('deploy,svc');
    const blocks = res.stdout.split('\n\n');
    assert.equal(blocks.length, 2);
    assert.match(blocks[0], /^NAME {18}READY/);
    assert.match(blocks[0], /\ndeployment\.apps\/web {3}1\/2/);
    assert.match(blocks[1], /\nservice\/web {3}NodePort/);
  });

  it('prints a v1 List with kind and apiVersion on every item for -o json', async () => {
    const res = await get('deployments', '-o', 'json');
    const value = JSON.parse(res.stdout);
    assert.equal(value.kind, 'List');
    assert.equal(value.apiVersion, 'v1');
    assert.equal(value.items.length, 1);
    assert.equal(value.items[0].kind, 'Deployment');
    assert.equal(value.items[0].apiVersion, 'apps/v1');
    assert.equal(value.items[0].metadata.name, 'web');
  });

  it('prints the object itself for -o json when a name is given', async () => {
    const res = await get('deployment', 'web', '-o', 'json');
    assert.deepEqual(JSON.parse(res.stdout), web);
  });

  it('prints the same shapes in YAML for -o yaml', async () => {
    const res = await get('svc', '-o', 'yaml');
    const value = YAML.parse(res.stdout);
    assert.equal(value.kind, 'List');
    assert.equal(value.items[0].kind, 'Service');
    assert.equal(value.items[0].spec.ports[0].nodePort, 31234);
  });

  it('prints kind-qualified names for -o name', async () => {
    const res = await get('deploy,svc,po', '-o', 'name');
    assert.equal(
      res.stdout,
      'deployment.apps/web\nservice/web\npod/web-7d4b9c-abcde\npod/web-7d4b9c-fghij\n',
    );
  });

  it('accepts TYPE/NAME arguments', async () => {
    const res = await get('deployment.apps/web', '-o', 'name');
    assert.equal(res.stdout, 'deployment.apps/web\n');
  });

  it('sends the label selector to the server and filters the answer too', async () => {
    const res = await get('pods', '-l', 'app=db', '-o', 'name');
    assert.equal(res.code, 0);
    assert.equal(res.stdout, '');
    assert.ok(api.requests.some((r) => r.url === `${PODS}?labelSelector=app%3Ddb`));
    assert.equal(res.stderr, 'No resources found in default namespace.\n');
  });

  it('reports a missing object in one error line and exits 1', async () => {
    const res = await get('deploy', 'nope');
    assert.equal(res.code, 1);
    assert.equal(res.stdout, '');
    assert.equal(res.stderr, 'error: deployments.apps "nope" not found\n');
  });

  it('prints what it found and still fails when one of several names is missing', async () => {
    const res = await get('deploy', 'web', 'nope', '-o', 'name');
    assert.equal(res.code, 1);
    assert.equal(res.stdout, 'deployment.apps/web\n');
    assert.match(res.stderr, /^error: deployments\.apps "nope" not found\n$/);
  });

  it('rejects an unknown resource type without a stack trace', async () => {
    const res = await get('widgets');
    assert.equal(res.code, 1);
    assert.match(res.stderr, /^error: the server doesn't have a resource type "widgets"/);
    assert.doesNotMatch(res.stderr, /\n\s+at /);
  });

  it('accepts -o=json as kubectl users write it', async () => {
    const res = await get('svc', '-o=json');
    assert.equal(JSON.parse(res.stdout).kind, 'List');
  });

  it('rejects an unknown output format', async () => {
    const res = await get('pods', '-o', 'xml');
    assert.equal(res.code, 1);
    assert.match(res.stderr, /unknown output format "xml"/);
  });
});

describe('flotilla get without an agent', () => {
  it('says the agent is unreachable in one line and exits 1', async () => {
    const res = await runCli(['--data-dir', '/nonexistent/flotilla', 'get', 'pods']);
    assert.equal(res.code, 1);
    assert.equal(
      res.stderr,
      'error: cannot reach the flotilla agent at /nonexistent/flotilla/flotilla.sock: ' +
        'is it running with this --data-dir?\n',
    );
  });

  it('stops at the first kind instead of repeating the error for each', async () => {
    const res = await runCli(['--data-dir', '/nonexistent/flotilla', 'get', 'deploy,svc,po']);
    assert.equal(res.code, 1);
    assert.equal(res.stderr.split('\n').length, 2);
  });

  it('finds the data directory through FLOTILLA_DATA_DIR', async () => {
    const res = await runCli(['get', 'pods'], { env: { FLOTILLA_DATA_DIR: '/nonexistent/x' } });
    assert.match(res.stderr, /\/nonexistent\/x\/flotilla\.sock/);
  });
});
