/**
 * The admin API client the CLI uses: the agent's unix socket, or a remote
 * agent's HTTPS listener reached with a bearer token whose CA hash pins the
 * cluster's CA before the token is ever sent.
 */
import * as crypto from 'node:crypto';
import * as http from 'node:http';
import type { IncomingMessage, RequestOptions } from 'node:http';
import * as net from 'node:net';
import type * as tls from 'node:tls';
import { parseToken } from '../auth/token-format';
import { AgentRequestError, AgentUnreachableError, ApiError, InvalidError } from '../errors';
import type { Status } from '../model/k8s-types';

/**
 * Where the admin API is: the agent's unix socket or an HTTPS URL. For a
 * URL, `caPem` is the CA to trust; without it the CA is pinned from the
 * token (see `pinnedCa`), and without either the system's roots apply.
 */
export type ApiClientOptions =
  | { socketPath: string; timeoutMs?: number }
  | { server: string; token?: string; caPem?: string; timeoutMs?: number };

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

// Connection failures that mean nobody answers at the address at all.
const UNREACHABLE = new Set(['ENOENT', 'ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND']);

/**
 * Talks to the admin API in the Kubernetes REST dialect. It uses node:http
 * rather than undici because the CLI must start fast and makes one or two
 * requests per run.
 */
export class ApiClient {
  private readonly target: ApiClientOptions;
  private readonly url?: URL;
  private pinning?: Promise<string | undefined>;

  constructor(opts: ApiClientOptions) {
    this.target = opts;
    if ('server' in opts) {
      this.url = serverUrl(opts.server);
      checkScheme(this.url, opts.token !== undefined);
      if (opts.token !== undefined) parseToken(opts.token, 'the API token');
    }
  }

  /** Where requests go, for error messages. */
  get address(): string {
    return 'socketPath' in this.target ? this.target.socketPath : this.url!.origin;
  }

  /** The HTTPS (or loopback HTTP) origin requests go to; undefined for the socket. */
  get server(): string | undefined {
    return this.url?.origin;
  }

  /**
   * The CA this client trusts for its HTTPS server: the one it was given, or
   * the one pinned from the token's CA hash (found once, then cached);
   * undefined for the socket, plain HTTP or a server without a token.
   */
  pinnedCa(): Promise<string | undefined> {
    if ('socketPath' in this.target || this.url!.protocol !== 'https:') {
      return Promise.resolve(undefined);
    }
    if (this.target.caPem !== undefined) return Promise.resolve(this.target.caPem);
    const token = this.target.token;
    if (token === undefined) return Promise.resolve(undefined);
    if (this.pinning === undefined) {
      const pinning = this.pinFromServer(parseToken(token).caHash);
      // A failed attempt (the server down, say) is not remembered: a later call tries again.
      pinning.catch(() => {
        if (this.pinning === pinning) this.pinning = undefined;
      });
      this.pinning = pinning;
    }
    return this.pinning;
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
    const ca = await this.pinnedCa();
    const options = this.buildOptions(method, path, headers, payload, ca);
    const res = await this.send(options, payload);
    const text = await readBody(res);
    const status = res.statusCode ?? 0;

    if (status < 200 || status >= 300) throw this.refusal(toApiError(status, text));
    return parseJson(text) as T;
  }

  private buildOptions(
    method: string,
    path: string,
    headers: Record<string, string>,
    payload: Buffer | undefined,
    ca: string | undefined,
  ): RequestOptions & tls.ConnectionOptions {
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

    const url = new URL(path, this.url);
    if (this.target.token) all.authorization = `Bearer ${this.target.token}`;
    return {
      protocol: url.protocol,
      hostname: bareHost(url),
      port: url.port === '' ? undefined : Number(url.port),
      path: url.pathname + url.search,
      method,
      headers: all,
      timeout,
      // Full verification, host name included; `ca` replaces the system's roots.
      ...(ca === undefined ? {} : { ca }),
      rejectUnauthorized: true,
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

  /**
   * Finds the CA certificate whose DER hashes to `caHash` in the chain the
   * server presents. This connection verifies nothing and sends nothing: it
   * only fetches a candidate, and the requests that carry the token then
   * verify the server's certificate against that CA alone. A server that
   * merely copied the (public) CA certificate into its chain fails there.
   */
  private pinFromServer(caHash: string): Promise<string> {
    const url = this.url!;
    const host = bareHost(url);
    const tlsModule = require('node:tls') as typeof import('node:tls');
    const timeout = this.target.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      const socket = tlsModule.connect({
        host,
        port: Number(url.port || 443),
        servername: net.isIP(host) ? undefined : host,
        rejectUnauthorized: false,
        timeout,
      });
      const fail = (err: Error) => {
        socket.destroy();
        reject(err);
      };
      socket.on('timeout', () => fail(new AgentRequestError(`TLS to ${url.origin} timed out`)));
      socket.on('error', (err) => fail(this.translate(err)));
      socket.on('secureConnect', () => {
        const pem = findCa(socket.getPeerCertificate(true), caHash);
        socket.destroy();
        if (pem !== undefined) return resolve(pem);
        const message = `the server at ${url.origin} does not present the CA this token pins`;
        reject(new AgentRequestError(message));
      });
    });
  }

