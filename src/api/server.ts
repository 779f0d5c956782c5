/**
 * The admin API, in the Kubernetes REST dialect for the kinds Flotilla
 * supports, served on the agent's unix socket (and later on its network
 * listener). Reads come from the local store; writes become commands of the
 * log. Every error is a Kubernetes Status with the matching HTTP code.
 */
import fs from 'node:fs';
import http from 'node:http';
import type pino from 'pino';
import { FlotillaError, NotFoundError, ConflictError, isUserError } from '../errors';
import type { Manifest } from '../manifest/types';
import { validateManifest } from '../manifest/validate';
import { parseSelectorString } from '../model/labels';
import { newUid } from '../model/names';
import type { CommandLog } from '../store/command-log';
import type { Kind, Store, StoredObject } from '../store/store';
import { VERSION } from '../version';
import { applyMergePatch } from './merge-patch';
import { BadRequestError, failure, statusFor } from './status';

/** What the API server needs. */
export interface ApiServerOptions {
  store: Store;
  log: CommandLog;
  logger: pino.Logger;
  /** Per-Service balancer counters of this node, for the metrics endpoint. */
  metrics?: () => unknown;
  /** Adds live fields (the Raft role) to a Node before it is returned. */
  decorateNode?: (node: StoredObject) => StoredObject;
}

type Handler = (req: Request) => Promise<unknown> | unknown;
/** A handler that answers the raw request itself. */
export type RawHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void;
interface Request {
  method: string;
  params: string[];
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  body: () => Promise<unknown>;
}

const NS = '/namespaces/default';
const RESOURCES: { path: string; kind: Kind; writable: boolean; apiVersion: string }[] = [
  { path: `/apis/apps/v1${NS}/deployments`, kind: 'Deployment', writable: true, apiVersion: 'apps/v1' },
  { path: `/apis/apps/v1${NS}/replicasets`, kind: 'ReplicaSet', writable: false, apiVersion: 'apps/v1' },
  { path: `/api/v1${NS}/services`, kind: 'Service', writable: true, apiVersion: 'v1' },
  { path: `/api/v1${NS}/pods`, kind: 'Pod', writable: false, apiVersion: 'v1' },
  { path: '/api/v1/nodes', kind: 'Node', writable: false, apiVersion: 'v1' },
  { path: `/api/v1${NS}/events`, kind: 'Event', writable: false, apiVersion: 'v1' },
];
const MAX_BODY_BYTES = 8 * 1024 * 1024;

/** The admin API's HTTP server. */
export class ApiServer {
  private readonly opts: ApiServerOptions;
  private readonly routes: { method: string; pattern: RegExp; handler: Handler }[] = [];
  private readonly mounts: { prefix: string; handler: RawHandler }[] = [];
  private readonly servers: http.Server[] = [];

  constructor(opts: ApiServerOptions) {
    this.opts = opts;
    this.defineRoutes();
  }

  /**
   * Hands every request whose path starts with `prefix` to `handler`
   * untouched: how the cluster's own endpoints share the node's listener.
   */
  mount(prefix: string, handler: RawHandler): void {
    this.mounts.push({ prefix, handler });
  }

  /** Listens on a unix socket that only the owner may use. */
  async listenUnix(socketPath: string): Promise<void> {
    fs.rmSync(socketPath, { force: true });
    const server = this.newServer();
    await listen(server, (done) => server.listen(socketPath, done));
    fs.chmodSync(socketPath, 0o600);
  }

  /** Listens on a TCP address (the node's --listen); returns the bound port. */
  async listenTcp(host: string, port: number): Promise<number> {
    const server = this.newServer();
    await listen(server, (done) => server.listen(port, host, done));
    return (server.address() as { port: number }).port;
  }

  async close(): Promise<void> {
    await Promise.all(
      this.servers.map(
        (server) =>
          new Promise<void>((resolve) => {
            server.close(() => resolve());
            server.closeAllConnections();
          }),
      ),
    );
  }

