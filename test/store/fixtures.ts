/**
 * Builders shared by the store, agent and API tests: validated manifests
 * (so every Kubernetes default is filled in, as the API would store them),
 * a store on a real SQLite file in a temp dir, and a way to wait for store
 * changes instead of sleeping.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase, type Database } from '../../src/db/open';
import type { Deployment, Manifest, Service } from '../../src/manifest/types';
import { validateManifest } from '../../src/manifest/validate';
import { DEPLOYMENT_ANNOTATION } from '../../src/model/names';
import type { Pod, ReplicaSet } from '../../src/model/types';
import { TEMPLATE_HASH_LABEL } from '../../src/store/apply';
import { LocalCommandLog } from '../../src/store/command-log';
import type { Command, CommandResult } from '../../src/store/commands';
import { Store, type Change } from '../../src/store/store';

/** A fixed time, so that commands are reproducible. */
export const NOW = '2030-01-01T00:00:00.000Z';

/** Options of {@link deployment}. */
export interface DeploymentOptions {
  replicas?: number;
  image?: string;
  labels?: Record<string, string>;
  strategy?: unknown;
  ports?: { name?: string; containerPort: number }[];
  pullPolicy?: string;
}

/** A validated Deployment `name` running one container. */
export function deployment(name: string, opts: DeploymentOptions = {}): Deployment {
  const app = { app: name };
  const container: Record<string, unknown> = {
    name: 'main',
    image: opts.image ?? 'registry.test/app:1',
  };
  if (opts.ports) container.ports = opts.ports;
  if (opts.pullPolicy) container.imagePullPolicy = opts.pullPolicy;
  const spec: Record<string, unknown> = {
    replicas: opts.replicas ?? 2,
    selector: { matchLabels: app },
    template: { metadata: { labels: app }, spec: { containers: [container] } },
  };
  if (opts.strategy) spec.strategy = opts.strategy;
  const raw = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, labels: opts.labels ?? app },
    spec,
  };
  return validateManifest(raw, { file: 'fixture' }).object as Deployment;
}

/** Options of {@link service}. */
export interface ServiceOptions {
  type?: 'ClusterIP' | 'NodePort' | 'LoadBalancer';
  selector?: Record<string, string>;
  ports?: { name?: string; port: number; targetPort?: number | string; nodePort?: number }[];
}

/** A validated Service `name`. */
export function service(name: string, opts: ServiceOptions = {}): Service {
  const raw = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name },
    spec: {
      type: opts.type ?? 'ClusterIP',
      selector: opts.selector ?? { app: name },
      ports: opts.ports ?? [{ port: 80, targetPort: 8080 }],
    },
  };
  return validateManifest(raw, { file: 'fixture' }).object as Service;
}

/** A pod of `rs` as the deployment controller would make it. */
export function podOf(rs: ReplicaSet, name: string, nodeName?: string): Pod {
  const template = rs.spec.template;
  const deployment = rs.metadata.ownerReferences?.[0]?.name ?? '';
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'default',
      uid: `uid-${name}`,
      resourceVersion: '',
      creationTimestamp: NOW,
      labels: { ...template.metadata.labels },
      annotations: { [DEPLOYMENT_ANNOTATION]: deployment },
      ownerReferences: [
        {
          apiVersion: 'apps/v1',
          kind: 'ReplicaSet',
          name: rs.metadata.name,
          uid: rs.metadata.uid,
          controller: true,
        },
      ],
    },
    spec: { ...structuredClone(template.spec), ...(nodeName ? { nodeName } : {}) },
    status: { phase: 'Pending' },
  };
}

/** The template hash label of a pod or ReplicaSet. */
export function hashOf(object: { metadata: { labels?: Record<string, string> } }): string {
  return object.metadata.labels?.[TEMPLATE_HASH_LABEL] ?? '';
}

/** A database, store and log on a fresh temp dir, closed by `close`. */
export class TestStore {
  readonly dir: string;
  readonly file: string;
  db: Database;
  store: Store;
  log: LocalCommandLog;
  private uidSerial = 0;

  constructor(prefix = 'flotilla-store-') {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    this.file = path.join(this.dir, 'state.db');
    this.db = openDatabase(this.file);
    this.store = new Store(this.db);
    this.log = new LocalCommandLog(this.store);
  }

  /** Commits one command. */
  commit(command: Command): CommandResult {
    return this.log.commit(command);
  }

  /** Commits an apply of `objects` with predictable uids. */
  apply(...objects: Manifest[]): CommandResult {
    const uids = objects.map(() => this.nextUid());
    return this.commit({ op: 'apply', objects: structuredClone(objects), uids, now: NOW });
  }

  /** A uid that differs on every call but is the same across runs. */
  nextUid(): string {
    this.uidSerial += 1;
    return `00000000-0000-4000-8000-${String(this.uidSerial).padStart(12, '0')}`;
  }

  /** Closes and opens the database again, as a restarted agent would. */
  reopen(): void {
    this.db.close();
    this.db = openDatabase(this.file);
    this.store = new Store(this.db);
    this.log = new LocalCommandLog(this.store);
  }

  /** Number of rows in the command log. */
  logLength(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM command_log').get() as { n: number }).n;
  }

  close(): void {
    if (this.db.open) this.db.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Resolves with the first value `probe` returns that is not undefined,
 * checking now and after every committed change; rejects after `timeoutMs`.
 */
export function waitForStore<T>(
  store: Store,
  probe: () => T | undefined,
  timeoutMs = 3000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const check = (): boolean => {
      const value = probe();
      if (value === undefined) return false;
      cleanup();
      resolve(value);
      return true;
    };
    const onChange = (_changes: Change[]) => void check();
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`store did not reach the expected state within ${timeoutMs} ms`));
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      store.off('change', onChange);
    };
    store.on('change', onChange);
    check();
  });
}
