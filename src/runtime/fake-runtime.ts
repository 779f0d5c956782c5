import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { NotFoundError, RuntimeError } from '../errors';
import {
  RuntimeReason,
  type ContainerCreateSpec,
  type ContainerInfo,
  type ContainerRuntime,
  type ContainerState,
  type EventWatch,
  type LogOptions,
  type RuntimeEvent,
} from './container-runtime';
import { matchesLabels } from './labels';

/** Options for {@link FakeRuntime}. */
export interface FakeRuntimeOptions {
  /** The clock for timestamps and event times; Date.now by default. */
  now?: () => number;
}

/** One call made to a FakeRuntime, recorded for assertions. */
export interface FakeRuntimeCall {
  op: keyof ContainerRuntime;
  /** The image ref, container id or name the call was about. */
  target: string;
}

interface FakeContainer {
  id: string;
  name: string;
  spec: ContainerCreateSpec;
  imageId: string;
  state: ContainerState;
  exitCode?: number;
  startedAt?: string;
  finishedAt?: string;
  ipAddress?: string;
  error?: string;
  logLines: string[];
  followers: Set<Transform>;
}

interface HeldPull {
  released: Promise<void>;
  release: () => void;
}

// What a process killed by SIGTERM or SIGKILL exits with under an init.
const EXIT_SIGTERM = 143;
const EXIT_SIGKILL = 137;
const STOPPED = 'fake engine stopped';

/**
 * An in-memory ContainerRuntime for actor tests. It keeps DockerRuntime's
 * contract: the same errors and reasons, not-found counted as success on
 * stop and remove, and the same event sequences, delivered asynchronously.
 * Ids are deterministic so that test output is stable.
 */
export class FakeRuntime implements ContainerRuntime {
  /** Every call in order, for asserting what an actor asked for. */
  readonly calls: FakeRuntimeCall[] = [];

  private readonly now: () => number;
  private readonly images = new Map<string, string>();
  private readonly pullFailures = new Map<string, string>();
  private readonly heldPulls = new Map<string, HeldPull>();
  private readonly startFailures = new Map<string, string>();
  private readonly containers = new Map<string, FakeContainer>();
  private readonly watchers = new Set<FakeWatch>();
  private available = true;
  private nextSerial = 1;
  private nextIp = 2;

  constructor(opts: FakeRuntimeOptions = {}) {
    this.now = opts.now ?? Date.now;
  }

  /** Makes an image present, as if pulled or built earlier. */
  addImage(ref: string, imageId = digestOf(`image:${normalizeRef(ref)}`)): void {
    this.images.set(normalizeRef(ref), imageId);
  }

  /** Makes every pull of `ref` fail with ErrImagePull and this engine message. */
  failPull(ref: string, message: string): void {
    this.pullFailures.set(normalizeRef(ref), message);
  }

  /** Lets pulls of `ref` succeed again after {@link failPull}. */
  clearPullFailure(ref: string): void {
    this.pullFailures.delete(normalizeRef(ref));
  }

  /** Makes pulls of `ref` wait until the returned function is called. */
  holdPull(ref: string): () => void {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const key = normalizeRef(ref);
    this.heldPulls.set(key, { released, release });
    return () => {
      this.heldPulls.delete(key);
      release();
    };
  }

  /** Makes starting any container of `image` fail with RunContainerError. */
  failStart(image: string, message: string): void {
    this.startFailures.set(normalizeRef(image), message);
  }

  /**
   * Simulates the engine going away (false) or coming back (true): calls fail
   * with RuntimeUnavailable meanwhile and watchers see disconnected and
   * reconnected, as with DockerRuntime.
   */
  setAvailable(available: boolean): void {
    if (available === this.available) return;
    this.available = available;
    const event: RuntimeEvent = available
      ? { type: 'reconnected' }
      : { type: 'disconnected', error: STOPPED };
    for (const watch of this.watchers) watch.deliver(event);
  }

  /** Simulates the process in a running container exiting on its own. */
  crash(id: string, exitCode: number, opts: { oom?: boolean } = {}): void {
    const c = this.mustFind(id);
    if (c.state !== 'running') throw new Error(`fake container ${id} is ${c.state}, not running`);
    if (opts.oom) {
      c.error = 'OOMKilled';
      this.emit(c, 'oom');
    }
    this.exit(c, exitCode);
  }

  /** Simulates `docker rm -f` by someone other than Flotilla. */
  removeExternally(id: string): void {
    this.destroy(this.mustFind(id));
  }

  /** Appends a line to a container's output, as if it printed it. */
  writeLog(id: string, line: string): void {
    const c = this.mustFind(id);
    const stamped = `${new Date(this.now()).toISOString()} ${line.replace(/\n$/, '')}\n`;
    c.logLines.push(stamped);
    for (const follower of c.followers) follower.write(stamped);
  }

