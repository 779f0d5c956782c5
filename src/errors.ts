/**
 * Every error Flotilla expects to happen (bad input, a conflict, a missing
 * object, no leader) is one of these classes with a stable `code`. The CLI and
 * the tests match on `code`, never on message text; `status` is the HTTP
 * status the admin API answers with.
 */
export class FlotillaError extends Error {
  readonly code: string;
  readonly status: number;

  constructor(code: string, message: string, status = 500, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
  }
}

/** Where in a manifest file a problem is: 1-based line and column. */
export interface SourcePosition {
  file: string;
  line?: number;
  column?: number;
}

/** Returned when a manifest cannot be parsed or fails validation. */
export class ManifestError extends FlotillaError {
  readonly position?: SourcePosition;
  readonly fieldPath?: string;

  constructor(message: string, position?: SourcePosition, fieldPath?: string) {
    super('ManifestInvalid', formatLocated(message, position, fieldPath), 422);
    this.position = position;
    this.fieldPath = fieldPath;
  }
}

/**
 * Several documents of a manifest are invalid: the first error of each,
 * so that one run shows every document to fix (within a document the
 * first error stops, to avoid a cascade of follow-ups).
 */
export class ManifestErrors extends FlotillaError {
  readonly errors: ManifestError[];

  constructor(errors: ManifestError[]) {
    super('ManifestInvalid', `${errors[0].message} (and ${errors.length - 1} more)`, 422);
    this.errors = errors;
  }
}

/** Returned when a request names an object that does not exist. */
export class NotFoundError extends FlotillaError {
  constructor(kind: string, name: string) {
    super('NotFound', `${kind} "${name}" not found`, 404);
  }
}

/** Returned when a write was based on a resourceVersion that is no longer current. */
export class ConflictError extends FlotillaError {
  constructor(message: string) {
    super('Conflict', message, 409);
  }
}

/** Returned when a request is well-formed but asks for something not allowed. */
export class InvalidError extends FlotillaError {
  constructor(message: string, fieldPath?: string) {
    super('Invalid', fieldPath ? `${fieldPath}: ${message}` : message, 422);
  }
}

/** Returned when the local agent cannot be reached through its socket. */
export class AgentUnreachableError extends FlotillaError {
  constructor(socketPath: string, options?: { cause?: unknown }) {
    super(
      'AgentUnreachable',
      `cannot reach the flotilla agent at ${socketPath}: is it running with this --data-dir?`,
      503,
      options,
    );
  }
}

/** Returned when a write cannot be committed because no majority is reachable. */
export class NoQuorumError extends FlotillaError {
  constructor(message = 'no quorum: a majority of voting servers cannot be reached') {
    super('NoQuorum', message, 503);
  }
}

/** Returned by a follower asked for something only the leader can do. */
export class NotLeaderError extends FlotillaError {
  readonly leaderAddress?: string;

  constructor(leaderAddress?: string) {
    super(
      'NotLeader',
      leaderAddress
        ? `not the leader; the leader is ${leaderAddress}`
        : 'not the leader; no leader known',
      421,
    );
    this.leaderAddress = leaderAddress;
  }
}

/** Returned when the container engine fails; the Docker error is kept as `cause`. */
export class RuntimeError extends FlotillaError {
  /** A Kubernetes-style reason such as ErrImagePull or CreateContainerError. */
  readonly reason: string;

  constructor(reason: string, message: string, options?: { cause?: unknown }) {
    super('RuntimeFailed', message, 502, options);
    this.reason = reason;
  }
}

function formatLocated(message: string, position?: SourcePosition, fieldPath?: string): string {
  let where = '';
  if (position) {
    where = position.file;
    if (position.line !== undefined) where += `:${position.line}`;
    if (position.column !== undefined) where += `:${position.column}`;
  }
  const field = fieldPath ? `${fieldPath}: ` : '';
  return where ? `${where}: ${field}${message}` : `${field}${message}`;
}

