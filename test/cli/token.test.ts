/**
 * `flotilla token create|list|revoke` and `flotilla kubeconfig` against the
 * fake API on the agent socket, and the kubeconfig checked by kubectl.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import YAML from 'yaml';
import { buildKubeconfig } from '../../src/cli/kubeconfig';
import { parseTtl } from '../../src/cli/token';
import { DAY, FakeApi, HOUR, MIN, ago, pki, runCli, status, tokenFor } from './fake-api';

const TOKENS = '/apis/flotilla.io/v1/tokens';
const INFO = '/apis/flotilla.io/v1/info';
const NEW_TOKEN = tokenFor('ca.crt', '0123456789ab');
const KUBECTL = '/usr/bin/kubectl';

function created(body: { role?: string; description?: string }, expires: string | null) {
  return {
    status: 201,
    body: {
      kind: 'Token',
      apiVersion: 'flotilla.io/v1',
      id: '0123456789ab',
      role: body.role ?? 'join',
      created: new Date().toISOString(),
      expires,
      description: body.description ?? '',
      token: NEW_TOKEN,
    },
  };
}

describe('parseTtl', () => {
  it('reads 90s, 15m, 24h, 7d and 0', () => {
    assert.deepEqual(
      ['90s', '15m', '24h', '7d', '0'].map((t) => parseTtl(t)),
      [90, 900, 86_400, 604_800, 0],
    );
  });

  it('refuses anything else in one line naming the flag', () => {
    for (const bad of ['', '1', '1w', '-5m', '1.5h', '5 m', 'h']) {
      assert.throws(() => parseTtl(bad), {
        message:
          'expected --ttl as a duration like 90s, 15m, 24h or 7d, or 0 for never; ' +
          `got "${bad}"`,
      });
    }
  });
});

describe('token and kubeconfig commands', () => {
  let api: FakeApi;
  let dir: string;
  const cli = (...args: string[]) =>
    runCli(['--data-dir', api.dataDir, ...args], {
      env: { FLOTILLA_CONFIG: path.join(dir, 'none.yaml') },
    });

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-token-test-'));
    const items = [
      { id: 'aaaaaaaaaaaa', role: 'join', created: ago(3 * DAY), expires: null, description: '' },
      {
        id: 'bbbbbbbbbbbb',
        role: 'read-only',
        created: ago(5 * MIN),
        // Half a minute to spare: the table shows minutes left, rounded down.
        expires: new Date(Date.now() + 2 * HOUR + 30 * MIN + 30_000).toISOString(),
        description: 'grafana',
      },
      {
        id: 'cccccccccccc',
        role: 'admin',
        created: ago(2 * DAY),
        expires: ago(DAY),
        description: 'old',
      },
    ];
    api = await new FakeApi()
      .on(`POST ${TOKENS}`, (req) => {
        const body = req.body as { role?: string; ttlSeconds?: number; description?: string };
        const expires = body.ttlSeconds ? new Date(Date.now() + body.ttlSeconds * 1000) : null;
        return created(body, expires && expires.toISOString());
      })
      .on(`GET ${TOKENS}`, {
        status: 200,
        body: { kind: 'TokenList', apiVersion: 'flotilla.io/v1', items },
      })
      .on(`DELETE ${TOKENS}/aaaaaaaaaaaa`, status(200, 'Success', 'deleted'))
      .on(`GET ${INFO}`, {
        status: 200,
        body: {
          nodeName: 'web1',
          clusterId: 'c1',
          server: 'https://127.0.0.1:7946',
          caCert: pki('ca.crt'),
        },
      })
      .start();
  });
  beforeEach(() => {
    api.requests.length = 0;
  });
  after(async () => {
    await api.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('token create prints the token alone on stdout and what it is on stderr', async () => {
    const flags = ['--role', 'admin', '--ttl', '24h', '--description', 'ci'];
    const res = await cli('token', 'create', ...flags);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, `${NEW_TOKEN}\n`);
    const expiry = /^token 0123456789ab created: role admin, expires \S+ \(in 2[34]h\)\n$/;
    assert.match(res.stderr, expiry);
    const body = { role: 'admin', ttlSeconds: 86_400, description: 'ci' };
    assert.deepEqual(api.writes()[0].body, body);
  });

  it('token create defaults to a join token and sends 0 for --ttl 0', async () => {
    const res = await cli('token', 'create', '--ttl', '0');
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stderr, 'token 0123456789ab created: role join, never expires\n');
    assert.deepEqual(api.writes()[0].body, { role: 'join', ttlSeconds: 0 });
  });

  it('token create refuses a bad --role or --ttl before sending anything', async () => {
    const role = await cli('token', 'create', '--role', 'root');
    assert.equal(role.code, 1);
    const roles = '"join", "admin", "read-only"';
    assert.equal(role.stderr, `error: expected --role to be one of ${roles}; got "root"\n`);
    const ttl = await cli('token', 'create', '--ttl', '3w');
    assert.match(ttl.stderr, /^error: expected --ttl as a duration like 90s.*got "3w"\n$/);
    assert.equal(api.writes().length, 0);
  });

  it('token list prints a table with ages, or the list as JSON or YAML', async () => {
    const res = await cli('token', 'list');
    assert.equal(res.code, 0, res.stderr);
    assert.equal(
      res.stdout,
      [
        'ID             ROLE        CREATED   EXPIRES   DESCRIPTION',
        'aaaaaaaaaaaa   join        3d        never     <none>',
        'bbbbbbbbbbbb   read-only   5m        in 150m   grafana',
        'cccccccccccc   admin       2d        expired   old',
        '',
      ].join('\n'),
    );
    const json = JSON.parse((await cli('token', 'list', '-o', 'json')).stdout);
    assert.equal(json.kind, 'TokenList');
    assert.equal(json.items.length, 3);
    const yaml = YAML.parse((await cli('token', 'list', '-o', 'yaml')).stdout);
    assert.equal(yaml.items[1].description, 'grafana');
    const bad = await cli('token', 'list', '-o', 'wide');
    assert.equal(bad.stderr, 'error: expected --output to be json or yaml, got "wide"\n');
  });

  it('token revoke deletes each token, going on after one that is unknown', async () => {
    const whole = NEW_TOKEN.replace('0123456789ab', 'aaaaaaaaaaaa');
    const res = await cli('token', 'revoke', 'aaaaaaaaaaaa', 'dddddddddddd', whole);
    assert.equal(res.code, 1);
    assert.equal(res.stdout, 'token aaaaaaaaaaaa revoked\ntoken aaaaaaaaaaaa revoked\n');
    assert.match(res.stderr, /^error: the server could not find DELETE .*dddddddddddd\n$/);
    assert.deepEqual(
      api.writes().map((r) => `${r.method} ${r.url}`),
      ['aaaaaaaaaaaa', 'dddddddddddd', 'aaaaaaaaaaaa'].map((id) => `DELETE ${TOKENS}/${id}`),
    );
    const bad = await cli('token', 'revoke', '../x');
    assert.match(bad.stderr, /^error: expected a token ID \(12 hex digits/);
  });

  it('kubeconfig makes a token for kubectl and trusts the cluster CA', async () => {
    const res = await cli('kubeconfig', '--role', 'read-only', '--ttl', '7d', '--name', 'prod');
    assert.equal(res.code, 0, res.stderr);
    const config = YAML.parse(res.stdout) as {
      clusters: { cluster: Record<string, string> }[];
      users: { user: { token?: string } }[];
    };
    assert.deepEqual(
      YAML.parse(res.stdout),
      buildKubeconfig('https://127.0.0.1:7946', 'prod', {
        caPem: pki('ca.crt'),
        token: NEW_TOKEN,
      }),
    );
    const cluster = config.clusters[0].cluster;
    const caData = Buffer.from(cluster['certificate-authority-data'], 'base64');
    assert.equal(caData.toString(), pki('ca.crt'));
    assert.equal(config.users[0].user.token, NEW_TOKEN);
    assert.deepEqual(api.writes()[0].body, {
      role: 'read-only',
      ttlSeconds: 604_800,
      description: 'kubeconfig prod',
    });
  });

  it('kubeconfig refuses the join role before creating anything', async () => {
    const res = await cli('kubeconfig', '--role', 'join');
    const expected = 'error: expected --role to be one of "admin", "read-only"; got "join"\n';
    assert.equal(res.stderr, expected);
    assert.equal(api.writes().length, 0);
  });

  const noKubectl = !fs.existsSync(KUBECTL) && 'no kubectl';
  it('kubectl reads the kubeconfig', { skip: noKubectl }, async () => {
    const res = await cli('kubeconfig');
    const file = path.join(dir, 'kubeconfig');
    fs.writeFileSync(file, res.stdout, { mode: 0o600 });
    const args = ['--kubeconfig', file, 'config', 'view', '--raw', '-o', 'json'];
    const view = spawnSync(KUBECTL, args, {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, HOME: dir },
    });
    assert.equal(view.status, 0, view.stderr);
    const seen = JSON.parse(view.stdout);
    assert.equal(seen['current-context'], 'flotilla');
    assert.equal(seen.clusters[0].cluster.server, 'https://127.0.0.1:7946');
    const ca = seen.clusters[0].cluster['certificate-authority-data'];
    assert.equal(Buffer.from(ca, 'base64').toString(), pki('ca.crt'));
    assert.equal(seen.users[0].user.token, NEW_TOKEN);
  });
});