  private newServer(): http.Server {
    const server = http.createServer((req, res) => {
      const mount = this.mounts.find((m) => (req.url ?? '').startsWith(m.prefix));
      if (mount) mount.handler(req, res);
      else void this.handle(req, res);
    });
    this.servers.push(server);
    return server;
  }

  private route(method: string, path: string, handler: Handler): void {
    const pattern = new RegExp(`^${path.replace(/:name/g, '([a-z0-9.-]+)')}$`);
    this.routes.push({ method, pattern, handler });
  }

  private defineRoutes(): void {
    this.route('GET', '/version', () => versionInfo());
    this.route('GET', '/healthz', () => 'ok');
    this.route('POST', '/apis/flotilla.io/v1/apply', (r) => this.apply(r));
    this.route('GET', '/apis/flotilla.io/v1/metrics', () => ({
      kind: 'BalancerMetrics',
      services: this.opts.metrics?.() ?? {},
    }));
    for (const res of RESOURCES) {
      this.route('GET', res.path, (r) => this.list(res.kind, res.apiVersion, r));
      this.route('GET', `${res.path}/:name`, (r) => this.get(res.kind, r.params[0]));
      if (!res.writable) continue;
      this.route('POST', res.path, (r) => this.create(res.kind, r));
      this.route('PUT', `${res.path}/:name`, (r) => this.update(res.kind, r));
      this.route('PATCH', `${res.path}/:name`, (r) => this.patch(res.kind, r));
      this.route('DELETE', `${res.path}/:name`, (r) => this.remove(res.kind, r.params[0]));
    }
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://flotilla');
    const method = req.method ?? 'GET';
    try {
      const match = this.match(method, url.pathname);
      const result = await match.handler({
        method,
        params: match.params,
        query: url.searchParams,
        headers: req.headers,
        body: () => readJson(req),
      });
      send(res, 200, result);
    } catch (err) {
      const status = statusFor(err);
      if (!isUserError(err) && status.code >= 500) {
        this.opts.logger.error({ err, method, path: url.pathname }, 'api request failed');
      }
      send(res, status.code, status);
    }
  }

  private match(method: string, path: string) {
    let pathMatched = false;
    for (const r of this.routes) {
      const m = r.pattern.exec(path);
      if (!m) continue;
      pathMatched = true;
      if (r.method === method) return { handler: r.handler, params: m.slice(1) };
    }
    if (pathMatched) {
      throw new FlotillaError('MethodNotAllowed', `${method} is not supported on ${path}`, 405);
    }
    throw new FlotillaError('NotFound', `the server could not find the requested resource (${path})`, 404);
  }

  private list(kind: Kind, apiVersion: string, r: Request) {
    let items = this.opts.store.list(kind).map((o) => this.decorate(o));
    const selector = r.query.get('labelSelector');
    if (selector) {
      const test = parseSelectorString(selector);
      items = items.filter((o) => test((o.metadata.labels as Record<string, string>) ?? {}));
    }
    const fields = r.query.get('fieldSelector');
    if (fields) items = items.filter(fieldFilter(fields));
    return {
      kind: `${kind}List`,
      apiVersion,
      metadata: { resourceVersion: this.opts.store.getMeta('applied_index') ?? '0' },
      items,
    };
  }

  private get(kind: Kind, name: string) {
    const object = this.opts.store.get(kind, name);
    if (!object) throw new NotFoundError(kind.toLowerCase(), name);
    return this.decorate(object);
  }

  private decorate(object: StoredObject): StoredObject {
    if (object.kind === 'Node' && this.opts.decorateNode) return this.opts.decorateNode(object);
    return object;
  }

  private async apply(r: Request) {
    const body = (await r.body()) as { objects?: unknown[] };
    if (!body || !Array.isArray(body.objects)) throw new BadRequestError('expected {"objects": [...]}');
    const warnings: string[] = [];
    const objects = body.objects.map((value, i) => {
      const result = validateManifest(value, { file: `objects[${i}]` });
      warnings.push(...result.warnings.map((w) => `${w.fieldPath}: ${w.message}`));
      return result.object;
    });
    const result = await this.opts.log.propose({
      op: 'apply',
      objects,
      uids: objects.map(() => newUid()),
      now: new Date().toISOString(),
    });
    return { items: result.applied, warnings };
  }

