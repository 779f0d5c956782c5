/**
 * `flotilla rollout status|history|undo|pause|resume|restart deployment/NAME`,
 * with kubectl's messages. Undo is an ordinary update of the Deployment's
 * template to an older ReplicaSet's template: the server renumbers that
 * revision as the newest and rolls out to it like any other change.
 */
import type { ApiClient } from '../api/client';
import type { Deployment, KubeObject, List } from '../model/k8s-types';
import { InvalidError, RolloutError } from '../errors';
import type { ReplicaSet } from '../model/types';
import {
  RESTARTED_AT_ANNOTATION,
  ROLLBACK_REASON_ANNOTATION,
  ROLLED_BACK_FROM_ANNOTATION,
  byRevision,
  revisionNumber,
  templateOf,
  undoTarget,
} from '../rollout/revisions';
import type { Output } from './context';
import { renderTable } from '../tables/format';
import { objectPath, parseSingleTarget, RESOURCE_TYPES, type ResourceType } from '../tables/kinds';
import { MERGE_PATCH } from './scale';

/** Options of `rollout status` and `apply --wait`. */
export interface StatusOptions {
  /** Give up after this long: `90s`, `5m`, plain seconds; 0 or absent waits forever. */
  timeout?: string;
  /** Poll interval; tests shorten it. */
  intervalMs?: number;
  /** Draw a progress bar (on a terminal) instead of kubectl's lines. */
  tty?: boolean;
}

const DEPLOYMENTS = RESOURCE_TYPES.find((t) => t.kind === 'Deployment') as ResourceType;
const REPLICASETS_PATH = '/apis/apps/v1/namespaces/default/replicasets';
const TEMPLATE_HASH_LABEL = 'pod-template-hash';
const REVISION_ANNOTATION = 'deployment.kubernetes.io/revision';

type Conditions = { type: string; status: string; reason?: string; message?: string }[];

/** Runs one `rollout` subcommand. */
export async function runRollout(
  client: ApiClient,
  action: string,
  words: string[],
  opts: StatusOptions & { revision?: string; toRevision?: string },
  output: Output,
): Promise<void> {
  const name = deploymentName(words);
  switch (action) {
    case 'status':
      return waitForRollout(client, name, opts, output);
    case 'history':
      return printHistory(client, name, parseRevision(opts.revision, '--revision'), output);
    case 'undo':
      return undo(client, name, parseRevision(opts.toRevision, '--to-revision'), output);
    case 'pause':
    case 'resume':
      return setPaused(client, name, action === 'pause', output);
    case 'restart':
      return restart(client, name, output);
    default:
      throw new InvalidError(
        `unknown rollout action "${action}" ` +
          '(expected status, history, undo, pause, resume or restart)',
      );
  }
}

function deploymentName(words: string[]): string {
  const { type, name } = parseSingleTarget(words);
  if (type.kind !== 'Deployment') {
    throw new InvalidError(`rollout works on deployments, not ${type.plural}`);
  }
  return name;
}

function parseRevision(value: string | undefined, flag: string): number {
  if (value === undefined) return 0;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) {
    throw new InvalidError(`${flag}: expected a non-negative integer, got "${value}"`);
  }
  return n;
}

/** What `rollout status` concludes from one look at the Deployment. */
export interface RolloutView {
  done: boolean;
  /** Set when the rollout failed for good. */
  failure?: string;
  failureCode?: 'ProgressDeadlineExceeded' | 'RolledBack';
  message: string;
  desired: number;
  updated: number;
  ready: number;
  available: number;
}

/**
 * kubectl's reading of a Deployment's status, plus Flotilla's completion
 * condition; `watched` is the revision the caller waits for, which fails
 * once the server rolled it back. A Deployment whose current revision is
 * the result of an auto-rollback reports that failure until it changes.
 */
