/** What Flotilla asks the engine to create for one container of a pod. */
export interface ContainerCreateSpec {
  /** The Docker container name, unique on the node. */
  name: string;
  image: string;
  labels: Record<string, string>;
  /** `KEY=value` entries. */
  env: string[];
  /** Replaces the image's entrypoint, as in a Kubernetes container spec. */
  command?: string[];
  /** Replaces the image's cmd, as in a Kubernetes container spec. */
  args?: string[];
  workingDir?: string;
  hostname?: string;
  memoryBytes?: number;
  /** CPU limit in billionths of a CPU. */
  nanoCpus?: number;
  /** `host:ip` entries added to /etc/hosts. */
  extraHosts?: string[];
}

/** The lifecycle states Docker reports for a container. */
export type ContainerState =
  | 'created'
  | 'running'
  | 'paused'
  | 'restarting'
  | 'exited'
  | 'dead'
  | 'removing';

/** The observed state of one container as the engine reports it. */
export interface ContainerInfo {
  id: string;
  /** The Docker container name, without Docker's leading slash. */
  name: string;
  /** The image reference the container was created from. */
  image: string;
  /** The content id (sha256:...) the reference resolved to. */
  imageId: string;
  labels: Record<string, string>;
  state: ContainerState;
  /** Set once the container has exited or died. */
  exitCode?: number;
  /** RFC 3339; absent before the first start. */
  startedAt?: string;
  /** RFC 3339; absent until the first exit. */
  finishedAt?: string;
  ipAddress?: string;
  /** The engine's error for a failed start, or `OOMKilled`. */
  error?: string;
}

/**
 * One notification from the engine's event stream. `time` is milliseconds
 * since the epoch. After `reconnected` the caller must re-list containers:
 * events that happened while disconnected are not replayed.
 */
export type RuntimeEvent =
  | {
      type: 'container';
      /** Docker's action: create, start, kill, die, stop, oom, destroy, ... */
      action: string;
      id: string;
      labels: Record<string, string>;
      /** Present on `die`. */
      exitCode?: number;
      time: number;
    }
  | { type: 'disconnected'; error?: string }
  | { type: 'reconnected' };

/** A handle on an event subscription. */
export interface EventWatch {
  close(): void;
  /** Settles once the stream is live; events before that may be missed. */
  ready?: Promise<void>;
}

/** Options for reading a container's output. */
export interface LogOptions {
  follow?: boolean;
  /** Only the last n lines; all when absent. */
  tail?: number;
  /** Prefix each line with an RFC 3339 timestamp. */
  timestamps?: boolean;
}

/**
 * The container engine as pod actors see it. Failures are RuntimeError with a
 * Kubernetes-style `reason` (see {@link RuntimeReason}).
 */
export interface ContainerRuntime {
  /** Resolves when the engine answers; RuntimeUnavailable otherwise. */
  ping(): Promise<void>;
  hasImage(ref: string): Promise<boolean>;
  /** Resolves once the image is present; ErrImagePull on failure. */
  pullImage(ref: string, signal?: AbortSignal): Promise<void>;
  /** Returns the new container's id; CreateContainerError on failure. */
  createContainer(spec: ContainerCreateSpec): Promise<string>;
  /** Starting a running container succeeds; RunContainerError on failure. */
  startContainer(id: string): Promise<void>;
  /** SIGTERM, then SIGKILL after graceSeconds. Not-running / not-found counts as success. */
  stopContainer(id: string, graceSeconds: number): Promise<void>;
  /** Removes even a running container; not-found counts as success. */
  removeContainer(id: string): Promise<void>;
  /** Undefined when no container has this id or name. */
  inspectContainer(id: string): Promise<ContainerInfo | undefined>;
  /** Containers in any state carrying all of `labels`. */
  listContainers(labels: Record<string, string>): Promise<ContainerInfo[]>;
  /** Follows engine events for containers carrying `labels`; reconnects with capped backoff. */
  watchEvents(labels: Record<string, string>, onEvent: (e: RuntimeEvent) => void): EventWatch;
  /** Demultiplexed stdout+stderr; NotFoundError when the container is gone. */
  logs(id: string, opts: LogOptions): Promise<NodeJS.ReadableStream>;
}

/** The `reason` values a RuntimeError from a ContainerRuntime carries. */
export const RuntimeReason = {
  /** The image could not be pulled: unknown name, tag or unreachable registry. */
  ErrImagePull: 'ErrImagePull',
  /** The image reference is not syntactically valid. */
  InvalidImageName: 'InvalidImageName',
  CreateContainerError: 'CreateContainerError',
  RunContainerError: 'RunContainerError',
  StopContainerError: 'StopContainerError',
  RemoveContainerError: 'RemoveContainerError',
  /** Inspect, list, logs or image queries failed on the engine side. */
  RuntimeRequestError: 'RuntimeRequestError',
  /** The engine's socket does not answer. */
  RuntimeUnavailable: 'RuntimeUnavailable',
} as const;

/** One of the {@link RuntimeReason} values. */
export type RuntimeReasonName = (typeof RuntimeReason)[keyof typeof RuntimeReason];
