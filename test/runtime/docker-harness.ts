import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, copyFileSync, chmodSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { readPullProgress } from '../../src/runtime/docker-streams';

/**
 * The machine's engine; tests never touch any other. The variable exists to
 * check that the suite skips cleanly when the engine does not answer.
 */
export const DOCKER_SOCKET = process.env.FLOTILLA_TEST_DOCKER_SOCKET ?? '/var/run/docker.sock';

/** A tiny image built from the host's static busybox, so tests need no registry. */
export const TEST_IMAGE = 'flotilla-runtime-test:1';

/** The label every test container carries so that after() finds them all. */
export const RUN_LABEL = 'io.flotilla.test-run';

const APPLETS = ['sh', 'sleep', 'echo', 'cat', 'true', 'false', 'env', 'hostname', 'kill'];

/** A fresh id that tags this test run's containers. */
export function newRunId(): string {
  return randomBytes(6).toString('hex');
}

/** True when the socket answers /_ping within a second. */
export function dockerAnswers(socketPath = DOCKER_SOCKET): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** A dockerode client for setting up and cleaning up behind the runtime's back. */
export function rawDocker(): Docker {
  return new Docker({ socketPath: DOCKER_SOCKET, host: undefined, protocol: 'http' });
}

/** Imports {@link TEST_IMAGE} from /bin/busybox unless it is already there. */
export async function ensureTestImage(docker: Docker): Promise<void> {
  try {
    await docker.getImage(TEST_IMAGE).inspect();
    return;
  } catch {
    // Not there yet: build it below.
  }
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-rootfs-'));
  try {
    const tarPath = buildRootfsTar(dir);
    const [repo, tag] = TEST_IMAGE.split(':');
    const stream = await docker.importImage(tarPath, { repo, tag });
    await readPullProgress(stream as AsyncIterable<Buffer>);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function buildRootfsTar(dir: string): string {
  const root = join(dir, 'rootfs');
  mkdirSync(join(root, 'bin'), { recursive: true });
  mkdirSync(join(root, 'tmp'));
  copyFileSync('/bin/busybox', join(root, 'bin', 'busybox'));
  chmodSync(join(root, 'bin', 'busybox'), 0o755);
  for (const applet of APPLETS) symlinkSync('busybox', join(root, 'bin', applet));

  const tarPath = join(dir, 'rootfs.tar');
  execFileSync('tar', ['-C', root, '-cf', tarPath, '.']);
  return tarPath;
}

/** Force-removes every container this run created, whatever state it is in. */
export async function removeRunContainers(docker: Docker, runId: string): Promise<void> {
  const leftovers = await docker.listContainers({
    all: true,
    filters: { label: [`${RUN_LABEL}=${runId}`] },
  });
  await Promise.all(
    leftovers.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)),
  );
}
