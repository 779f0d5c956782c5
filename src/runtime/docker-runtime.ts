import { pipeline, Readable } from 'node:stream';
import Docker from 'dockerode';
import pino, { type Logger } from 'pino';
import { NotFoundError, RuntimeError } from '../errors';
import {
  RuntimeReason,
  type ContainerCreateSpec,
  type ContainerInfo,
  type ContainerRuntime,
  type ContainerState,
  type LogOptions,
  type RuntimeEvent,
  type RuntimeReasonName,
} from './container-runtime';
import { createLogDemuxer, PullProgressError, readPullProgress } from './docker-streams';
import { EventFollower } from './event-follower';

/** Where the engine listens unless told otherwise. */
export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

/** Options for {@link DockerRuntime}. */
export interface DockerRuntimeOptions {
  socketPath?: string;
  logger?: Logger;
}

// The error shape docker-modem produces for an HTTP status it did not expect.
interface ModemError extends Error {
  statusCode?: number;
  json?: unknown;
  code?: string;
}

const MAX_MESSAGE_CHARS = 300;
const ZERO_TIME = '0001-01-01T00:00:00Z';

/** The ContainerRuntime that drives a local Docker Engine over its unix socket. */
export class DockerRuntime implements ContainerRuntime {
  private readonly docker: Docker;
  private readonly socketPath: string;
  private readonly log: Logger;

  constructor(opts: DockerRuntimeOptions = {}) {
    this.socketPath = opts.socketPath ?? DEFAULT_DOCKER_SOCKET;
    this.log = (opts.logger ?? pino({ enabled: false })).child({ component: 'runtime' });
    this.docker = new Docker(socketOnlyOptions(this.socketPath));
  }

  async ping(): Promise<void> {
    try {
      await this.docker.ping();
    } catch (err) {
      throw this.unavailable(err);
    }
  }

  async hasImage(ref: string): Promise<boolean> {
    try {
      await this.docker.getImage(ref).inspect();
      return true;
    } catch (err) {
      if (statusOf(err) === 404) return false;
      throw this.translate(err, RuntimeReason.RuntimeRequestError, `inspect image ${ref}`);
    }
  }

  async pullImage(ref: string, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const started = Date.now();
    try {
      const stream = await this.docker.pull(ref, { abortSignal: signal });
      await readPullProgress(stream as AsyncIterable<Buffer>);
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      throw this.pullError(ref, err);
    }
    this.log.info({ image: ref, durationMs: Date.now() - started }, 'image pulled');
  }

  async createContainer(spec: ContainerCreateSpec): Promise<string> {
    try {
      const container = await this.docker.createContainer(toCreateOptions(spec));
      this.log.debug({ containerId: container.id, name: spec.name }, 'container created');
      return container.id;
    } catch (err) {
      throw this.translate(err, RuntimeReason.CreateContainerError, `create ${spec.name}`);
    }
  }

  async startContainer(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).start();
    } catch (err) {
      if (statusOf(err) === 304) return;
      throw this.translate(err, RuntimeReason.RunContainerError, `start ${id}`);
    }
  }

  async stopContainer(id: string, graceSeconds: number): Promise<void> {
    const t = Math.max(0, Math.ceil(graceSeconds));
    try {
      await this.docker.getContainer(id).stop({ t });
    } catch (err) {
      const status = statusOf(err);
      if (status === 304 || status === 404) return;
      throw this.translate(err, RuntimeReason.StopContainerError, `stop ${id}`);
    }
  }

  async removeContainer(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).remove({ force: true, v: true });
    } catch (err) {
      if (statusOf(err) === 404 || isRemovalInProgress(err)) return;
      throw this.translate(err, RuntimeReason.RemoveContainerError, `remove ${id}`);
    }
  }

  async inspectContainer(id: string): Promise<ContainerInfo | undefined> {
    try {
      return toContainerInfo(await this.docker.getContainer(id).inspect());
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw this.translate(err, RuntimeReason.RuntimeRequestError, `inspect ${id}`);
    }
  }

  async listContainers(labels: Record<string, string>): Promise<ContainerInfo[]> {
    let summaries: Docker.ContainerInfo[];
    try {
      summaries = await this.docker.listContainers({
        all: true,
        filters: { label: labelFilters(labels) },
      });
    } catch (err) {
      throw this.translate(err, RuntimeReason.RuntimeRequestError, 'list containers');
    }
    // The summary lacks exit code and timestamps; a container removed
    // between the list and its inspect is simply left out.
    const infos = await Promise.all(summaries.map((s) => this.inspectContainer(s.Id)));
    return infos.filter((info): info is ContainerInfo => info !== undefined);
  }

  /** The returned follower's `ready` settles once the stream is open. */
  watchEvents(labels: Record<string, string>, onEvent: (e: RuntimeEvent) => void): EventFollower {
    const filters = { type: ['container' as const], label: labelFilters(labels) };
    const open = (signal: AbortSignal) => this.docker.getEvents({ filters, abortSignal: signal });
    return new EventFollower(open, onEvent, this.log).start();
  }

  async logs(id: string, opts: LogOptions): Promise<NodeJS.ReadableStream> {
    const container = this.docker.getContainer(id);
    try {
      const { Config } = await container.inspect();
      const source = await openLogs(container, opts);
      // A TTY container's output is one raw stream with no frame headers.
      if (Config.Tty) return source;
      return pipeline(source, createLogDemuxer(), () => undefined);
    } catch (err) {
      if (statusOf(err) === 404) throw new NotFoundError('container', id);
      throw this.translate(err, RuntimeReason.RuntimeRequestError, `logs ${id}`);
    }
  }

  private pullError(ref: string, err: unknown): RuntimeError {
    if (err instanceof PullProgressError) {
      return new RuntimeError(RuntimeReason.ErrImagePull, `pull ${ref}: ${shorten(err.message)}`, {
        cause: err,
      });
    }
    const malformed = statusOf(err) === 400;
    const reason = malformed ? RuntimeReason.InvalidImageName : RuntimeReason.ErrImagePull;
    return this.translate(err, reason, `pull ${ref}`);
  }

  private translate(err: unknown, reason: RuntimeReasonName, what: string): RuntimeError {
    if (isTransportError(err)) return this.unavailable(err);
    return new RuntimeError(reason, `${what}: ${dockerMessage(err)}`, { cause: err });
  }

  private unavailable(err: unknown): RuntimeError {
    const detail = err instanceof Error ? ((err as ModemError).code ?? err.message) : String(err);
    return new RuntimeError(
      RuntimeReason.RuntimeUnavailable,
      `container engine unreachable at ${this.socketPath}: ${shorten(detail)}`,
      { cause: err },
    );
  }
}

