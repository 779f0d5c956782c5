/**
 * The Kubernetes verbs on Flotilla's resources: list (and watch), get,
 * create, update, patch and delete, the scale and status subresources of
 * Deployments, and pod logs. Reads come from the local store; writes become
 * commands of the log.
 */
import type http from 'node:http';
import { ConflictError, FlotillaError, NotFoundError } from '../errors';
import type { Manifest } from '../manifest/types';
import { validateManifest } from '../manifest/validate';
import { newUid } from '../model/names';
import type { ChangeHistory } from '../store/change-history';
import type { CommandLog } from '../store/command-log';
import type { Kind, Store, StoredObject } from '../store/store';
import { applyJsonPatch } from './json-patch';
import { applyMergePatch } from './merge-patch';
import { NAMESPACE, apiVersionOf, type ResourceInfo } from './resources';
import { parseFieldSelector, parseLabelSelector } from './selectors';
import { BadRequestError } from './status';
import { applyStrategicMergePatch } from './strategic-merge-patch';
import { toTable, wantsTable } from './table';
import { serveWatch } from './watch';
import type { Pod } from '../model/k8s-types';

/** One request as the handlers see it. */
export interface ApiRequest {
  method: string;
  params: string[];
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  body: () => Promise<unknown>;
  raw: http.IncomingMessage;
  res: http.ServerResponse;
  /** Warnings to send as `Warning` headers with the answer. */
  warnings: string[];
}

/** Returned by a handler that has written the answer itself. */
export const STREAMED = Symbol('streamed');

/** What the handlers need from the server. */
export interface HandlerDeps {
  store: Store;
  log: CommandLog;
  history: ChangeHistory;
  decorate: (object: StoredObject) => StoredObject;
  bookmarkIntervalMs?: number;
}

type PatchFn = (current: unknown, patch: unknown) => unknown;

const PATCHERS: Record<string, PatchFn> = {
  'application/merge-patch+json': applyMergePatch,
  'application/json': applyMergePatch,
  'application/strategic-merge-patch+json': applyStrategicMergePatch,
  'application/json-patch+json': applyJsonPatch,
};

/** Serves the verbs of every resource of the store. */
export class ResourceHandlers {
  private readonly deps: HandlerDeps;

  constructor(deps: HandlerDeps) {
    this.deps = deps;
  }

  /** Lists, or watches with `?watch=true`. */
  list(res: ResourceInfo, r: ApiRequest): unknown {
    const kind = res.kind as Kind;
    const matches = this.matcher(r.query);
    if (isTrue(r.query.get('watch'))) {
      serveWatch(
        {
          kind,
          apiVersion: apiVersionOf(res),
          history: this.deps.history,
          current: () => this.objects(kind),
          matches,
          encode: (o) => this.encodeOne(kind, this.deps.decorate(o), r),
          query: r.query,
          bookmarkIntervalMs: this.deps.bookmarkIntervalMs,
        },
        r.raw,
        r.res,
      );
      return STREAMED;
    }
    const version = String(this.deps.history.latest);
    const items = this.objects(kind).filter(matches);
    if (wantsTable(r.headers.accept)) return this.table(kind, items, version, r);
    const metadata = { resourceVersion: version };
    return { kind: `${kind}List`, apiVersion: apiVersionOf(res), metadata, items };
  }

  /** One object, as itself or as a one-row Table. */
  get(res: ResourceInfo, name: string, r: ApiRequest): unknown {
    const object = this.find(res, name);
    if (!wantsTable(r.headers.accept)) return object;
    return this.table(res.kind as Kind, [object], object.metadata.resourceVersion, r);
  }

  /** Creates a Deployment or Service. */
  async create(res: ResourceInfo, r: ApiRequest): Promise<unknown> {
    const object = this.validate(res, await r.body(), undefined, r);
    if (isDryRun(r)) return object;
    const result = await this.deps.log.propose({ op: 'create', object, uid: newUid(), now: now() });
    return result.object;
  }

  /** Replaces an object; a stale resourceVersion is a conflict. */
  async update(res: ResourceInfo, name: string, r: ApiRequest): Promise<unknown> {
    const object = this.validate(res, await r.body(), name, r);
    if (isDryRun(r)) return asStored(object, this.deps.store.get(res.kind as Kind, name));
    return this.store(object);
  }

