/**
 * The API client against HTTPS servers built from the test PKI: the CA is
 * pinned from the token before the token is sent, and a server that cannot
 * prove it holds a certificate from that CA never sees the token.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { ApiClient } from '../../src/api/client';
import { FakeApi, pki, status, tlsChain, tokenFor } from '../cli/fake-api';

const TOKEN = tokenFor('ca.crt');
const OTHER_TOKEN = tokenFor('other-ca.crt');
const VERSION = { gitVersion: 'v0.1.0' };
const DEPLOYMENTS = '/apis/apps/v1/namespaces/default/deployments';

// Drops kept-alive connections and gives the client time to see them close, so that its
// next request opens a new connection rather than reusing a dead one.
async function closeIdle(api: FakeApi): Promise<void> {
  api.closeIdle();
  await new Promise((resolve) => setTimeout(resolve, 100));
}

function authorizations(api: FakeApi): (string | undefined)[] {
  return api.requests.map((r) => r.headers.authorization);
}

describe('ApiClient over HTTPS with a pinned CA', () => {
  let api: FakeApi;

  before(async () => {
    api = await new FakeApi()
      .on('GET /version', (req) =>
        req.headers.authorization === `Bearer ${TOKEN}`
          ? { status: 200, body: VERSION }
          : status(401, 'Unauthorized', 'Unauthorized'),
      )
      .on(`POST ${DEPLOYMENTS}`, status(403, 'Forbidden', 'read-only'))
      .on('GET /bad', status(401, 'Unauthorized', 'token expired'))
      .startHttps();
  });
  beforeEach(() => {
    api.requests.length = 0;
  });
  after(() => api.stop());

  it('pins the CA whose hash the token carries and sends the token as a bearer', async () => {
    const client = new ApiClient({ server: api.url, token: TOKEN });
    assert.deepEqual(await client.request('GET', '/version'), VERSION);
    assert.deepEqual(authorizations(api), [`Bearer ${TOKEN}`]);
    assert.equal(await client.pinnedCa(), pki('ca.crt').replace(/\r/g, ''));
  });

  it('refuses a server that does not present the CA the token pins, sending nothing', async () => {
    const client = new ApiClient({ server: api.url, token: OTHER_TOKEN });
    await assert.rejects(client.request('GET', '/version'), {
      code: 'AgentRequestFailed',
      message: `the server at ${api.url} does not present the CA this token pins`,
    });
    assert.deepEqual(api.requests, []);
  });

  it('keeps the pinned CA: a second request pins nothing again', async () => {
    const client = new ApiClient({ server: api.url, token: TOKEN });
    await client.request('GET', '/version');
    // Without its CA in the chain the server could not be pinned again, yet stays verifiable.
    (api as unknown as { server: import('node:tls').Server }).server.setSecureContext(
      tlsChain('node-a'),
    );
    await closeIdle(api);
    try {
      assert.deepEqual(await client.request('GET', '/version'), VERSION);
      const fresh = new ApiClient({ server: api.url, token: TOKEN });
      await assert.rejects(fresh.request('GET', '/version'), /does not present the CA/);
    } finally {
      (api as unknown as { server: import('node:tls').Server }).server.setSecureContext(
        tlsChain('node-a', 'ca'),
      );
      await closeIdle(api);
    }
  });

  it('uses a CA it is given without pinning', async () => {
    const client = new ApiClient({ server: api.url, token: TOKEN, caPem: pki('ca.crt') });
    assert.deepEqual(await client.request('GET', '/version'), VERSION);
  });

  it('explains a refused token (401) and a refused role (403)', async () => {
    const client = new ApiClient({ server: api.url, token: TOKEN });
    await assert.rejects(client.request('GET', '/bad'), {
      code: 'Unauthorized',
      status: 401,
      message: 'the server refused the token: token expired',
    });
    const write = client.request('POST', DEPLOYMENTS, {});
    await assert.rejects(write, {
      code: 'Forbidden',
      status: 403,
      message: "the token's role does not allow this: read-only",
    });
  });

  it('says a server without a token wants one, trusting only the system roots', async () => {
    const client = new ApiClient({ server: api.url, caPem: pki('ca.crt') });
    await assert.rejects(client.request('GET', '/version'), /wants a token: pass --token/);
    const roots = new ApiClient({ server: api.url });
    await assert.rejects(roots.request('GET', '/version'), {
      code: 'AgentRequestFailed',
      message: /^TLS with https:.* failed: self-signed certificate in certificate chain$/,
    });
  });

  it('refuses a token over plain http, and plain http off the machine', () => {
    const url = api.url.replace('https:', 'http:');
    assert.throws(() => new ApiClient({ server: url, token: TOKEN }), /over plain http/);
    assert.throws(() => new ApiClient({ server: 'http://10.0.0.5:7946' }), /plain http/);
    assert.doesNotThrow(() => new ApiClient({ server: 'http://127.0.0.1:8001' }));
  });

  it('refuses a malformed token before connecting', () => {
    assert.throws(() => new ApiClient({ server: api.url, token: 'abc' }), {
      code: 'Invalid',
      message: /^the API token is not a Flotilla token/,
    });
  });
});

describe('ApiClient against servers that must not get the token', () => {
  it('refuses a certificate from another CA, even with the right CA in the chain', async () => {
    // The CA certificate is public: anyone can present it; only a leaf it signed proves anything.
    const chain = tlsChain('other-node', 'ca');
    const api = await new FakeApi()
      .on('GET /version', { status: 200, body: VERSION })
      .startHttps(chain);
    try {
      const client = new ApiClient({ server: api.url, token: TOKEN });
      await assert.rejects(client.request('GET', '/version'), {
        code: 'AgentRequestFailed',
        message: `the server at ${api.url} does not present the CA this token pins`,
      });
      assert.deepEqual(api.requests, []);
    } finally {
      await api.stop();
    }
  });

  it('pins the CA, then refuses a certificate that does not name the address', async () => {
    // node-a's SANs are 127.0.0.1 to 127.0.0.5; all of 127/8 is loopback on Linux.
    const api = await new FakeApi()
      .on('GET /version', { status: 200, body: VERSION })
      .startHttps(undefined, '127.0.0.6');
    try {
      const client = new ApiClient({ server: api.url, token: TOKEN });
      await assert.rejects(client.request('GET', '/version'), /TLS with .* failed: .*127\.0\.0\.6/);
      assert.deepEqual(api.requests, []);
    } finally {
      await api.stop();
    }
  });

  it('reaches the right server by name and over IPv6', async () => {
    for (const host of ['localhost', '::1']) {
      const api = await new FakeApi()
        .on('GET /version', { status: 200, body: VERSION })
        .startHttps(undefined, host === 'localhost' ? '127.0.0.1' : host);
      try {
        const url = host === 'localhost' ? api.url.replace('127.0.0.1', 'localhost') : api.url;
        const client = new ApiClient({ server: url, token: TOKEN });
        assert.deepEqual(await client.request('GET', '/version'), VERSION);
      } finally {
        await api.stop();
      }
    }
  });

  it('names the server when nobody listens there', async () => {
    const client = new ApiClient({ server: 'https://127.0.0.1:1', token: TOKEN });
    await assert.rejects(client.request('GET', '/version'), {
      message: 'cannot reach the flotilla agent at https://127.0.0.1:1: ECONNREFUSED',
    });
  });
});
