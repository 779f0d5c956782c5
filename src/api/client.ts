import * as http from 'node:http';
import type { IncomingMessage, RequestOptions } from 'node:http';
import { AgentRequestError, AgentUnreachableError, ApiError } from '../errors';
import type { Status } from './k8s-types';

/** Where the admin API is: the agent's unix socket or an HTTP(S) URL. */
export type ApiClientOptions =
  | { socketPath: string; timeoutMs?: number }
  | { server: string; token?: string; timeoutMs?: number };

const DEFAULT_TIMEOUT_MS = 30_000;

// Status reasons for servers that fail without a Status body.
const REASON_BY_STATUS: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  409: 'Conflict',
  422: 'Invalid',
  503: 'ServiceUnavailable',
};

/**
 * Talks to the admin API in the Kubernetes REST dialect. It uses node:http
 * rather than undici because the CLI must start fast and makes one or two
 * requests per run.
 */
export class ApiClient {
  private readonly target: ApiClientOptions;

  constructor(opts: ApiClientOptions) {
    this.target = opts;
  }

  /** Where requests go, for error messages. */
  get address(): string {
    return 'socketPath' in this.target ? this.target.socketPath : this.target.server;
  }

  /**
   * Sends one request and resolves with the parsed JSON answer; rejects with
   * ApiError for a non-2xx answer and AgentUnreachableError when nobody
   * listens at the address.
   */
  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<T> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const options = this.buildOptions(method, path, headers, payload);
    const res = await this.send(options, payload);
    const text = await readBody(res);
    const status = res.statusCode ?? 0;

    if (status < 200 || status >= 300) throw toApiError(status, text);
    return parseJson(text) as T;
  }

  private buildOptions(
    method: string,
    path: string,
    headers: Record<string, string>,
    payload?: Buffer,
  ): RequestOptions {
    const all: Record<string, string> = { accept: 'application/json' };
    for (const [key, value] of Object.entries(headers)) all[key.toLowerCase()] = value;
    if (payload) {
      all['content-type'] ??= 'application/json';
      all['content-length'] = String(payload.length);
    }
    const timeout = this.target.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if ('socketPath' in this.target) {
      return { socketPath: this.target.socketPath, method, path, headers: all, timeout };
    }

    const url = new URL(path, this.target.server);
    if (this.target.token) all.authorization = `Bearer ${this.target.token}`;
    return {
      protocol: url.protocol,
      hostname: url.hostname,
      port: url.port,
      path: url.pathname + url.search,
      method,
      headers: all,
      timeout,
    };
  }

  private send(options: RequestOptions, payload?: Buffer): Promise<IncomingMessage> {
    const requestFn = options.protocol === 'https:' ? httpsRequest() : http.request;
    return new Promise((resolve, reject) => {
      const req = requestFn(options, resolve);
      req.on('timeout', () => {
        req.destroy(new AgentRequestError(`request to ${this.address} timed out`));
      });
      req.on('error', (err) => reject(this.translate(err)));
      req.end(payload);
    });
  }

  private translate(err: NodeJS.ErrnoException): Error {
    if (err instanceof AgentRequestError) return err;
    if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
      return new AgentUnreachableError(this.address, { cause: err });
    }
    return new AgentRequestError(`request to ${this.address} failed: ${err.message}`, {
      cause: err,
    });
  }
}

function httpsRequest(): typeof http.request {
  // Loaded only for remote servers: TLS costs start-up time.
  return (require('node:https') as typeof import('node:https')).request;
}

function readBody(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (chunk: Buffer) => chunks.push(chunk));
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
  });
}

function parseJson(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new AgentRequestError('the agent answered with invalid JSON', { cause: err });
  }
}

/** Builds the error for a failed answer, preferring the Status object's words. */
export function toApiError(httpStatus: number, text: string): ApiError {
  let status: Status | undefined;
  try {
    status = JSON.parse(text) as Status;
  } catch {
    status = undefined;
  }
  const reason = status?.reason || REASON_BY_STATUS[httpStatus] || 'InternalError';
  const code = typeof status?.code === 'number' ? status.code : httpStatus;
  const fallback = text.trim().split('\n')[0] || `the server answered HTTP ${httpStatus}`;
  const message = status?.message || (status ? `the server answered ${reason}` : fallback);
  return new ApiError(reason, message, code, status?.details?.causes ?? []);
}
