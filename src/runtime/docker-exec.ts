/**
 * Runs exec probes inside containers through the Docker Engine API, on the
 * same unix socket the DockerRuntime uses. Kept apart from the runtime
 * because only probes need it.
 */
import Docker from 'dockerode';
import { DEFAULT_DOCKER_SOCKET } from './docker-runtime';
import { createLogDemuxer } from './docker-streams';
import type { ExecInContainer } from './probes';

const MAX_OUTPUT_BYTES = 4096;

/** An ExecInContainer backed by the engine at `socketPath`. */
export function dockerExec(socketPath = DEFAULT_DOCKER_SOCKET): ExecInContainer {
  const docker = new Docker({ socketPath });
  return async (containerId, command, timeoutMs) => {
    const exec = await docker.getContainer(containerId).exec({
      Cmd: command,
      AttachStdout: true,
      AttachStderr: true,
    });
    const stream = (await exec.start({ hijack: true, stdin: false })) as NodeJS.ReadableStream & {
      destroy(): void;
    };
    const output = await readWithin(stream, timeoutMs);
    if (output === undefined) {
      return { exitCode: -1, output: `command timed out after ${timeoutMs}ms` };
    }
    const info = await exec.inspect();
    return { exitCode: info.ExitCode ?? -1, output };
  };
}

/** The demultiplexed output, or undefined when the command outlived the timeout. */
function readWithin(
  stream: NodeJS.ReadableStream & { destroy(): void },
  timeoutMs: number,
): Promise<string | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      stream.destroy();
      resolve(undefined);
    }, timeoutMs);
    const demux = createLogDemuxer();
    stream.pipe(demux);
    demux.on('data', (chunk: Buffer) => {
      if (size < MAX_OUTPUT_BYTES) chunks.push(chunk);
      size += chunk.length;
    });
    const done = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('utf8'));
    };
    demux.on('end', done);
    stream.on('error', done);
    // A hijacked socket may close without ending the pipe.
    stream.on('close', () => setImmediate(done));
  });
}
