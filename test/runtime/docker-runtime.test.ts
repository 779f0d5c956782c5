import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type RequestListener, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { RuntimeError } from '../../src/errors';
import { DockerRuntime } from '../../src/runtime/docker-runtime';
import {
  DOCKER_SOCKET,
  dockerAnswers,
  ensureTestImage,
  newRunId,
  rawDocker,
  removeRunContainers,
  RUN_LABEL,
  TEST_IMAGE,
} from './docker-harness';
import { describeRuntimeContract, EXPECTED_OUTPUT } from './runtime-contract';

const NO_DOCKER = `the Docker socket ${DOCKER_SOCKET} does not answer`;

// Only the local registry: a pull must never leave this machine.
const UNPULLABLE = '127.0.0.1:5000/flotilla-runtime-test/does-not-exist:never';

describeRuntimeContract('DockerRuntime against the local engine', async () => {
  if (!(await dockerAnswers())) return NO_DOCKER;
  const docker = rawDocker();
  await ensureTestImage(docker);
  const runId = newRunId();
  const [first, second] = EXPECTED_OUTPUT;
  return {
    runtime: new DockerRuntime({ socketPath: DOCKER_SOCKET }),
    image: TEST_IMAGE,
    unpullableImage: UNPULLABLE,
    runLabels: { [RUN_LABEL]: runId },
    command: ['/bin/sh', '-c', `echo ${first}; echo ${second} >&2; exec sleep 300`],
    afterStart: () => undefined,
    removeExternally: async (id) => {
      await docker.getContainer(id).remove({ force: true });
    },
    kill: async (id) => {
      await docker.getContainer(id).kill({ signal: 'SIGKILL' });
    },
    cleanup: () => removeRunContainers(docker, runId),
  };
});