// docker-modem reads DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH from
// the environment and lets them win over socketPath; spelling every field out
// keeps the adapter on the local socket, which also means ssh2's optional
// native helpers are never used.
function socketOnlyOptions(socketPath: string): Docker.DockerOptions {
  return {
    socketPath,
    host: undefined,
    port: undefined,
    protocol: 'http',
    ca: undefined,
    cert: undefined,
    key: undefined,
    username: undefined,
    sshOptions: undefined,
  };
}

function toCreateOptions(spec: ContainerCreateSpec): Docker.ContainerCreateOptions {
  const body = {
    Image: spec.image,
    Labels: spec.labels,
    Env: spec.env,
    Entrypoint: spec.command?.length ? spec.command : undefined,
    Cmd: spec.args?.length ? spec.args : undefined,
    WorkingDir: spec.workingDir,
    Hostname: spec.hostname,
    HostConfig: {
      // tini as PID 1 forwards SIGTERM, so stops take ~0.1 s instead of the timeout.
      Init: true,
      // Flotilla decides about restarts; Docker restarting behind its back
      // would make observed state lie.
      RestartPolicy: { Name: 'no' },
      NetworkMode: 'bridge',
      Memory: spec.memoryBytes,
      // Equal to Memory: no swap on top of the limit, as in Kubernetes.
      MemorySwap: spec.memoryBytes,
      NanoCpus: spec.nanoCpus,
      ExtraHosts: spec.extraHosts,
    },
  };
  // Without _query/_body docker-modem would copy every field, env values
  // included, into the request URL.
  return { _query: { name: spec.name }, _body: body } as unknown as Docker.ContainerCreateOptions;
}

async function openLogs(container: Docker.Container, opts: LogOptions): Promise<Readable> {
  const query = {
    stdout: true,
    stderr: true,
    timestamps: opts.timestamps ?? false,
    ...(opts.tail === undefined ? {} : { tail: opts.tail }),
  };
  // dockerode streams only when following; otherwise it buffers the lot.
  if (opts.follow) return (await container.logs({ ...query, follow: true })) as Readable;
  return Readable.from([await container.logs({ ...query, follow: false })]);
}

function toContainerInfo(c: Docker.ContainerInspectInfo): ContainerInfo {
  const state = c.State.Status as ContainerState;
  const info: ContainerInfo = {
    id: c.Id,
    name: c.Name.replace(/^\//, ''),
    image: c.Config.Image,
    imageId: c.Image,
    labels: c.Config.Labels ?? {},
    state,
  };
  if (state === 'exited' || state === 'dead') info.exitCode = c.State.ExitCode;
  if (c.State.StartedAt && c.State.StartedAt !== ZERO_TIME) info.startedAt = c.State.StartedAt;
  if (c.State.FinishedAt && c.State.FinishedAt !== ZERO_TIME) info.finishedAt = c.State.FinishedAt;
  const ip = ipAddressOf(c);
  if (ip) info.ipAddress = ip;
  const error = c.State.Error || (c.State.OOMKilled ? 'OOMKilled' : '');
  if (error) info.error = error;
  return info;
}

function ipAddressOf(c: Docker.ContainerInspectInfo): string | undefined {
  const networks = c.NetworkSettings?.Networks ?? {};
  if (networks.bridge?.IPAddress) return networks.bridge.IPAddress;
  return Object.values(networks).find((n) => n.IPAddress)?.IPAddress;
}

function labelFilters(labels: Record<string, string>): string[] {
  return Object.entries(labels).map(([key, value]) => `${key}=${value}`);
}

function statusOf(err: unknown): number | undefined {
  return (err as ModemError | undefined)?.statusCode;
}

// No HTTP status means the request never got an answer from the engine.
function isTransportError(err: unknown): boolean {
  return err instanceof Error && statusOf(err) === undefined;
}

function isRemovalInProgress(err: unknown): boolean {
  return statusOf(err) === 409 && /already in progress/i.test(dockerMessage(err));
}

function dockerMessage(err: unknown): string {
  const json = (err as ModemError | undefined)?.json;
  if (json && typeof json === 'object' && 'message' in json) {
    return shorten(String((json as { message: unknown }).message));
  }
  if (typeof json === 'string' && json.trim()) return shorten(json);
  const message = err instanceof Error ? err.message : String(err);
  // docker-modem prefixes the engine's text with its own status summary.
  return shorten(message.replace(/^\(HTTP code \d+\)[^-]*- /, ''));
}

function shorten(message: string): string {
  const oneLine = message.replace(/\s+/g, ' ').trim();
  if (oneLine.length <= MAX_MESSAGE_CHARS) return oneLine;
  return `${oneLine.slice(0, MAX_MESSAGE_CHARS - 1)}…`;
}
