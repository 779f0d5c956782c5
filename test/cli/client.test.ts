import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApiClient } from '../../src/api/client';
import { AgentRequestError, AgentUnreachableError, ApiError } from '../../src/errors';
import { FakeApi, status } from './fake-api';

describe('ApiClient over the agent socket', () => {
  let api: FakeApi;
  let client: ApiClient;

  before(async () => {
    const causes = [{ field: 'spec.replicas', message: 'must be >= 0' }];
    api = await new FakeApi()
      .on('GET /ok', { status: 200, body: { hello: 'world' } })
      .on('POST /echo', (req) => ({ status: 201, body: req.body }))
      .on('PUT /bad', status(422, 'Invalid', 'Deployment "web" is invalid', causes))
      .on('GET /plain', { status: 500 })
      .start();
    client = new ApiClient({ socketPath: path.join(api.dataDir, 'flotilla.sock') });
  });
  after(() => api.stop());

  it('resolves with the parsed JSON body', async () => {
    assert.deepEqual(await client.request('GET', '/ok'), { hello: 'world' });
  });

  it('sends a JSON body with its content type', async () => {
    assert.deepEqual(await client.request('POST', '/echo', { a: 1 }), { a: 1 });
    const sent = api.requests.find((r) => r.url === '/echo');
    assert.equal(sent?.headers['content-type'], 'application/json');
  });

  it('turns a Status answer into an ApiError with reason, code and causes', async () => {
    await assert.rejects(client.request('PUT', '/bad', {}), (err: unknown) => {
      assert.ok(err instanceof ApiError);
      assert.equal(err.code, 'Invalid');
      assert.equal(err.reason, 'Invalid');
      assert.equal(err.status, 422);
      assert.equal(err.message, 'Deployment "web" is invalid');
      assert.deepEqual(err.causes, [{ field: 'spec.replicas', message: 'must be >= 0' }]);
      return true;
    });
  });

  it('names the reason from the HTTP status when the body is not a Status', async () => {
    await assert.rejects(client.request('GET', '/plain'), {
      code: 'InternalError',
      status: 500,
      message: 'the server answered HTTP 500',
    });
  });
});

describe('ApiClient without an agent', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-client-test-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reports a missing socket as AgentUnreachableError', async () => {
    const client = new ApiClient({ socketPath: path.join(dir, 'missing.sock') });
    await assert.rejects(client.request('GET', '/version'), AgentUnreachableError);
  });

  it('reports a socket nobody listens on as AgentUnreachableError', async () => {
    const stale = path.join(dir, 'stale.sock');
    fs.writeFileSync(stale, '');
    const client = new ApiClient({ socketPath: stale });
    await assert.rejects(client.request('GET', '/version'), { code: 'AgentUnreachable' });
  });
});

describe('ApiClient with a slow agent', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-client-test-'));
  const socketPath = path.join(dir, 'slow.sock');
  // Never answers, so only the client's timeout can end the request.
  const server = http.createServer(() => undefined);

  before(() => new Promise<void>((resolve) => server.listen(socketPath, resolve)));
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('gives up after its timeout with AgentRequestError', async () => {
    const client = new ApiClient({ socketPath, timeoutMs: 50 });
    await assert.rejects(client.request('GET', '/version'), AgentRequestError);
  });
});
