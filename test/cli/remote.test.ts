/**
 * The CLI as a remote client: where requests go (flags, environment, config
 * file, socket), the config file's checks, login and logout, and the
 * `--token` that `agent` and `install` keep as their join token.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { resolveTarget } from '../../src/cli/context';
import type { GlobalOptions } from '../../src/cli/context';
import { parseConfig } from '../../src/cli/config-file';
import { buildProgram, joinTokenOf } from '../../src/cli/program';
import { FakeApi, pki, runCli, status, tokenFor } from './fake-api';

const TOKEN = tokenFor('ca.crt');
const OTHER = tokenFor('ca.crt', 'ffffffffffff');
const VERSION = { gitVersion: 'v0.1.0' };

describe('resolveTarget', () => {
  const file = '/home/u/.config/flotilla/config.yaml';
  const saved = { server: 'https://10.0.0.9:7946', token: OTHER, caCert: pki('ca.crt') };
  const withConfig = () => ({ file, config: saved });
  const noConfig = () => ({ file });
  const base: GlobalOptions = { dataDir: '/var/lib/flotilla', sources: { dataDir: 'default' } };

  it('takes the socket of --data-dir when nothing names a server', () => {
    assert.deepEqual(resolveTarget(base, noConfig), {
      socketPath: '/var/lib/flotilla/flotilla.sock',
    });
  });

  it('takes the config file over the socket, with its pinned CA', () => {
    assert.deepEqual(resolveTarget(base, withConfig), {
      server: saved.server,
      token: OTHER,
      caPem: saved.caCert,
    });
  });

  it('takes flags and environment (already merged by commander) over the config file', () => {
    const opts = { ...base, server: 'https://127.0.0.2:1', token: TOKEN };
    assert.deepEqual(
      resolveTarget(opts, () => assert.fail('config read')),
      {
        server: 'https://127.0.0.2:1',
        token: TOKEN,
        caPem: undefined,
      },
    );
  });

  it('fills what flags leave out from the config file, with its CA for a token of that CA', () => {
    const opts = { ...base, server: 'https://127.0.0.2:1' };
    assert.deepEqual(resolveTarget(opts, withConfig), {
      server: 'https://127.0.0.2:1',
      token: OTHER,
      caPem: saved.caCert,
    });
    const other = { ...base, token: tokenFor('other-ca.crt') };
    assert.equal((resolveTarget(other, withConfig) as { caPem?: string }).caPem, undefined);
  });

  it('keeps the socket when --data-dir or FLOTILLA_DATA_DIR is given', () => {
    for (const source of ['cli', 'env']) {
      const opts = { ...base, dataDir: '/srv/f', sources: { dataDir: source } };
      assert.deepEqual(resolveTarget(opts, withConfig), { socketPath: '/srv/f/flotilla.sock' });
    }
  });

  it('refuses --token without any server, and a malformed token naming its source', () => {
    const opts = { ...base, token: TOKEN, sources: { ...base.sources, token: 'cli' } };
    assert.throws(() => resolveTarget(opts, noConfig), /^InvalidError: --token needs --server/);
    const env = { ...base, token: 'nope', sources: { token: 'env' } };
    assert.throws(() => resolveTarget(env, noConfig), /^InvalidError: FLOTILLA_API_TOKEN is not/);
  });
});

describe('the config file', () => {
  const file = '/cfg/config.yaml';

  it('reads server, token and caCert', () => {
    const text = `server: https://10.0.0.5:7946\ntoken: ${TOKEN}\n`;
    assert.deepEqual(parseConfig(text, file), { server: 'https://10.0.0.5:7946', token: TOKEN });
    assert.deepEqual(parseConfig('', file), {});
  });

  it('names the file and the key of a problem', () => {
    assert.throws(() => parseConfig('server: x\ntokn: y\n', file), {
      message: '/cfg/config.yaml: unknown key "tokn" (expected server, token or caCert)',
    });
    assert.throws(
      () => parseConfig('server: [1\n', file),
      /^InvalidError: \/cfg\/config\.yaml:2:1: not valid YAML: Flow sequence in block/,
    );
    assert.throws(() => parseConfig('- a\n', file), /\/cfg\/config\.yaml: expected a mapping/);
    assert.throws(() => parseConfig('server: 5\n', file), {
      message: '/cfg/config.yaml: server: expected a non-empty string',
    });
    assert.throws(
      () => parseConfig('token: abc\n', file),
      /^InvalidError: \/cfg\/config\.yaml: token is not a Flotilla token/,
    );
    assert.throws(() => parseConfig('caCert: abc\n', file), {
      message: '/cfg/config.yaml: caCert: expected a PEM certificate',
    });
  });
});

describe('the compiled CLI against a socket and an HTTPS agent', () => {
  let local: FakeApi;
  let remote: FakeApi;
  let home: string;
  let config: string;
  const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    runCli(args, {
      env: {
        FLOTILLA_CONFIG: config,
        FLOTILLA_DATA_DIR: '',
        FLOTILLA_SERVER: '',
        FLOTILLA_API_TOKEN: '',
        FLOTILLA_TOKEN: '',
        ...env,
      },
    });
  const seenBy = () => ({ local: local.requests.length, remote: remote.requests.length });

  before(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-remote-test-'));
    config = path.join(home, 'cfg', 'flotilla', 'config.yaml');
    local = await new FakeApi().on('GET /version', { status: 200, body: VERSION }).start();
    remote = await new FakeApi()
      .on('GET /version', (req) =>
        req.headers.authorization === `Bearer ${TOKEN}`
          ? { status: 200, body: VERSION }
          : status(401, 'Unauthorized', 'unknown token'),
      )
      .startHttps();
  });
  beforeEach(() => {
    local.requests.length = 0;
    remote.requests.length = 0;
    fs.rmSync(path.join(home, 'cfg'), { recursive: true, force: true });
  });
  after(async () => {
    await local.stop();
    await remote.stop();
    fs.rmSync(home, { recursive: true, force: true });
  });

  it('goes to --server with --token, the token as a bearer', async () => {
    const res = await cli(['version', '--server', remote.url, '--token', TOKEN]);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, 'Client Version: v0.1.0\nServer Version: v0.1.0\n');
    assert.deepEqual(seenBy(), { local: 0, remote: 1 });
    assert.equal(remote.requests[0].headers.authorization, `Bearer ${TOKEN}`);
  });

  it('takes FLOTILLA_SERVER and FLOTILLA_API_TOKEN, flags winning over them', async () => {
    const env = { FLOTILLA_SERVER: remote.url, FLOTILLA_API_TOKEN: TOKEN };
    assert.equal((await cli(['version'], env)).code, 0);
    const res = await cli(['version', '--token', OTHER], env);
    assert.equal(res.code, 1);
    assert.equal(res.stderr, 'error: the server refused the token: unknown token\n');
    assert.deepEqual(seenBy(), { local: 0, remote: 2 });
  });

  it('login saves server, token and CA (0600, dir 0700), logout removes them', async () => {
    const res = await cli(['login', '--server', remote.url, '--token', TOKEN]);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, `logged in to ${remote.url} (server v0.1.0); saved to ${config}\n`);
    assert.equal(fs.statSync(config).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.dirname(config)).mode & 0o777, 0o700);
    const saved = parseConfig(fs.readFileSync(config, 'utf8'), config);
    assert.deepEqual(saved, { server: remote.url, token: TOKEN, caCert: pki('ca.crt') });

    // The saved file now sends plain `flotilla version` to the remote agent, ...
    assert.equal((await cli(['version'])).code, 0);
    assert.deepEqual(seenBy(), { local: 0, remote: 2 });
    // ... but --data-dir keeps an admin on the socket.
    assert.equal((await cli(['version', '--data-dir', local.dataDir])).code, 0);
    assert.equal((await cli(['version'], { FLOTILLA_DATA_DIR: local.dataDir })).code, 0);
    assert.deepEqual(seenBy(), { local: 2, remote: 2 });

    const out = await cli(['logout']);
    assert.equal(out.stdout, `removed ${config}\n`);
    assert.ok(!fs.existsSync(config));
  });

  it('login saves nothing when the token is refused', async () => {
    const res = await cli(['login', '--server', remote.url, '--token', OTHER]);
    assert.equal(res.code, 1);
    assert.equal(res.stderr, 'error: the server refused the token: unknown token\n');
    assert.ok(!fs.existsSync(config));
    const missing = await cli(['login', '--server', remote.url]);
    assert.equal(missing.stderr, 'error: login needs --server URL and --token TOKEN\n');
  });

  it('names the config file and the key in its errors', async () => {
    fs.mkdirSync(path.dirname(config), { recursive: true });
    fs.writeFileSync(config, `server: ${remote.url}\nsever: x\n`);
    const res = await cli(['get', 'pods']);
    assert.equal(res.code, 1);
    const expected = `error: ${config}: unknown key "sever" (expected server, token or caCert)\n`;
    assert.equal(res.stderr, expected);
    fs.writeFileSync(config, 'server: "https://x\n');
    const invalid = new RegExp(`^error: ${config}:2:1: not valid YAML: Missing closing "quote\n$`);
    assert.match((await cli(['get', 'pods'])).stderr, invalid);
    // Explicit flags do not need the file at all.
    assert.equal((await cli(['version', '--server', remote.url, '--token', TOKEN])).code, 0);
  });

  it('keeps --token as the join token of install (and agent), not FLOTILLA_API_TOKEN', async () => {
    const args = ['install', '--dry-run', '--binary', '/tmp/f', '--join', '10.0.0.5:7946'];
    const typed = await cli([...args, '--token', 'joinsecret'], { FLOTILLA_API_TOKEN: TOKEN });
    assert.equal(typed.code, 0, typed.stderr);
    assert.match(typed.stdout, /flotilla\.env/);
    const fromEnv = await cli(args, { FLOTILLA_API_TOKEN: TOKEN });
    assert.equal(fromEnv.code, 1);
    assert.match(fromEnv.stderr, /expected --join and --token together/);
  });
});

describe('--token on the program and on agent', () => {
  async function joinToken(argv: string[], env: Record<string, string> = {}): Promise<unknown> {
    const saved = { ...process.env };
    Object.assign(process.env, { FLOTILLA_TOKEN: '', FLOTILLA_API_TOKEN: '' }, env);
    for (const [k, v] of Object.entries(process.env)) if (v === '') delete process.env[k];
    try {
      const program = buildProgram().exitOverride();
      let seen: unknown = 'not run';
      const agent = program.commands.find((c) => c.name() === 'agent')!;
      agent.action((flags: { token?: string }, cmd) => {
        seen = joinTokenOf(cmd, flags.token);
      });
      await program.parseAsync(argv, { from: 'user' });
      return seen;
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  }

  it('is the join token wherever it stands, and FLOTILLA_TOKEN otherwise', async () => {
    // Commander hands a name both define to the program, even after the subcommand.
    assert.equal(await joinToken(['agent', '--token', 'T1']), 'T1');
    assert.equal(await joinToken(['--token', 'T2', 'agent']), 'T2');
    assert.equal(await joinToken(['agent'], { FLOTILLA_TOKEN: 'J' }), 'J');
    assert.equal(await joinToken(['agent', '--token', 'T3'], { FLOTILLA_TOKEN: 'J' }), 'T3');
    assert.equal(await joinToken(['agent'], { FLOTILLA_API_TOKEN: 'A' }), undefined);
  });
});