  async ping(): Promise<void> {
    this.record('ping', '');
    this.assertAvailable();
  }

  async hasImage(ref: string): Promise<boolean> {
    this.record('hasImage', ref);
    this.assertAvailable();
    return this.images.has(normalizeRef(ref));
  }

  async pullImage(ref: string, signal?: AbortSignal): Promise<void> {
    this.record('pullImage', ref);
    signal?.throwIfAborted();
    this.assertAvailable();
    const key = normalizeRef(ref);

    const held = this.heldPulls.get(key);
    if (held) await waitOrAbort(held.released, signal);

    const failure = this.pullFailures.get(key);
    if (failure !== undefined) {
      throw new RuntimeError(RuntimeReason.ErrImagePull, `pull ${ref}: ${failure}`);
    }
    if (!this.images.has(key)) this.addImage(ref);
  }

  async createContainer(spec: ContainerCreateSpec): Promise<string> {
    this.record('createContainer', spec.name);
    this.assertAvailable();
    const imageId = this.images.get(normalizeRef(spec.image));
    if (imageId === undefined) {
      throw createError(spec.name, `No such image: ${spec.image}`);
    }
    const taken = [...this.containers.values()].find((c) => c.name === spec.name);
    if (taken) {
      const message = `Conflict. The container name "/${spec.name}" is already in use`;
      throw createError(spec.name, message);
    }

    const id = digestOf(`container:${this.nextSerial++}`);
    const c: FakeContainer = {
      id,
      name: spec.name,
      spec: structuredClone(spec),
      imageId,
      state: 'created',
      logLines: [],
      followers: new Set(),
    };
    this.containers.set(id, c);
    this.emit(c, 'create');
    return id;
  }

  async startContainer(id: string): Promise<void> {
    this.record('startContainer', id);
    this.assertAvailable();
    const c = this.find(id);
    if (!c) {
      const message = `start ${id}: No such container: ${id}`;
      throw new RuntimeError(RuntimeReason.RunContainerError, message);
    }
    if (c.state === 'running') return;

    const failure = this.startFailures.get(normalizeRef(c.spec.image));
    if (failure !== undefined) {
      c.error = failure;
      throw new RuntimeError(RuntimeReason.RunContainerError, `start ${id}: ${failure}`);
    }
    c.state = 'running';
    c.exitCode = undefined;
    c.error = undefined;
    c.startedAt = new Date(this.now()).toISOString();
    c.ipAddress ??= `172.17.0.${this.nextIp++}`;
    this.emit(c, 'start');
  }

  async stopContainer(id: string, graceSeconds: number): Promise<void> {
    this.record('stopContainer', id);
    this.assertAvailable();
    const c = this.find(id);
    if (!c || c.state !== 'running') return;
    this.emit(c, 'kill');
    this.exit(c, EXIT_SIGTERM);
    this.emit(c, 'stop');
  }

  async removeContainer(id: string): Promise<void> {
    this.record('removeContainer', id);
    this.assertAvailable();
    const c = this.find(id);
    if (c) this.destroy(c);
  }

  async inspectContainer(id: string): Promise<ContainerInfo | undefined> {
    this.record('inspectContainer', id);
    this.assertAvailable();
    const c = this.find(id);
    return c && toInfo(c);
  }

  async listContainers(labels: Record<string, string>): Promise<ContainerInfo[]> {
    this.record('listContainers', JSON.stringify(labels));
    this.assertAvailable();
    return [...this.containers.values()]
      .filter((c) => matchesLabels(c.spec.labels, labels))
      .map(toInfo);
  }

  watchEvents(labels: Record<string, string>, onEvent: (e: RuntimeEvent) => void): FakeWatch {
    this.record('watchEvents', JSON.stringify(labels));
    const watch = new FakeWatch({ ...labels }, onEvent, () => this.watchers.delete(watch));
    this.watchers.add(watch);
    // Like the real follower, an unreachable engine is reported, not thrown.
    if (this.available) watch.open();
    else watch.deliver({ type: 'disconnected', error: STOPPED });
    return watch;
  }

  async logs(id: string, opts: LogOptions): Promise<NodeJS.ReadableStream> {
    this.record('logs', id);
    this.assertAvailable();
    const c = this.find(id);
    if (!c) throw new NotFoundError('container', id);

    const out = createLogFormatter(opts.timestamps ?? false);
    for (const line of tailOf(c.logLines, opts.tail)) out.write(line);
    if (opts.follow && c.state === 'running') {
      c.followers.add(out);
      out.on('close', () => c.followers.delete(out));
    } else {
      out.end();
    }
    return out;
  }

