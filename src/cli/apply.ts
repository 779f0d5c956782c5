import type { ApiClient } from '../api/client';
import type { ApplyResponse } from '../model/k8s-types';
import { InvalidError } from '../errors';
import type { Output } from './context';
import { formatWarning, loadManifests, type LoadedManifests } from './manifest-module';
import { typeOfKind } from '../tables/kinds';

/** Options of `flotilla apply`. */
export interface ApplyOptions {
  filename: string[];
  recursive?: boolean;
  /** Wait for the rollouts of the applied Deployments, as `rollout status` does. */
  wait?: boolean;
  timeout?: string;
}

/** The apply endpoint of the admin API. */
export const APPLY_PATH = '/apis/flotilla.io/v1/apply';

/** Runs `flotilla apply -f PATH...`. */
export async function runApply(client: ApiClient, opts: ApplyOptions, output: Output) {
  if (!opts.filename?.length) throw new InvalidError('must specify one of -f and -k');
  const loaded = await loadManifests(opts.filename, {
    stdin: process.stdin,
    recursive: opts.recursive === true,
  });
  await applyLoaded(client, loaded, output);
  if (!opts.wait) return;
  const { waitForRollout } = await import('./rollout');
  for (const { object } of loaded.objects) {
    if (object.kind !== 'Deployment' || !object.metadata?.name) continue;
    await waitForRollout(client, object.metadata.name, { timeout: opts.timeout }, output);
  }
}

/** Sends loaded manifests to the server in one atomic request and reports each result. */
export async function applyLoaded(client: ApiClient, loaded: LoadedManifests, output: Output) {
  for (const warning of loaded.warnings) output.err(formatWarning(warning));
  if (loaded.objects.length === 0) throw new InvalidError('no objects passed to apply');

  const objects = loaded.objects.map((o) => o.object);
  const res = await client.request<ApplyResponse>('POST', APPLY_PATH, { objects });
  for (const warning of res?.warnings ?? []) output.err(`Warning: ${warning}\n`);

  const items = res?.items ?? [];
  objects.forEach((obj, i) => {
    const name = obj.metadata?.name ?? '';
    const item = items.find((it) => it.kind === obj.kind && it.name === name) ?? items[i];
    const qualified = typeOfKind(obj.kind).qualified;
    // A server that omits an item still applied it: the request is all or nothing.
    output.out(`${qualified}/${name} ${item?.result ?? 'applied'}\n`);
  });
}