  private translate(err: NodeJS.ErrnoException): Error {
    if (err instanceof AgentRequestError) return err;
    if ('socketPath' in this.target) {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
        return new AgentUnreachableError(this.address, { cause: err });
      }
    } else if (err.code !== undefined && UNREACHABLE.has(err.code)) {
      const message = `cannot reach the flotilla agent at ${this.address}: ${err.code}`;
      return new AgentRequestError(message, { cause: err });
    } else if (isTlsError(err)) {
      return new AgentRequestError(`TLS with ${this.address} failed: ${err.message}`, {
        cause: err,
      });
    }
    return new AgentRequestError(`request to ${this.address} failed: ${err.message}`, {
      cause: err,
    });
  }

  /** Says what 401 and 403 mean for the remote caller; other answers pass unchanged. */
  private refusal(err: ApiError): ApiError {
    if ('socketPath' in this.target) return err;
    if (err.status === 401) {
      const message = this.target.token
        ? `the server refused the token: ${err.message}`
        : `the server at ${this.address} wants a token: pass --token, set FLOTILLA_API_TOKEN ` +
          'or run flotilla login';
      return new ApiError(err.reason, message, err.status, err.causes);
    }
    if (err.status === 403) {
      const message = `the token's role does not allow this: ${err.message}`;
      return new ApiError(err.reason, message, err.status, err.causes);
    }
    return err;
  }
}

/** The server's URL; a bare HOST:PORT means HTTPS, since that is all the agent serves. */
function serverUrl(server: string): URL {
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(server) ? server : `https://${server}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InvalidError(`expected the server as https://HOST:PORT, got "${server}"`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new InvalidError(`expected the server as https://HOST:PORT, got "${server}"`);
  }
  return url;
}

/**
 * The agent serves its API over HTTPS only, so plain HTTP is for one case:
 * a local proxy that adds credentials itself (`kubectl proxy` on
 * 127.0.0.1). Over HTTP a token could not be checked against the CA it
 * pins, and even on loopback any local user who gets the port would receive
 * it, so a token never goes over HTTP, and HTTP never leaves the machine.
 */
function checkScheme(url: URL, withToken: boolean): void {
  if (url.protocol === 'https:') return;
  if (withToken) {
    throw new InvalidError(
      `refusing to send a token over plain http (${url.origin}): use https://HOST:PORT`,
    );
  }
  if (!isLoopback(bareHost(url))) {
    throw new InvalidError(`refusing plain http to ${url.origin}: use https://HOST:PORT`);
  }
}

function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return net.isIPv4(host) && host.startsWith('127.');
}

// URL keeps IPv6 hosts in brackets; sockets want them bare.
function bareHost(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1');
}

function isTlsError(err: NodeJS.ErrnoException): boolean {
  const code = err.code ?? '';
  return (
    code.startsWith('ERR_SSL') ||
    code.startsWith('ERR_TLS') ||
    /CERT|SELF_SIGNED|UNABLE_TO|HOSTNAME|ALTNAME/.test(code) ||
    /certificate|SSL|TLS/.test(err.message)
  );
}

/** The PEM of the certificate in a presented chain whose DER has SHA-256 `caHash`. */
function findCa(leaf: tls.DetailedPeerCertificate, caHash: string): string | undefined {
  const seen = new Set<tls.DetailedPeerCertificate>();
  for (let cert = leaf; cert && cert.raw && !seen.has(cert); cert = cert.issuerCertificate) {
    seen.add(cert);
    if (crypto.createHash('sha256').update(cert.raw).digest('hex') === caHash) {
      return toPem(cert.raw);
    }
  }
  return undefined;
}

/** A DER certificate as PEM text. */
export function toPem(der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}

/** The SHA-256 (hex) of a PEM certificate's DER, as tokens carry it. */
export function caHashOf(pem: string): string {
  const der = new crypto.X509Certificate(pem).raw;
  return crypto.createHash('sha256').update(der).digest('hex');
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
