/**
 * `flotilla cordon|uncordon|drain NODE` and `flotilla node remove NODE`.
 * Cordoning patches the Node's `spec.unschedulable` as kubectl does, so
 * both tools see the same state; draining evicts by deleting each pod, and
 * the pod's Deployment recreates it on a schedulable node.
 */
import type { ApiClient } from '../api/client';
import type { Node, Pod } from '../model/k8s-types';
import { DrainTimeoutError, FlotillaError, InvalidError } from '../errors';
import type { Output } from './context';
import { MERGE_PATCH } from './scale';

/** Options of `flotilla drain`. */
export interface DrainOptions {
  /** How long to wait for the node to have no pods: `90s`, `5m`; 0 waits forever. */
  timeout?: string;
  /** Poll interval in ms; tests shorten it. */
  pollMs?: number;
}

const NODES = '/api/v1/nodes';
const PODS = '/api/v1/namespaces/default/pods';
const DEFAULT_DRAIN_TIMEOUT = '5m';

/** Runs `flotilla cordon NODE`. */
export async function runCordon(client: ApiClient, name: string, output: Output): Promise<void> {
  output.out(`${await setUnschedulable(client, name, true)}\n`);
}

/** Runs `flotilla uncordon NODE`. */
export async function runUncordon(client: ApiClient, name: string, output: Output): Promise<void> {
  output.out(`${await setUnschedulable(client, name, false)}\n`);
}

/**
 * Runs `flotilla drain NODE`: cordons it, deletes every pod on it (each is
 * drained from the balancers before its container stops) and waits until
 * the node has none left, terminating ones included.
 */
export async function runDrain(
  client: ApiClient,
  name: string,
  opts: DrainOptions,
  output: Output,
): Promise<void> {
  const timeoutMs = parseDuration(opts.timeout ?? DEFAULT_DRAIN_TIMEOUT);
  output.out(`${await setUnschedulable(client, name, true)}\n`);

  for (const pod of await podsOn(client, name)) {
    const podName = pod.metadata?.name;
    if (!podName || pod.metadata?.deletionTimestamp) continue;
    await deletePod(client, podName);
    output.out(`pod/${podName} evicted\n`);
  }

  await waitUntilEmpty(client, name, timeoutMs, opts.pollMs ?? 500);
  output.out(`node/${name} drained\n`);
}

/** Runs `flotilla node remove NODE`. */
export async function runNodeRemove(
  client: ApiClient,
  name: string,
  output: Output,
): Promise<void> {
  checkName(name);
  const path = `/apis/flotilla.io/v1/nodes/${name}/remove`;
  const answer = await client.request<{ message?: string }>('POST', path, {});
  output.out(`${answer.message ?? `node/${name} removed`}\n`);
}

async function setUnschedulable(client: ApiClient, name: string, on: boolean): Promise<string> {
  checkName(name);
  const node = await client.request<Node>('GET', `${NODES}/${name}`);
  const verb = on ? 'cordoned' : 'uncordoned';
  if (Boolean(node.spec?.unschedulable) === on) return `node/${name} already ${verb}`;
  const patch = { spec: { unschedulable: on ? true : null } };
  await client.request('PATCH', `${NODES}/${name}`, patch, MERGE_PATCH);
  return `node/${name} ${verb}`;
}

async function podsOn(client: ApiClient, node: string): Promise<Pod[]> {
  const selector = encodeURIComponent(`spec.nodeName=${node}`);
  const list = await client.request<{ items?: Pod[] }>('GET', `${PODS}?fieldSelector=${selector}`);
  return list.items ?? [];
}

async function deletePod(client: ApiClient, name: string): Promise<void> {
  try {
    await client.request('DELETE', `${PODS}/${name}`);
  } catch (err) {
    // A pod that went away meanwhile is as evicted as it gets.
    if (!(err instanceof FlotillaError && err.status === 404)) throw err;
  }
}

async function waitUntilEmpty(
  client: ApiClient,
  name: string,
  timeoutMs: number,
  pollMs: number,
): Promise<void> {
  const started = Date.now();
  for (;;) {
    const left = (await podsOn(client, name)).length;
    if (left === 0) return;
    if (timeoutMs > 0 && Date.now() - started >= timeoutMs) {
      throw new DrainTimeoutError(name, left);
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

function checkName(name: string): void {
  if (!/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(name)) {
    throw new InvalidError(`"${name}" is not a valid node name`);
  }
}

function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new InvalidError(`--timeout: expected a duration such as 90s or 5m, got "${text}"`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 's'] as number;
  return Number(m[1]) * unit;
}