  private exit(c: FakeContainer, exitCode: number): void {
    c.state = 'exited';
    c.exitCode = exitCode;
    c.finishedAt = new Date(this.now()).toISOString();
    this.emit(c, 'die', exitCode);
    for (const follower of c.followers) follower.end();
  }

  private destroy(c: FakeContainer): void {
    if (c.state === 'running') {
      this.emit(c, 'kill');
      this.exit(c, EXIT_SIGKILL);
    }
    this.containers.delete(c.id);
    this.emit(c, 'destroy');
  }

  private emit(c: FakeContainer, action: string, exitCode?: number): void {
    // The real stream is down while the engine is: those events are lost.
    if (!this.available) return;
    const event: RuntimeEvent = {
      type: 'container',
      action,
      id: c.id,
      labels: { ...c.spec.labels },
      time: this.now(),
    };
    if (exitCode !== undefined) event.exitCode = exitCode;
    for (const watch of this.watchers) {
      if (matchesLabels(c.spec.labels, watch.selector)) watch.deliver(event);
    }
  }

  // Docker resolves a full id, a name, or an unambiguous id prefix.
  private find(idOrName: string): FakeContainer | undefined {
    const exact = this.containers.get(idOrName);
    if (exact) return exact;
    const all = [...this.containers.values()];
    const named = all.find((c) => c.name === idOrName.replace(/^\//, ''));
    if (named) return named;
    const prefixed = all.filter((c) => idOrName !== '' && c.id.startsWith(idOrName));
    return prefixed.length === 1 ? prefixed[0] : undefined;
  }

  private mustFind(id: string): FakeContainer {
    const c = this.find(id);
    if (!c) throw new Error(`fake runtime has no container ${id}`);
    return c;
  }

  private assertAvailable(): void {
    if (!this.available) {
      const message = `container engine unreachable: ${STOPPED}`;
      throw new RuntimeError(RuntimeReason.RuntimeUnavailable, message);
    }
  }

  private record(op: keyof ContainerRuntime, target: string): void {
    this.calls.push({ op, target });
  }
}

/** A FakeRuntime subscription; delivers in order, one microtask later, like a socket. */
export class FakeWatch implements EventWatch {
  /** Settles while the fake engine is available, as EventFollower's does once connected. */
  readonly ready: Promise<void>;

  private markReady!: () => void;
  private closed = false;

  constructor(
    readonly selector: Record<string, string>,
    private readonly onEvent: (e: RuntimeEvent) => void,
    private readonly detach: () => void,
  ) {
    this.ready = new Promise((resolve) => (this.markReady = resolve));
  }

  /** Queues an event for the subscriber. */
  deliver(event: RuntimeEvent): void {
    if (event.type === 'reconnected') this.markReady();
    queueMicrotask(() => {
      if (!this.closed) this.onEvent(event);
    });
  }

  /** Marks the subscription live without a reconnect, for an available engine. */
  open(): void {
    this.markReady();
  }

  close(): void {
    this.closed = true;
    this.markReady();
    this.detach();
  }
}

function toInfo(c: FakeContainer): ContainerInfo {
  const info: ContainerInfo = {
    id: c.id,
    name: c.name,
    image: c.spec.image,
    imageId: c.imageId,
    labels: { ...c.spec.labels },
    state: c.state,
  };
  if (c.exitCode !== undefined) info.exitCode = c.exitCode;
  if (c.startedAt) info.startedAt = c.startedAt;
  if (c.finishedAt) info.finishedAt = c.finishedAt;
  if (c.ipAddress && c.state === 'running') info.ipAddress = c.ipAddress;
  if (c.error) info.error = c.error;
  return info;
}

function createError(name: string, message: string): RuntimeError {
  return new RuntimeError(RuntimeReason.CreateContainerError, `create ${name}: ${message}`);
}

// Docker reads a reference without tag or digest as `:latest`.
function normalizeRef(ref: string): string {
  if (ref.includes('@')) return ref;
  const lastSegment = ref.slice(ref.lastIndexOf('/') + 1);
  return lastSegment.includes(':') ? ref : `${ref}:latest`;
}

function digestOf(seed: string): string {
  return createHash('sha256').update(seed).digest('hex');
}

function waitOrAbort(done: Promise<void>, signal?: AbortSignal): Promise<void> {
  if (!signal) return done;
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    done.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}

// Lines are stored with their timestamp; a reader that did not ask for
// timestamps gets them cut off on the way out.
function createLogFormatter(timestamps: boolean): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      done(null, timestamps ? chunk : chunk.toString().replace(/^\S+ /gm, ''));
    },
  });
}

function tailOf(lines: string[], tail: number | undefined): string[] {
  if (tail === undefined) return lines;
  return tail > 0 ? lines.slice(-tail) : [];
}