describe('DockerRuntime', () => {
  const runId = newRunId();
  const docker = rawDocker();
  let available = false;
  let tempDir = '';

  before(async () => {
    tempDir = mkdtempSync(join(tmpdir(), 'flotilla-docker-runtime-'));
    available = await dockerAnswers();
    if (available) await ensureTestImage(docker);
  });
  after(async () => {
    if (available) await removeRunContainers(docker, runId);
    rmSync(tempDir, { recursive: true, force: true });
  });

  function needDocker(t: TestContext): boolean {
    if (!available) t.skip(NO_DOCKER);
    return available;
  }

  it('creates containers with an init, no restart policy and the default bridge', async (t) => {
    if (!needDocker(t)) return;
    const runtime = new DockerRuntime({ socketPath: DOCKER_SOCKET });
    const id = await runtime.createContainer({
      name: `flotilla-runtime-spec-${runId}`,
      image: TEST_IMAGE,
      labels: { [RUN_LABEL]: runId },
      env: ['A=1', 'B=two words'],
      command: ['/bin/sleep'],
      args: ['300'],
      workingDir: '/tmp',
      hostname: 'web-0',
      memoryBytes: 64 * 1024 * 1024,
      nanoCpus: 500_000_000,
      extraHosts: ['peer.local:10.0.0.9'],
    });

    const raw = await docker.getContainer(id).inspect();
    assert.equal(raw.HostConfig.Init, true);
    assert.equal(raw.HostConfig.RestartPolicy?.Name, 'no');
    assert.equal(raw.HostConfig.NetworkMode, 'bridge');
    assert.equal(raw.HostConfig.Memory, 64 * 1024 * 1024);
    assert.equal(raw.HostConfig.NanoCpus, 500_000_000);
    assert.deepEqual(raw.HostConfig.ExtraHosts, ['peer.local:10.0.0.9']);
    assert.deepEqual(raw.Config.Entrypoint, ['/bin/sleep']);
    assert.deepEqual(raw.Config.Cmd, ['300']);
    assert.ok(raw.Config.Env.includes('B=two words'));
    assert.equal(raw.Config.WorkingDir, '/tmp');
    assert.equal(raw.Config.Hostname, 'web-0');
  });

  it('fails a pull of a malformed reference with InvalidImageName', async (t) => {
    if (!needDocker(t)) return;
    const runtime = new DockerRuntime({ socketPath: DOCKER_SOCKET });
    await assert.rejects(runtime.pullImage('127.0.0.1:5000/Not-Lower-Case:1'), {
      reason: 'InvalidImageName',
    });
  });

  it('rejects a pull with the abort reason when its signal is already aborted', async (t) => {
    if (!needDocker(t)) return;
    const abort = new AbortController();
    abort.abort(new Error('pod deleted'));
    const runtime = new DockerRuntime({ socketPath: DOCKER_SOCKET });
    await assert.rejects(runtime.pullImage(UNPULLABLE, abort.signal), /pod deleted/);
  });

  it('reports RuntimeUnavailable when nothing listens on the socket', async () => {
    const runtime = new DockerRuntime({ socketPath: join(tempDir, 'absent.sock') });
    for (const call of [
      () => runtime.ping(),
      () => runtime.pullImage('x:1'),
      () => runtime.createContainer({ name: 'x', image: 'x:1', labels: {}, env: [] }),
      () => runtime.stopContainer('x', 1),
      () => runtime.listContainers({}),
    ]) {
      const err = await call().then(
        () => assert.fail('expected a failure'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof RuntimeError);
      assert.equal(err.reason, 'RuntimeUnavailable');
      assert.equal(err.status, 502);
      assert.ok(err.cause, 'the transport error is kept as cause');
    }
  });

  it('ignores DOCKER_HOST and talks to its socket only', async (t) => {
    if (!needDocker(t)) return;
    const saved = process.env.DOCKER_HOST;
    process.env.DOCKER_HOST = 'tcp://127.0.0.1:9';
    try {
      await new DockerRuntime({ socketPath: DOCKER_SOCKET }).ping();
    } finally {
      if (saved === undefined) delete process.env.DOCKER_HOST;
      else process.env.DOCKER_HOST = saved;
    }
  });

  it('works when the optional ssh2 and cpu-features natives cannot load', async (t) => {
    if (!needDocker(t)) return;
    const block = join(tempDir, 'block-natives.js');
    writeFileSync(block, BLOCK_NATIVES);
    const modulePath = JSON.stringify(require.resolve('../../src/runtime/docker-runtime'));
    const script = `const { DockerRuntime } = require(${modulePath});
      new DockerRuntime({ socketPath: ${JSON.stringify(DOCKER_SOCKET)} })
        .ping().then(() => console.log('pong'));`;
    const output = await run(process.execPath, ['--require', block, '-e', script]);
    assert.match(output, /blocked cpu-features/);
    assert.match(output, /pong/);
  });
});

describe('DockerRuntime pulls against a scripted engine', () => {
  let dir = '';
  const servers: Server[] = [];
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'flotilla-pull-'));
  });
  after(async () => {
    for (const server of servers) {
      server.closeAllConnections();
      server.close();
    }
    rmSync(dir, { recursive: true, force: true });
  });

  async function serve(handler: RequestListener): Promise<DockerRuntime> {
    const socketPath = join(dir, `engine-${Math.random().toString(16).slice(2)}.sock`);
    const server = createServer(handler);
    servers.push(server);
    server.listen(socketPath);
    await once(server, 'listening');
    return new DockerRuntime({ socketPath });
  }

  it('turns an error record in the progress stream into ErrImagePull', async () => {
    const runtime = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write('{"status":"Pulling from app","id":"1"}\n');
      res.end('{"errorDetail":{"message":"unexpected EOF"},"error":"unexpected EOF"}\n');
    });
    await assert.rejects(runtime.pullImage('app:1'), (err: unknown) => {
      assert.ok(err instanceof RuntimeError);
      assert.equal(err.reason, 'ErrImagePull');
      assert.equal(err.message, 'pull app:1: unexpected EOF');
      return true;
    });
  });

  it('asks for the latest tag when the reference has none', async () => {
    let url = '';
    const runtime = await serve((req, res) => {
      url = req.url ?? '';
      res.writeHead(200).end('{"status":"Downloaded newer image"}\n');
    });
    await runtime.pullImage('app');
    const query = new URL(url, 'http://socket').searchParams;
    assert.equal(query.get('fromImage'), 'app');
    assert.equal(query.get('tag'), 'latest');
  });

  it('aborts a pull in progress and closes its connection', async () => {
    let connectionClosed: Promise<unknown> | undefined;
    let markRequested!: () => void;
    const requested = new Promise<void>((resolve) => (markRequested = resolve));
    const runtime = await serve((req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write('{"status":"Downloading","id":"1"}\n');
      // The client's abort resets the socket: wait for close, not for once()
      // which would reject on the reset.
      connectionClosed = new Promise((resolve) => req.socket.once('close', resolve));
      markRequested();
    });

    const abort = new AbortController();
    const outcome = assert.rejects(runtime.pullImage('app:1', abort.signal), /pod deleted/);
    await requested;
    abort.abort(new Error('pod deleted'));
    await outcome;
    await connectionClosed;
  });
});

// Loaded before the runtime in a child process: makes every native addon and
// cpu-features fail to load, as in a bundle that leaves them out.
const BLOCK_NATIVES = `
const Module = require('module');
const load = Module._load;
Module._load = function (request, ...rest) {
  if (request === 'cpu-features' || request.endsWith('.node')) {
    console.log('blocked ' + request);
    throw new Error('native module blocked: ' + request);
  }
  return load.call(this, request, ...rest);
};
`;

function run(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 20_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}