/** True for errors that are the user's mistake rather than Flotilla's fault. */
export function isUserError(err: unknown): err is FlotillaError {
  return err instanceof FlotillaError && err.status >= 400 && err.status < 500;
}

/** One field-level problem reported inside an API Status object. */
export interface ApiCause {
  field?: string;
  message?: string;
  reason?: string;
}

/**
 * Returned by the API client when the admin API answers with a Kubernetes
 * Status object; `code` is the Status reason (NotFound, Conflict, ...).
 */
export class ApiError extends FlotillaError {
  readonly reason: string;
  readonly causes: ApiCause[];

  constructor(reason: string, message: string, status: number, causes: ApiCause[] = []) {
    super(reason, message, status);
    this.reason = reason;
    this.causes = causes;
  }
}

/** Returned when a request to the agent fails in transit (reset, timeout, denied). */
export class AgentRequestError extends FlotillaError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('AgentRequestFailed', message, 502, options);
  }
}

/** Returned when the Raft log's SQLite storage fails; the SQLite error is kept as `cause`. */
export class RaftStorageError extends FlotillaError {
  constructor(operation: string, options?: { cause?: unknown }) {
    const detail = options?.cause instanceof Error ? `: ${options.cause.message}` : '';
    super('RaftStorageFailed', `raft storage failed to ${operation}${detail}`, 500, options);
  }
}

/** Returned when another cluster member cannot be reached over the network. */
export class PeerUnreachableError extends FlotillaError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PeerUnreachable', message, 503, options);
  }
}

/** Returned to a server whose request to join the cluster is refused (a wrong token). */
export class JoinRefusedError extends FlotillaError {
  constructor(message: string) {
    super('JoinRefused', message, 403);
  }
}

/** Returned by the gossip layer when it is set up without a cluster secret or a usable address. */
export class GossipConfigError extends FlotillaError {
  constructor(message: string) {
    super('GossipConfigInvalid', message, 400);
  }
}

/**
 * Returned by `rollout` commands and `apply --wait`: a rollout that exceeded
 * its progress deadline (ProgressDeadlineExceeded), one the server rolled
 * back on its own (RolledBack), a wait that timed out
 * (RolloutTimeout), or an undo with no revision to go back to
 * (RolloutHistoryMissing).
 */
export class RolloutError extends FlotillaError {
  constructor(
    code: 'ProgressDeadlineExceeded' | 'RolledBack' | 'RolloutTimeout' | 'RolloutHistoryMissing',
    message: string,
  ) {
    super(code, message, code === 'RolloutHistoryMissing' ? 404 : 500);
  }
}

/**
 * Returned when a server removed from the cluster (`flotilla node remove`)
 * tries to take part again with its old data: registering its node, or
 * joining without wiping its data directory.
 */
export class NodeRemovedError extends FlotillaError {
  constructor(name: string) {
    super(
      'NodeRemoved',
      `node "${name}" was removed from the cluster; empty its data directory and ` +
        'start it again with --join and --token to add it back',
      409,
    );
  }
}

/**
 * Returned by backup, restore and recover: a file that is not a Flotilla
 * backup (BackupInvalid), a data directory that already holds state
 * (DataDirNotEmpty) or holds none (DataDirEmpty), an agent still running
 * on it (AgentRunning), or a backup asked for over the network
 * (BackupForbidden).
 */
export class BackupError extends FlotillaError {
  constructor(
    code: 'BackupInvalid' | 'DataDirNotEmpty' | 'DataDirEmpty' | 'AgentRunning' | 'BackupForbidden',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, code === 'BackupForbidden' ? 403 : 400, options);
  }
}

/** Returned by `flotilla drain` when the node still has pods after its --timeout. */
export class DrainTimeoutError extends FlotillaError {
  constructor(node: string, left: number) {
    super('DrainTimeout', `node/${node}: ${left} pods still on the node after the timeout`, 504);
  }
}

/** Returned when the state database cannot be opened or is damaged. */
export class DatabaseError extends FlotillaError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DatabaseUnusable', message, 500, options);
  }
}
