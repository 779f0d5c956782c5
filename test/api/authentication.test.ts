/**
 * The admin API on an HTTPS listener: who gets in with what. Certificates
 * come from test/fixtures/pki; tokens are stored the way the token routes
 * store them.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { ApiServer } from '../../src/api/server';
import { newToken } from '../../src/auth/token-format';
import { deleteToken, saveToken, tokenRecord, type TokenRole } from '../../src/auth/tokens';
import { caHash } from '../../src/pki';
import { TestStore, deployment } from '../store/fixtures';

const FIXTURES = path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'pki');
const pem = (name: string) => fs.readFileSync(path.join(FIXTURES, name), 'utf8');
const HOST = '127.0.0.1';
const DEPLOYMENTS = '/apis/apps/v1/namespaces/default/deployments';

interface Reply {
  status: number;
  body: any;
  peerCn?: string;
}

describe('the admin API over HTTPS', () => {
  let t: TestStore;
  let server: ApiServer;
  let port: number;
  const ca = pem('ca.crt');
  const tokens: Record<string, string> = {};

  /** One request with a fresh connection, trusting the fixture CA. */
  function call(
    method: string,
    urlPath: string,
    opts: { token?: string; cert?: string; key?: string; body?: unknown } = {},
  ): Promise<Reply> {
    const text = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: HOST,
          port,
          method,
          path: urlPath,
          ca,
          agent: false,
          ...(opts.cert ? { cert: opts.cert, key: opts.key } : {}),
          headers: {
            ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
            ...(text ? { 'content-type': 'application/json' } : {}),
          },
        },
        (res) => {
          const peerCn = (res.socket as tls.TLSSocket).getPeerCertificate().subject?.CN;
          let raw = '';
          res.on('data', (c: Buffer) => (raw += c.toString()));
          res.on('end', () => {
            const body = raw.startsWith('{') ? JSON.parse(raw) : raw;
            resolve({ status: res.statusCode ?? 0, body, peerCn: String(peerCn) });
          });
        },
      );
      req.on('error', reject);
      req.end(text);
    });
  }

  function addToken(role: TokenRole, ttlMs?: number, now = new Date()): string {
    const token = newToken(caHash(ca));
    saveToken(t.store, tokenRecord(token.id, token.secret, role, { now, ttlMs }));
    return token.text;
  }

  before(async () => {
    t = new TestStore('flotilla-auth-');
    t.store.setMeta('ca_cert', ca);
    tokens.admin = addToken('admin');
    tokens.readOnly = addToken('read-only');
    tokens.join = addToken('join');
    tokens.expired = addToken('admin', 1000, new Date(Date.now() - 60_000));
    tokens.revoked = addToken('admin');
    deleteToken(t.store, tokens.revoked.split('.')[2]);
    server = new ApiServer({ store: t.store, log: t.log, logger: pino({ level: 'silent' }) });
    const material = { key: pem('node-a.key'), cert: pem('node-a.crt'), ca };
    port = await server.listenTcp(HOST, 0, material);
  });
  after(async () => {
    await server.close();
    t.close();
  });

  it('answers 401 without a token, and the health check to anyone', async () => {
    const reply = await call('GET', DEPLOYMENTS);
    assert.equal(reply.status, 401);
    assert.equal(reply.body.reason, 'Unauthorized');
    assert.equal((await call('GET', '/healthz')).status, 200);
    assert.equal((await call('GET', '/version')).status, 401);
  });

  it('refuses join, expired, revoked and made-up tokens with 401', async () => {
    const madeUp = newToken(caHash(ca)).text;
    for (const token of [tokens.join, tokens.expired, tokens.revoked, madeUp, 'garbage']) {
      const reply = await call('GET', DEPLOYMENTS, { token });
      assert.equal(reply.status, 401, `${token}: ${JSON.stringify(reply.body)}`);
    }
  });

  it('lets a read-only token read; its writes, backups and token lists get 403', async () => {
    assert.equal((await call('GET', DEPLOYMENTS, { token: tokens.readOnly })).status, 200);
    const write = await call('POST', DEPLOYMENTS, {
      token: tokens.readOnly,
      body: deployment('ro'),
    });
    assert.equal(write.status, 403);
    assert.equal(write.body.reason, 'Forbidden');
    const backup = await call('GET', '/apis/flotilla.io/v1/backup', { token: tokens.readOnly });
    assert.equal(backup.status, 403);
    assert.equal(t.store.get('Deployment', 'ro'), undefined);
  });

  it('lets an admin token write', async () => {
    const reply = await call('POST', DEPLOYMENTS, { token: tokens.admin, body: deployment('web') });
    assert.equal(reply.status, 201, JSON.stringify(reply.body));
    assert.ok(t.store.get('Deployment', 'web'));
  });

  it('takes a member certificate from the cluster CA as an admin, and no other', async () => {
    const member = { cert: pem('node-b.crt'), key: pem('node-b.key') };
    assert.equal((await call('GET', DEPLOYMENTS, member)).status, 200);
    const foreign = { cert: pem('other-node.crt'), key: pem('other-node.key') };
    assert.equal((await call('GET', DEPLOYMENTS, foreign)).status, 401);
  });

  it('does not speak plain HTTP on the TLS port', async () => {
    const answer = await fetch(`http://${HOST}:${port}/healthz`).then(
      (r) => r.status,
      () => 'refused',
    );
    assert.equal(answer, 'refused');
  });

  it('ends an open watch once its token is revoked', async () => {
    const token = addToken('read-only');
    const ended = new Promise<number>((resolve, reject) => {
      const req = https.request(
        {
          host: HOST,
          port,
          path: `${DEPLOYMENTS}?watch=1`,
          ca,
          agent: false,
          headers: { authorization: `Bearer ${token}` },
        },
        (res) => {
          assert.equal(res.statusCode, 200);
          const opened = Date.now();
          res.on('data', () => undefined);
          res.on('close', () => resolve(Date.now() - opened));
          setTimeout(() => deleteToken(t.store, token.split('.')[2]), 300);
        },
      );
      req.on('error', () => undefined);
      setTimeout(() => reject(new Error('the watch outlived its token by 10 s')), 10_000);
      req.end();
    });
    assert.ok((await ended) < 5000);
  });

  it('answers the health checks to anyone', async () => {
    for (const path of ['/healthz', '/livez', '/readyz']) {
      assert.equal((await call('GET', path)).status, 200, path);
    }
  });

  it('serves renewed material to new connections', async () => {
    assert.equal((await call('GET', '/healthz')).peerCn, 'node-a');
    server.updateTls({ key: pem('node-b.key'), cert: pem('node-b.crt'), ca });
    assert.equal((await call('GET', '/healthz')).peerCn, 'node-b');
  });
});
