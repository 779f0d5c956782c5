/**
 * The single executable (dist/flotilla, from `npm run build:binary`) does the
 * same job as the compiled sources: a smoke subset of the AwesomeProduct test
 * run entirely through the binary, with no Node.js on PATH.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

const BINARY = path.resolve(__dirname, '..', '..', '..', 'dist', 'flotilla');
process.env.FLOTILLA_E2E_BIN = BINARY;
// The agent and CLI run with a PATH that has no Node.js on it, so anything
// that shelled out to `node` would fail.
process.env.FLOTILLA_E2E_PATH = (process.env.PATH ?? '')
  .split(':')
  .filter((dir) => dir && !fs.existsSync(path.join(dir, 'node')))
  .join(':');

import { ROOT, TestAgent, dockerAvailable, freeLoopbackAddress, httpGet, waitFor } from './harness';

const skip = !fs.existsSync(BINARY)
  ? 'dist/flotilla is missing: run npm run build:binary'
  : !dockerAvailable()
    ? 'no Docker engine on this machine'
    : false;

describe('the single executable runs the example end to end', { skip }, () => {
  const agent = new TestAgent(freeLoopbackAddress());

  before(() => agent.start());
  after(() => agent.cleanup());

  const podsJson = () => JSON.parse(agent.cli(['get', 'pods', '-o', 'json']).stdout).items as any[];
  const ready = () => podsJson().filter((p) => p.status.containerStatuses?.[0]?.ready).length;

  test('version runs from an empty directory without Node', () => {
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-bin-'));
    const env = { PATH: process.env.FLOTILLA_E2E_PATH };
    const r = spawnSync(BINARY, ['version', '--client'], { cwd, encoding: 'utf8', env });
    fs.rmSync(cwd, { recursive: true });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Client Version: v\d+\.\d+\.\d+/);
  });

  test('apply, serve, and keep the containers across a SIGKILL of the agent', async () => {
    const r = agent.cli(['apply', '-f', path.join(ROOT, 'examples', 'awesome-product.yaml')]);
    assert.equal(r.code, 0, r.stderr);
    await waitFor(
      () => ready() === 4,
      60_000,
      () => agent.logs().slice(-2000),
    );
    const svc = JSON.parse(agent.cli(['get', 'service', 'awesome-product', '-o', 'json']).stdout);
    const nodePort = (svc.items?.[0] ?? svc).spec.ports[0].nodePort;
    const hosts = new Set<string>();
    for (let i = 0; i < 12; i++) hosts.add(await httpGet(`http://${agent.address}:${nodePort}/`));
    assert.equal(hosts.size, 4);

    const ids = (await agent.containers(false)).map((c) => c.Id).sort();
    await agent.kill('SIGKILL');
    await agent.start();
    await waitFor(() => ready() === 4, 30_000);
    assert.deepEqual((await agent.containers(false)).map((c) => c.Id).sort(), ids);
  });

  test('delete -f removes what the file created', async () => {
    const r = agent.cli(['delete', '-f', path.join(ROOT, 'examples', 'awesome-product.yaml')]);
    assert.equal(r.code, 0, r.stderr);
    await waitFor(async () => (await agent.containers(true)).length === 0, 30_000);
  });
});
