/**
 * The admin API, in the Kubernetes REST dialect for the kinds Flotilla
 * supports, served on the agent's unix socket and on its network listener:
 * discovery, OpenAPI, the resources' verbs (resource-handlers.ts), watch
 * (watch.ts) and server-side Tables (table.ts), enough for an unmodified
 * kubectl. Reads come from the local store; writes become commands of the
 * log. Every error is a Kubernetes Status with the matching HTTP code.
 */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type tls from 'node:tls';
import type pino from 'pino';
import { authenticate, forbidden, stillAdmitted, type Principal } from '../auth/access';
import { FlotillaError, isUserError } from '../errors';
import { serveBackup } from '../db/backup';
import { validateManifest } from '../manifest/validate';
import { newUid } from '../model/names';
import type { ContainerRuntime } from '../runtime/container-runtime';
import { ChangeHistory } from '../store/change-history';
import type { CommandLog } from '../store/command-log';
import type { Store, StoredObject } from '../store/store';
import { VERSION } from '../version';
import { caHash } from '../pki';
import type { Pod } from '../model/k8s-types';
import { openApiFor, openApiIndex } from './openapi';
import { servePodLogs } from './pod-logs';
import { ResourceHandlers, STREAMED, type ApiRequest } from './resource-handlers';
import {
  NAMESPACE,
  RESOURCES,
  coreVersions,
  groupList,
  groupPrefix,
  resourceList,
  type ResourceInfo,
} from './resources';
import { BadRequestError, failure, statusFor } from './status';
import { toTable, wantsTable } from './table';

/** What the API server needs. */
export interface ApiServerOptions {
  store: Store;
  log: CommandLog;
  logger: pino.Logger;
  /** Per-Service balancer counters of this node, for the metrics endpoint. */
  metrics?: () => unknown;
  /** Adds live fields (the Raft role) to a Node before it is returned. */
  decorateNode?: (node: StoredObject) => StoredObject;
  /** This node's container engine, for pod logs (or set later with useRuntime). */
  runtime?: ContainerRuntime;
  /** This node's name: logs are served for the pods placed here. */
  nodeName?: string;
  /** The node's address (`--listen`'s host), for kubeconfigs. */
  nodeAddress?: string;
  /** How many store changes a watch can resume over. */
  historySize?: number;
  /** How often watches that allow bookmarks get one. */
  bookmarkIntervalMs?: number;
}

type Handler = (req: ApiRequest) => Promise<unknown> | unknown;

/** The parts of a Node that a LoadBalancer's ingress is made from. */
interface NodeWithStatus {
  status?: {
    conditions?: { type: string; status: string }[];
    addresses?: { type: string; address: string }[];
  };
}
/** A handler that answers the raw request itself. */
export type RawHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** The key, certificate and CA certificate the network listener serves with. */
export interface ListenerTls {
  key: string;
  cert: string;
  ca: string;
}

const MAX_BODY_BYTES = 8 * 1024 * 1024;
/** How often open answers (watches) check that their caller may still be served. */
const RECHECK_MS = 1000;

/** The admin API's HTTP server. */
export class ApiServer {
  private readonly opts: ApiServerOptions;
  private readonly routes: { method: string; pattern: RegExp; handler: Handler }[] = [];
  private readonly mounts: { prefix: string; handler: RawHandler; ownAuth: boolean }[] = [];
  private readonly servers: http.Server[] = [];
  private readonly tlsServers: https.Server[] = [];
  private caHashCache?: { pem: string; hash: string };
  /** Answers in progress for callers whose right to stay is checked again. */
  private readonly open = new Map<http.ServerResponse, Principal>();
  private recheckTimer?: NodeJS.Timeout;
  private nodeAddresses?: { index: string; ips: string[] };
  private readonly history: ChangeHistory;
  private readonly handlers: ResourceHandlers;
  private tcpAddress?: { host: string; port: number };

  constructor(opts: ApiServerOptions) {
    this.opts = opts;
    this.history = new ChangeHistory(opts.store, opts.historySize);
    this.handlers = new ResourceHandlers({
      store: opts.store,
      log: opts.log,
      history: this.history,
      decorate: (o) => this.decorate(o),
      bookmarkIntervalMs: opts.bookmarkIntervalMs,
    });
    this.defineRoutes();
    this.defineKubernetesRoutes();
  }