  /**
   * Applies a patch to the current object and stores the result as an
   * update conditioned on the version it was applied to. A patch that does
   * not pin a resourceVersion is applied again to the newer object if
   * another write got in between, as Kubernetes does.
   */
  async patch(res: ResourceInfo, name: string, r: ApiRequest): Promise<unknown> {
    const apply = patcherFor(r.headers['content-type']);
    const patch = await r.body();
    for (let attempt = 0; ; attempt++) {
      const current = this.find(res, name);
      const patched = apply(current, patch) as StoredObject;
      const pinned = pinnedVersion(patched, current);
      if (!pinned && patched?.metadata) {
        patched.metadata.resourceVersion = current.metadata.resourceVersion;
      }
      const object = this.validate(res, patched, name, r);
      if (isDryRun(r)) return asStored(object, current);
      try {
        return await this.store(object);
      } catch (err) {
        if (!(err instanceof ConflictError) || pinned || attempt >= 5) throw err;
      }
    }
  }

  /**
   * Patches a Node, of which only `spec.unschedulable` may change (what
   * `kubectl cordon` and `uncordon` send); everything else a node reports
   * itself.
   */
  async patchNode(res: ResourceInfo, name: string, r: ApiRequest): Promise<unknown> {
    const apply = patcherFor(r.headers['content-type']);
    const current = this.find(res, name);
    const patched = apply(current, await r.body()) as { spec?: { unschedulable?: unknown } };
    const value = patched?.spec?.unschedulable ?? false;
    if (typeof value !== 'boolean') {
      throw new BadRequestError(`spec.unschedulable: expected a boolean, got ${String(value)}`);
    }
    if (isDryRun(r)) return patched;
    const command = { op: 'setUnschedulable' as const, name, unschedulable: value };
    const result = await this.deps.log.propose(command);
    return this.deps.decorate(result.object as StoredObject);
  }

  /** Deletes a Deployment or Service; a pod is terminated and replaced by its owner. */
  async remove(res: ResourceInfo, name: string, r: ApiRequest): Promise<unknown> {
    const existing = this.find(res, name);
    if (isDryRun(r)) return existing;
    if (res.kind === 'Pod') {
      const uid = existing.metadata.uid;
      await this.deps.log.propose({ op: 'terminatePods', pods: [{ name, uid }], now: now() });
      return this.deps.store.get('Pod', name) ?? existing;
    }
    const kind = res.kind as 'Deployment' | 'Service';
    const result = await this.deps.log.propose({ op: 'delete', kind, name, now: now() });
    return result.object;
  }

  /** The autoscaling/v1 Scale of a Deployment. */
  getScale(res: ResourceInfo, name: string): unknown {
    return scaleOf(this.find(res, name));
  }

  /** Changes a Deployment's replicas through its Scale (PUT or PATCH). */
  async updateScale(res: ResourceInfo, name: string, r: ApiRequest): Promise<unknown> {
    const body = await r.body();
    const change = r.method === 'PUT' ? () => body : patcherFor(r.headers['content-type']);
    for (let attempt = 0; ; attempt++) {
      const current = this.find(res, name);
      const scale = change(scaleOf(current), body) as Scale;
      const replicas = replicasOf(scale);
      const pinned = scale.metadata?.resourceVersion;
      const metadata = { ...current.metadata };
      if (pinned) metadata.resourceVersion = pinned;
      const spec = { ...(current.spec as object), replicas };
      const object = this.validate(res, { ...current, metadata, spec }, name, r);
      if (isDryRun(r)) return scaleOf(object as unknown as StoredObject);
      try {
        return scaleOf((await this.store(object)) as StoredObject);
      } catch (err) {
        if (!(err instanceof ConflictError) || pinned || attempt >= 5) throw err;
      }
    }
  }

  /** An object of `res` by name, or NotFound in Kubernetes' words. */
  find(res: ResourceInfo, name: string): StoredObject {
    const object = this.deps.store.get(res.kind as Kind, name);
    if (!object) throw new NotFoundError(qualified(res), name);
    return this.deps.decorate(object);
  }

  private async store(object: Manifest): Promise<unknown> {
    const result = await this.deps.log.propose({
      op: 'update',
      object: object as never,
      now: now(),
    });
    return result.object;
  }

  private objects(kind: Kind): StoredObject[] {
    return this.deps.store.list(kind).map((o) => this.deps.decorate(o));
  }