export function viewRollout(d: Deployment, watched?: string): RolloutView {
  const name = d.metadata?.name ?? '';
  const annotations = d.metadata?.annotations ?? {};
  const spec = (d.spec ?? {}) as { replicas?: number };
  const status = (d.status ?? {}) as Record<string, unknown> & { conditions?: Conditions };
  const desired = spec.replicas ?? 1;
  const num = (key: string) => (typeof status[key] === 'number' ? (status[key] as number) : 0);
  const counts = {
    desired,
    updated: num('updatedReplicas'),
    ready: num('readyReplicas'),
    available: num('availableReplicas'),
  };
  const waiting = (message: string): RolloutView => ({ done: false, message, ...counts });
  // The server rolled back the revision being watched, or the one just
  // before the current revision, which the rollback then created.
  const from = annotations[ROLLED_BACK_FROM_ANNOTATION];
  const revision = Number(annotations[REVISION_ANNOTATION] ?? 0);
  if (from !== undefined && (from === watched || revision === Number(from) + 1)) {
    const why = annotations[ROLLBACK_REASON_ANNOTATION] ?? 'the rollout failed';
    const failure = `deployment "${name}" was rolled back from revision ${from}: ${why}`;
    return { done: false, failure, failureCode: 'RolledBack', message: failure, ...counts };
  }
  const generation = (d.metadata as { generation?: number } | undefined)?.generation ?? 0;
  if (generation > num('observedGeneration')) {
    return waiting('Waiting for deployment spec update to be observed...');
  }
  const progressing = status.conditions?.find((c) => c.type === 'Progressing');
  if (progressing?.reason === 'ProgressDeadlineExceeded') {
    const failure = `deployment "${name}" exceeded its progress deadline`;
    return { done: false, failure, message: failure, ...counts };
  }
  const prefix = `Waiting for deployment "${name}" rollout to finish: `;
  if (counts.updated < desired) {
    const of = `${counts.updated} out of ${desired}`;
    return waiting(`${prefix}${of} new replicas have been updated...`);
  }
  const replicas = num('replicas');
  if (replicas > counts.updated) {
    const old = replicas - counts.updated;
    return waiting(`${prefix}${old} old replicas are pending termination...`);
  }
  if (counts.available < counts.updated) {
    const of = `${counts.available} of ${counts.updated}`;
    return waiting(`${prefix}${of} updated replicas are available...`);
  }
  // The controller also waits for terminating pods to be gone.
  if (progressing?.reason !== 'NewReplicaSetAvailable') {
    return waiting(`${prefix}old replicas are pending termination...`);
  }
  return { done: true, message: `deployment "${name}" successfully rolled out`, ...counts };
}

/**
 * Polls the Deployment until its rollout completes (resolves), fails with
 * ProgressDeadlineExceeded, or the timeout passes (rejects with RolloutError).
 */
export async function waitForRollout(
  client: ApiClient,
  name: string,
  opts: StatusOptions,
  output: Output,
): Promise<void> {
  const timeoutMs = parseTimeout(opts.timeout);
  const started = Date.now();
  const tty = opts.tty ?? Boolean(process.stdout.isTTY);
  let last = '';
  let revision: string | undefined;
  for (;;) {
    const d = await client.request<Deployment>('GET', objectPath(DEPLOYMENTS, name));
    revision ??= d.metadata?.annotations?.[REVISION_ANNOTATION];
    const view = viewRollout(d, revision);
    if (tty && !view.done && !view.failure) {
      output.out(`\r${progressBar(view)}`);
    } else if (view.message !== last && !view.failure) {
      output.out(`${tty ? '\r\x1b[K' : ''}${view.message}\n`);
    }
    last = view.message;
    if (view.failure && tty) output.out('\r\x1b[K');
    if (view.failure) {
      throw new RolloutError(view.failureCode ?? 'ProgressDeadlineExceeded', view.failure);
    }
    if (view.done) return;
    if (timeoutMs > 0 && Date.now() - started >= timeoutMs) {
      if (tty) output.out('\n');
      const message = `timed out waiting for the condition on deployment "${name}"`;
      throw new RolloutError('RolloutTimeout', message);
    }
    await sleep(opts.intervalMs ?? 500);
  }
}

/** `[#######.......] 2/4 updated  1/4 ready  1/4 available` */
export function progressBar(view: RolloutView, width = 20): string {
  const share = view.desired === 0 ? 1 : Math.min(1, view.available / view.desired);
  const filled = Math.round(share * width);
  const bar = '#'.repeat(filled) + '.'.repeat(width - filled);
  const of = (n: number) => `${n}/${view.desired}`;
  return (
    `[${bar}] ${of(view.updated)} updated  ${of(view.ready)} ready  ` +
    `${of(view.available)} available\x1b[K`
  );
}

function parseTimeout(text: string | undefined): number {
  if (!text) return 0;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new InvalidError(`--timeout: expected a duration such as 90s or 5m, got "${text}"`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 's'] as number;
  return Number(m[1]) * unit;
}