  /**
   * Hands every request whose path starts with `prefix` to `handler`
   * untouched: how the cluster's own endpoints share the node's listener.
   * Requests are authenticated and authorised first unless `ownAuth` says
   * the handler checks its callers itself.
   */
  mount(prefix: string, handler: RawHandler, opts: { ownAuth?: boolean } = {}): void {
    this.mounts.push({ prefix, handler, ownAuth: opts.ownAuth ?? false });
  }

  /** Sets the container engine that pod logs are read from. */
  useRuntime(runtime: ContainerRuntime): void {
    this.opts.runtime = runtime;
  }

  /** Listens on a unix socket that only the owner may use. */
  async listenUnix(socketPath: string): Promise<void> {
    fs.rmSync(socketPath, { force: true });
    const server = this.newServer();
    await listen(server, (done) => server.listen(socketPath, done));
    fs.chmodSync(socketPath, 0o600);
  }

  /**
   * Listens on a TCP address (the node's --listen) and returns the bound
   * port. With `tls` it is HTTPS, asking clients for a certificate from the
   * cluster CA without requiring one (API callers bring bearer tokens);
   * without, plain HTTP, which only tests use.
   */
  async listenTcp(host: string, port: number, tls?: ListenerTls): Promise<number> {
    const server = this.newServer(tls);
    await listen(server, (done) => server.listen(port, host, done));
    const bound = (server.address() as { port: number }).port;
    this.tcpAddress = { host, port: bound };
    return bound;
  }

  /** Serves new TLS connections with renewed material; open connections keep theirs. */
  updateTls(material: ListenerTls): void {
    for (const server of this.tlsServers) server.setSecureContext(secureOptions(material));
  }

  /** The HTTPS listeners, for other protocols on the same port (the balancer's tunnel). */
  get networkListeners(): readonly https.Server[] {
    return this.tlsServers;
  }