  private async create(kind: Kind, r: Request) {
    const object = this.validate(kind, await r.body(), undefined);
    const result = await this.opts.log.propose({
      op: 'create',
      object,
      uid: newUid(),
      now: new Date().toISOString(),
    });
    return result.object;
  }

  private async update(kind: Kind, r: Request) {
    const object = this.validate(kind, await r.body(), r.params[0]);
    const result = await this.opts.log.propose({
      op: 'update',
      object: object as never,
      now: new Date().toISOString(),
    });
    return result.object;
  }

  /**
   * A merge patch is applied to the current object and sent as an update
   * conditioned on the version it was applied to; if another write got in
   * between, it is applied again to the newer object.
   */
  private async patch(kind: Kind, r: Request) {
    const type = String(r.headers['content-type'] ?? '').split(';')[0].trim();
    if (type !== 'application/merge-patch+json' && type !== 'application/json') {
      throw new FlotillaError(
        'UnsupportedMediaType',
        `patch type ${type || '(none)'} is not supported; use application/merge-patch+json`,
        415,
      );
    }
    const patch = await r.body();
    const pinned = (patch as { metadata?: { resourceVersion?: string } })?.metadata?.resourceVersion;
    for (let attempt = 0; ; attempt++) {
      const current = this.opts.store.get(kind, r.params[0]);
      if (!current) throw new NotFoundError(kind.toLowerCase(), r.params[0]);
      const merged = applyMergePatch(current, patch) as StoredObject;
      if (!pinned) merged.metadata.resourceVersion = current.metadata.resourceVersion;
      const object = this.validate(kind, merged, r.params[0]);
      try {
        const result = await this.opts.log.propose({ op: 'update', object: object as never, now: new Date().toISOString() });
        return result.object;
      } catch (err) {
        if (!(err instanceof ConflictError) || pinned || attempt >= 5) throw err;
      }
    }
  }

  private async remove(kind: Kind, name: string) {
    const result = await this.opts.log.propose({
      op: 'delete',
      kind: kind as 'Deployment' | 'Service',
      name,
      now: new Date().toISOString(),
    });
    return result.object;
  }

  private validate(kind: Kind, value: unknown, name: string | undefined): Manifest {
    const { object } = validateManifest(value, { file: '<request>' });
    if (object.kind !== kind) {
      throw new BadRequestError(`expected kind ${kind} at this path, got ${object.kind}`);
    }
    if (name !== undefined && object.metadata.name !== name) {
      throw new BadRequestError(
        `the name in the body ("${object.metadata.name}") does not match the URL ("${name}")`,
      );
    }
    return object;
  }
}

function listen(server: http.Server, start: (done: () => void) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    start(() => {
      server.off('error', reject);
      resolve();
    });
  });
}

function versionInfo() {
  const [major, minor] = VERSION.split('.');
  return {
    major,
    minor,
    gitVersion: `v${VERSION}`,
    gitCommit: '',
    buildDate: '',
    goVersion: `node${process.versions.node}`,
    compiler: 'flotilla',
    platform: `${process.platform}/${process.arch}`,
  };
}

function fieldFilter(text: string) {
  const tests = text.split(',').map((part) => {
    const [path, value] = part.split(/!?==?/);
    const negate = part.includes('!=');
    return (o: StoredObject) => (readPath(o, path.trim()) === value?.trim()) !== negate;
  });
  return (o: StoredObject) => tests.every((t) => t(o));
}

function readPath(o: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown>)?.[k], o);
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new BadRequestError('request body is larger than 8 MiB');
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text) throw new BadRequestError('request body is empty');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new BadRequestError(`request body is not valid JSON: ${(err as Error).message}`);
  }
}

function send(res: http.ServerResponse, code: number, body: unknown): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(code, {
    'content-type': typeof body === 'string' ? 'text/plain' : 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

export { failure };