async function getWithHistory(client: ApiClient, name: string) {
  const d = await client.request<Deployment>('GET', objectPath(DEPLOYMENTS, name));
  const list = await client.request<List<KubeObject>>('GET', REPLICASETS_PATH);
  const uid = d.metadata?.uid;
  const owned = ((list?.items ?? []) as unknown as ReplicaSet[]).filter((rs) =>
    rs.metadata.ownerReferences?.some((o) => o.uid === uid),
  );
  return { d, history: byRevision(owned) };
}

async function printHistory(client: ApiClient, name: string, revision: number, output: Output) {
  const { history } = await getWithHistory(client, name);
  if (revision > 0) {
    const rs = history.find((r) => revisionNumber(r) === revision);
    if (!rs) {
      const message = `unable to find the specified revision ${revision}`;
      throw new RolloutError('RolloutHistoryMissing', message);
    }
    output.out(`deployment.apps/${name} with revision #${revision}\n` + describeTemplate(rs));
    return;
  }
  const rows = history.map((rs) => [
    String(revisionNumber(rs)),
    rs.metadata.annotations?.['kubernetes.io/change-cause'] ?? '<none>',
  ]);
  const table = renderTable({ headers: ['REVISION', 'CHANGE-CAUSE'], rows });
  output.out(`deployment.apps/${name}\n${table}`);
}

function describeTemplate(rs: ReplicaSet): string {
  const t = rs.spec.template;
  const labels = Object.entries(t.metadata?.labels ?? {}).map(([k, v]) => `${k}=${v}`);
  const lines = ['Pod Template:', `  Labels:\t${labels.join('\n\t') || '<none>'}`];
  const annotations = Object.entries(t.metadata?.annotations ?? {}).map(([k, v]) => `${k}: ${v}`);
  if (annotations.length) lines.push(`  Annotations:\t${annotations.join('\n\t')}`);
  lines.push('  Containers:');
  for (const c of t.spec.containers) {
    lines.push(`   ${c.name}:`, `    Image:\t${c.image}`);
    const ports = (c.ports ?? []).map((p) => `${p.containerPort}/${p.protocol ?? 'TCP'}`);
    lines.push(`    Port:\t${ports.join(', ') || '<none>'}`);
  }
  return lines.join('\n') + '\n';
}

async function undo(client: ApiClient, name: string, toRevision: number, output: Output) {
  const { d, history } = await getWithHistory(client, name);
  const current = Number(d.metadata?.annotations?.[REVISION_ANNOTATION] ?? 0);
  const target = undoTarget(history, current, toRevision);
  if ('problem' in target) {
    const message =
      target.problem === 'NoHistory'
        ? `no rollout history found for deployment "${name}"`
        : `unable to find specified revision ${target.revision} in history`;
    throw new RolloutError('RolloutHistoryMissing', message);
  }
  const revision = revisionNumber(target);
  const currentHash = history.find((rs) => revisionNumber(rs) === current)?.metadata.labels?.[
    TEMPLATE_HASH_LABEL
  ];
  if (target.metadata.labels?.[TEMPLATE_HASH_LABEL] === currentHash) {
    const why = `current template already matches revision ${revision}`;
    output.out(`deployment.apps/${name} skipped rollback (${why})\n`);
    return;
  }
  const object = { ...d, spec: { ...d.spec, template: templateOf(target) } };
  await client.request('PUT', objectPath(DEPLOYMENTS, name), object);
  output.out(`deployment.apps/${name} rolled back\n`);
}

async function setPaused(client: ApiClient, name: string, paused: boolean, output: Output) {
  const d = await client.request<Deployment>('GET', objectPath(DEPLOYMENTS, name));
  const already = Boolean((d.spec as { paused?: boolean } | undefined)?.paused) === paused;
  const word = paused ? 'paused' : 'resumed';
  if (already) {
    output.out(`deployment.apps/${name} ${paused ? 'already paused' : 'is not paused'}\n`);
    return;
  }
  const patch = { spec: { paused: paused ? true : null } };
  await client.request('PATCH', objectPath(DEPLOYMENTS, name), patch, MERGE_PATCH);
  output.out(`deployment.apps/${name} ${word}\n`);
}

async function restart(client: ApiClient, name: string, output: Output) {
  const annotations = { [RESTARTED_AT_ANNOTATION]: new Date().toISOString() };
  const patch = { spec: { template: { metadata: { annotations } } } };
  await client.request('PATCH', objectPath(DEPLOYMENTS, name), patch, MERGE_PATCH);
  output.out(`deployment.apps/${name} restarted\n`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