  private matcher(query: URLSearchParams): (o: StoredObject) => boolean {
    const labels = query.get('labelSelector');
    const fields = query.get('fieldSelector');
    const byLabels = labels ? parseLabelSelector(labels) : () => true;
    const byFields = fields ? parseFieldSelector(fields) : () => true;
    return (o) => byLabels((o.metadata.labels as Record<string, string>) ?? {}) && byFields(o);
  }

  private table(kind: Kind, items: StoredObject[], version: string, r: ApiRequest): unknown {
    return toTable(kind, items as never, version, {
      now: Date.now(),
      pods: () => this.deps.store.list<Pod>('Pod'),
      includeObject: r.query.get('includeObject'),
    });
  }

  private encodeOne(kind: Kind, object: StoredObject, r: ApiRequest): unknown {
    if (!wantsTable(r.headers.accept)) return object;
    return this.table(kind, [object], object.metadata.resourceVersion, r);
  }

  private validate(
    res: ResourceInfo,
    value: unknown,
    name: string | undefined,
    r: ApiRequest,
  ): Manifest {
    if (!res.writable) {
      throw new FlotillaError('MethodNotAllowed', `${qualified(res)} are read-only`, 405);
    }
    const { object, warnings } = validateManifest(value, { file: '<request>' });
    const texts = warnings.map((w) => `${w.fieldPath}: ${w.message}`);
    if (texts.length > 0 && r.query.get('fieldValidation') === 'Strict') {
      throw new BadRequestError(`strict decoding error: ${texts.join(', ')}`);
    }
    if (r.query.get('fieldValidation') !== 'Ignore') r.warnings.push(...texts);
    if (object.kind !== res.kind) {
      throw new BadRequestError(`expected kind ${res.kind} at this path, got ${object.kind}`);
    }
    if (name !== undefined && object.metadata.name !== name) {
      throw new BadRequestError(
        `the name in the body ("${object.metadata.name}") does not match the URL ("${name}")`,
      );
    }
    return object;
  }
}

/** An autoscaling/v1 Scale. */
interface Scale {
  metadata?: { resourceVersion?: string };
  spec?: { replicas?: number };
}

function scaleOf(d: StoredObject): unknown {
  const spec = d.spec as { replicas?: number; selector?: { matchLabels?: Record<string, string> } };
  const status = (d.status ?? {}) as { replicas?: number };
  const selector = Object.entries(spec.selector?.matchLabels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  const { name, uid, resourceVersion, creationTimestamp } = d.metadata;
  return {
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata: { name, namespace: NAMESPACE, uid, resourceVersion, creationTimestamp },
    spec: { replicas: spec.replicas ?? 1 },
    status: { replicas: status.replicas ?? 0, selector },
  };
}

/**
 * What a dry run answers: the object as the store would keep it, with the
 * server's metadata and the current status.
 */
function asStored(object: Manifest, current: StoredObject | undefined): unknown {
  if (!current) return object;
  const metadata = { ...current.metadata, ...object.metadata };
  return { ...object, metadata, status: current.status };
}

function replicasOf(scale: Scale): number {
  const replicas = scale?.spec?.replicas;
  if (!Number.isInteger(replicas) || (replicas as number) < 0) {
    throw new BadRequestError(
      `spec.replicas: expected a non-negative integer, got ${String(replicas)}`,
    );
  }
  return replicas as number;
}

function patcherFor(contentType: string | undefined): PatchFn {
  const type = String(contentType ?? '')
    .split(';')[0]
    .trim();
  const patcher = PATCHERS[type];
  if (patcher) return patcher;
  const hint =
    type === 'application/apply-patch+yaml'
      ? 'server-side apply is not supported; use kubectl apply without --server-side'
      : `patch type ${type || '(none)'} is not supported`;
  throw new FlotillaError(
    'UnsupportedMediaType',
    `${hint}; use a strategic merge, JSON merge or JSON patch`,
    415,
  );
}

function pinnedVersion(patched: StoredObject, current: StoredObject): string | undefined {
  const version = patched?.metadata?.resourceVersion;
  return version && version !== current.metadata.resourceVersion ? version : undefined;
}

/** `deployments.apps` or `services`: how Kubernetes names a resource in messages. */
export function qualified(res: ResourceInfo): string {
  return res.group ? `${res.name}.${res.group}` : res.name;
}

function isTrue(value: string | null): boolean {
  return value === 'true' || value === '1';
}

function isDryRun(r: ApiRequest): boolean {
  return r.query.getAll('dryRun').includes('All');
}

function now(): string {
  return new Date().toISOString();
}