  async close(): Promise<void> {
    clearInterval(this.recheckTimer);
    this.history.close();
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

  private newServer(material?: ListenerTls): http.Server {
    const serve = (req: http.IncomingMessage, res: http.ServerResponse) => {
      const mount = this.mounts.find((m) => (req.url ?? '').startsWith(m.prefix));
      if (mount?.ownAuth) return mount.handler(req, res);
      if (!this.admit(req, res)) return;
      if (mount) mount.handler(req, res);
      else void this.handle(req, res);
    };
    let server: http.Server;
    if (material) {
      const secure = https.createServer(
        { ...secureOptions(material), requestCert: true, rejectUnauthorized: false },
        serve,
      );
      this.tlsServers.push(secure);
      server = secure;
    } else {
      server = http.createServer(serve);
    }
    this.servers.push(server);
    return server;
  }

  /**
   * Authenticates and authorises a request (see src/auth/access.ts);
   * answers 401 or 403 itself and returns false when it is refused.
   */
  private admit(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    const path = (req.url ?? '').split('?')[0];
    const auth = authenticate(req, this.opts.store, this.clusterCaHash());
    if (!auth.ok) {
      this.opts.logger.debug(
        { remote: req.socket.remoteAddress, path, reason: auth.reason },
        'API request refused: not authenticated',
      );
      req.resume();
      sendStatus(res, 401, 'Unauthorized', auth.message);
      return false;
    }
    const why = forbidden(auth.principal, req.method ?? 'GET', path);
    if (why) {
      req.resume();
      sendStatus(res, 403, 'Forbidden', why);
      return false;
    }
    const principal = auth.principal;
    if (principal && (principal.token !== undefined || principal.node !== undefined)) {
      this.open.set(res, principal);
      res.once('close', () => this.open.delete(res));
      this.recheckOpenAnswers();
    }
    return true;
  }

  /**
   * Every second while answers are open, ends those whose token was
   * revoked or expired, or whose member was removed, since they started: a
   * watch may otherwise stream for as long as its client asked.
   */
  private recheckOpenAnswers(): void {
    if (this.recheckTimer) return;
    this.recheckTimer = setInterval(() => {
      const caHash = this.clusterCaHash();
      for (const [res, principal] of this.open) {
        if (stillAdmitted(principal, this.opts.store, caHash)) continue;
        this.opts.logger.info({ caller: principal.name }, 'access withdrawn; answer ended');
        this.open.delete(res);
        res.destroy();
      }
      if (this.open.size === 0) {
        clearInterval(this.recheckTimer);
        this.recheckTimer = undefined;
      }
    }, RECHECK_MS);
    this.recheckTimer.unref();
  }

  private clusterCaHash(): string | undefined {
    const pem = this.opts.store.getMeta('ca_cert');
    if (!pem) return undefined;
    if (this.caHashCache?.pem !== pem) this.caHashCache = { pem, hash: caHash(pem) };
    return this.caHashCache.hash;
  }

  private route(method: string, path: string, handler: Handler): void {
    const names = path.replace(/:name/g, '([a-z0-9.-]+)').replace(/:ns/g, '([a-z0-9-]+)');
    const pattern = new RegExp(`^${names}$`);
    this.routes.push({ method, pattern, handler });
  }

  private defineRoutes(): void {
    this.route('GET', '/version', () => versionInfo());
    this.route('GET', '/healthz', () => 'ok');
    this.route('GET', '/livez', () => 'ok');
    this.route('GET', '/readyz', () => 'ok');
    this.route('POST', '/apis/flotilla.io/v1/apply', (r) => this.apply(r));
    this.route('GET', '/apis/flotilla.io/v1/metrics', () => ({
      kind: 'BalancerMetrics',
      services: this.opts.metrics?.() ?? {},
    }));
    this.route('GET', '/apis/flotilla.io/v1/info', () => this.info());
    this.route('GET', '/apis/flotilla.io/v1/backup', (r) => {
      serveBackup(this.opts.store.db, r.raw, r.res);
      return STREAMED;
    });
  }

  /** Discovery, OpenAPI and the resources in Kubernetes' URL layout. */
  private defineKubernetesRoutes(): void {
    this.route('GET', '/api', () => coreVersions(this.serverAddress()));
    this.route('GET', '/apis', () => groupList());
    this.route('GET', '/api/v1', () => resourceList(''));
    this.route('GET', '/apis/apps/v1', () => resourceList('apps'));
    this.route('GET', '/openapi/v2', (r) => sendEmptyOpenApiV2(r.res));
    this.route('GET', '/openapi/v3', () => openApiIndex());
    this.route('GET', '/openapi/v3/api/v1', () => openApiFor('/openapi/v3/api/v1'));
    this.route('GET', '/openapi/v3/apis/apps/v1', () => openApiFor('/openapi/v3/apis/apps/v1'));
    this.route('GET', '/api/v1/namespaces', (r) => this.listNamespaces(r));
    this.route('GET', '/api/v1/namespaces/:name', (r) => this.getNamespace(r));
    for (const res of RESOURCES) if (res.kind !== 'Namespace') this.defineResource(res);
  }

  private defineResource(res: ResourceInfo): void {
    const h = this.handlers;
    const prefix = groupPrefix(res.group);
    const scope = res.namespaced ? '/namespaces/:ns' : '';
    const collection = `${prefix}${scope}/${res.name}`;
    const item = `${collection}/:name`;
    // Every namespaced route carries the namespace first; only `default` exists.
    const scoped = (fn: (name: string, r: ApiRequest) => unknown) => (r: ApiRequest) => {
      const [ns, name] = res.namespaced ? r.params : ['', r.params[0]];
      if (res.namespaced) checkNamespace(ns);
      return fn(name, r);
    };
    if (res.namespaced) this.route('GET', `${prefix}/${res.name}`, (r) => h.list(res, r));
    this.route(
      'GET',
      collection,
      scoped((_, r) => h.list(res, r)),
    );
    this.route(
      'GET',
      item,
      scoped((name, r) => h.get(res, name, r)),
    );
    if (res.writable) {
      this.route(
        'POST',
        collection,
        scoped((_, r) => h.create(res, r)),
      );
      this.route(
        'PUT',
        item,
        scoped((name, r) => h.update(res, name, r)),
      );
      this.route(
        'PATCH',
        item,
        scoped((name, r) => h.patch(res, name, r)),
      );
    }
    if (res.deletable)
      this.route(
        'DELETE',
        item,
        scoped((name, r) => h.remove(res, name, r)),
      );
    if (res.kind === 'Node') {
      this.route(
        'PATCH',
        item,
        scoped((name, r) => h.patchNode(res, name, r)),
      );
    }
    if (res.kind === 'Deployment') {
      this.route(
        'GET',
        `${item}/scale`,
        scoped((name) => h.getScale(res, name)),
      );
      this.route(
        'PUT',
        `${item}/scale`,
        scoped((name, r) => h.updateScale(res, name, r)),
      );
      this.route(
        'PATCH',
        `${item}/scale`,
        scoped((name, r) => h.updateScale(res, name, r)),
      );
      this.route(
        'GET',
        `${item}/status`,
        scoped((name) => h.find(res, name)),
      );
    }
    if (res.kind === 'Pod') {
      this.route(
        'GET',
        `${item}/log`,
        scoped(async (name, r) => {
          const pod = h.find(res, name) as unknown as Pod;
          const source = { runtime: this.opts.runtime, nodeName: this.opts.nodeName };
          await servePodLogs(source, pod, r.query, r.res);
          return STREAMED;
        }),
      );
    }
  }

  private listNamespaces(r: ApiRequest): unknown {
    const version = this.opts.store.getMeta('applied_index') ?? '0';
    const items = [this.namespace()];
    if (wantsTable(r.headers.accept)) {
      return toTable('Namespace', items, version, { now: Date.now(), pods: () => [] });
    }
    const metadata = { resourceVersion: version };
    return { kind: 'NamespaceList', apiVersion: 'v1', metadata, items };
  }

  private getNamespace(r: ApiRequest): unknown {
    checkNamespace(r.params[0]);
    const ns = this.namespace();
    if (!wantsTable(r.headers.accept)) return ns;
    return toTable('Namespace', [ns], '1', { now: Date.now(), pods: () => [] });
  }

  // The one namespace is not stored; it is as old as the oldest node.
  private namespace() {
    const nodes = this.opts.store.list('Node');
    const created = nodes.map((n) => n.metadata.creationTimestamp as string).sort()[0];
    return {
      kind: 'Namespace',
      apiVersion: 'v1',
      metadata: {
        name: NAMESPACE,
        uid: this.opts.store.getMeta('cluster_id') ?? '',
        resourceVersion: '1',
        ...(created ? { creationTimestamp: created } : {}),
        labels: { 'kubernetes.io/metadata.name': NAMESPACE },
      },
      spec: { finalizers: ['kubernetes'] },
      status: { phase: 'Active' },
    };
  }

  /** What `flotilla kubeconfig` needs: where this node's API listens. */
  private info() {
    return {
      kind: 'AgentInfo',
      apiVersion: 'flotilla.io/v1',
      nodeName: this.opts.nodeName ?? this.opts.store.getMeta('node_name') ?? '',
      clusterId: this.opts.store.getMeta('cluster_id') ?? '',
      server: this.tcpAddress
        ? `${this.tlsServers.length > 0 ? 'https' : 'http'}://${this.serverAddress()}`
        : undefined,
      caCert: this.opts.store.getMeta('ca_cert'),
    };
  }

  private serverAddress(): string {
    if (!this.tcpAddress) return '';
    const wildcard = this.tcpAddress.host === '0.0.0.0' || this.tcpAddress.host === '::';
    const host = wildcard ? (this.opts.nodeAddress ?? '127.0.0.1') : this.tcpAddress.host;
    const shown = host.includes(':') ? `[${host}]` : host;
    return `${shown}:${this.tcpAddress.port}`;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://flotilla');
    const method = req.method ?? 'GET';
    const warnings: string[] = [];
    try {
      const match = this.match(method, url.pathname);
      const result = await match.handler({
        method,
        params: match.params,
        query: url.searchParams,
        headers: req.headers,
        body: () => readJson(req),
        raw: req,
        res,
        warnings,
      });
      if (result === STREAMED) return;
      for (const w of warnings) res.appendHeader('warning', `299 - ${JSON.stringify(w)}`);
      send(res, method === 'POST' && isObjectResult(result) ? 201 : 200, result);
    } catch (err) {
      const status = statusFor(err);
      if (!isUserError(err) && status.code >= 500) {
        this.opts.logger.error({ err, method, path: url.pathname }, 'api request failed');
      }
      if (res.headersSent) res.destroy();
      else send(res, status.code, status);
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
    throw new FlotillaError(
      'NotFound',
      `the server could not find the requested resource (${path})`,
      404,
    );
  }

  private decorate(object: StoredObject): StoredObject {
    if (object.kind === 'Node' && this.opts.decorateNode) return this.opts.decorateNode(object);
    if (object.kind === 'Service') return this.withIngress(object);
    return object;
  }

  /**
   * A LoadBalancer Service listens on its port on every node, so its
   * ingress is every Ready node's address (what kubectl shows as
   * EXTERNAL-IP), worked out when read rather than stored.
   */
  private withIngress(service: StoredObject): StoredObject {
    const spec = service.spec as { type?: string } | undefined;
    if (spec?.type !== 'LoadBalancer') return service;
    const ingress = this.readyNodeAddresses().map((ip) => ({ ip }));
    const status = (service.status ?? {}) as Record<string, unknown>;
    return { ...service, status: { ...status, loadBalancer: { ingress } } };
  }

  /** Ready nodes' addresses, worked out once per applied change (a list decorates many). */
  private readyNodeAddresses(): string[] {
    const index = this.opts.store.getMeta('applied_index') ?? '0';
    if (this.nodeAddresses?.index === index) return this.nodeAddresses.ips;
    const ips: string[] = [];
    for (const node of this.opts.store.list<NodeWithStatus>('Node')) {
      const ready = node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
      const ip = node.status?.addresses?.find((a) => a.type === 'InternalIP')?.address;
      if (ready && ip && !ips.includes(ip)) ips.push(ip);
    }
    this.nodeAddresses = { index, ips };
    return ips;
  }

  private async apply(r: ApiRequest) {
    const body = (await r.body()) as { objects?: unknown[] };
    if (!body || !Array.isArray(body.objects))
      throw new BadRequestError('expected {"objects": [...]}');
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

/**
 * An OpenAPI v2 document with no definitions: kubectl reads v2 only as
 * protobuf, where an empty body is a valid empty document. Kinds it has no
 * schema for are then not validated on the client, so an unknown kind
 * reaches kubectl's own "no matches for kind" error instead of a failed
 * download; known kinds are validated on the server (see openapi.ts).
 */
function sendEmptyOpenApiV2(res: http.ServerResponse): typeof STREAMED {
  res.writeHead(200, {
    'content-type': 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf',
    'content-length': 0,
  });
  res.end();
  return STREAMED;
}

/** Only the default namespace exists; any other is NotFound, saying so. */
function checkNamespace(ns: string): void {
  if (ns === NAMESPACE) return;
  throw new FlotillaError(
    'NotFound',
    `namespaces "${ns}" not found: Flotilla serves only the "default" namespace`,
    404,
  );
}

// Creation answers 201 with the object, as Kubernetes does; the batch apply
// endpoint (no kind) keeps 200.
function isObjectResult(result: unknown): boolean {
  return typeof result === 'object' && result !== null && 'kind' in result && 'metadata' in result;
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

/** The server side of TLS: the certificate is sent with the CA's, so clients can pin it. */
function secureOptions(material: ListenerTls): tls.SecureContextOptions {
  return {
    key: material.key,
    cert: `${material.cert.trim()}\n${material.ca.trim()}\n`,
    ca: material.ca,
  };
}

function sendStatus(res: http.ServerResponse, code: number, reason: string, message: string): void {
  const body = JSON.stringify({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    code,
  });
  res.writeHead(code, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    ...(code === 401 ? { 'www-authenticate': 'Bearer realm="flotilla"' } : {}),
  });
  res.end(body);
}
