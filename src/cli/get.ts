import type { ApiClient } from '../api/client';
import type { Event, KubeObject, List, Pod } from '../model/k8s-types';
import { ApiError, InvalidError } from '../errors';
import { renderTable } from '../tables/format';
import { buildEventTable, buildTable } from '../tables/printers';
import {
  objectPath,
  parseTargets,
  RESOURCE_TYPES,
  type ResourceType,
  type Target,
} from '../tables/kinds';
import { matchesSelector, parseSelector, type Requirement } from './selector';
import { settleErrors, type Output } from './context';

/** Options of `flotilla get`. */
export interface GetOptions {
  output?: string;
  selector?: string;
}

const FORMATS = ['wide', 'json', 'yaml', 'name'];
const EVENT_WORDS = ['events', 'event', 'ev'];
const EVENTS_PATH = '/api/v1/namespaces/default/events';

/** Objects of one kind, fetched for one target. */
interface Fetched {
  type: ResourceType;
  objects: KubeObject[];
  named: boolean;
}

/** Runs `flotilla get TYPE[,TYPE] [NAME...]`; resolves once everything is printed. */
export async function runGet(
  client: ApiClient,
  words: string[],
  opts: GetOptions,
  output: Output,
): Promise<void> {
  // kubectl users write -o=json, which commander hands over as "=json".
  const format = (opts.output ?? '').replace(/^=/, '');
  if (format !== '' && !FORMATS.includes(format)) {
    throw new InvalidError(`unknown output format "${format}" (expected ${FORMATS.join('|')})`);
  }
  if (EVENT_WORDS.includes(words[0]?.toLowerCase())) {
    await printEvents(client, words.slice(1), format, output);
    return;
  }
  const targets = parseTargets(words);
  const selector = parseSelector(opts.selector ?? '');

  const fetched: Fetched[] = [];
  const errors: unknown[] = [];
  for (const target of targets) {
    try {
      fetched.push(await fetchTarget(client, target, opts.selector, selector));
    } catch (err) {
      // Only an answer about one object lets the others go on.
      if (!(err instanceof ApiError)) throw err;
      errors.push(err);
    }
  }

  if (fetched.length > 0 || errors.length === 0) {
    await printFetched(client, fetched, targets, format, output);
  }
  settleErrors(errors, output);
}

async function fetchTarget(
  client: ApiClient,
  target: Target,
  rawSelector: string | undefined,
  selector: Requirement[],
): Promise<Fetched> {
  const { type, name } = target;
  if (name !== undefined) {
    const obj = await client.request<KubeObject>('GET', objectPath(type, name));
    return { type, objects: [withTypeMeta(type, obj)], named: true };
  }

  const query = rawSelector ? `?labelSelector=${encodeURIComponent(rawSelector)}` : '';
  const list = await client.request<List>('GET', type.collectionPath + query);
  // The server may ignore labelSelector for some kinds; filtering again is cheap.
  const objects = (list?.items ?? [])
    .filter((obj) => matchesSelector(obj.metadata?.labels, selector))
    .map((obj) => withTypeMeta(type, obj));
  return { type, objects, named: false };
}

/** Fills kind and apiVersion, which list items omit, as kubectl does. */
export function withTypeMeta(type: ResourceType, obj: KubeObject): KubeObject {
  return { kind: type.kind, apiVersion: type.apiVersion, ...obj };
}

async function printFetched(
  client: ApiClient,
  fetched: Fetched[],
  targets: Target[],
  format: string,
  output: Output,
): Promise<void> {
  const objects = fetched.flatMap((f) => f.objects);
  if (format === 'json' || format === 'yaml') {
    const single = targets.length === 1 && fetched.length === 1 && fetched[0].named;
    const value = single ? objects[0] : asList(objects);
    output.out(format === 'json' ? JSON.stringify(value, null, 4) + '\n' : await toYaml(value));
    return;
  }
  if (format === 'name') {
    if (objects.length === 0 && !targets.some((t) => t.name)) output.err(noResources(targets));
    for (const f of fetched) {
      for (const obj of f.objects) output.out(`${f.type.qualified}/${obj.metadata?.name}\n`);
    }
    return;
  }
  await printTables(client, fetched, targets, format === 'wide', output);
}

/** Wraps objects in the `v1 List` kubectl prints for several objects. */
export function asList(items: KubeObject[]): List & KubeObject {
  return { apiVersion: 'v1', kind: 'List', metadata: { resourceVersion: '' }, items };
}

async function toYaml(value: unknown): Promise<string> {
  const YAML = await import('yaml');
  return YAML.stringify(value);
}

async function printTables(
  client: ApiClient,
  fetched: Fetched[],
  targets: Target[],
  wide: boolean,
  output: Output,
): Promise<void> {
  const kinds = new Set(targets.map((t) => t.type.kind));
  const groups = groupByType(fetched).filter((g) => g.objects.length > 0);
  if (groups.length === 0) {
    if (!targets.some((t) => t.name !== undefined)) output.err(noResources(targets));
    return;
  }

  const now = Date.now();
  const pods = wide && kinds.has('Node') ? await listPods(client) : undefined;
  groups.forEach((group, i) => {
    const namePrefix = kinds.size > 1 ? `${group.type.qualified}/` : undefined;
    const table = buildTable(group.type.kind, group.objects, { now, wide, namePrefix, pods });
    output.out((i > 0 ? '\n' : '') + renderTable(table));
  });
}

function groupByType(fetched: Fetched[]): { type: ResourceType; objects: KubeObject[] }[] {
  return RESOURCE_TYPES.map((type) => ({
    type,
    objects: fetched.filter((f) => f.type === type).flatMap((f) => f.objects),
  })).sort((a, b) => firstIndex(fetched, a.type) - firstIndex(fetched, b.type));
}

function firstIndex(fetched: Fetched[], type: ResourceType): number {
  const i = fetched.findIndex((f) => f.type === type);
  return i < 0 ? fetched.length : i;
}

function noResources(targets: Target[]): string {
  const onlyNodes = targets.every((t) => t.type.kind === 'Node');
  return onlyNodes ? 'No resources found\n' : 'No resources found in default namespace.\n';
}

/** Every pod in the namespace. */
export async function listPods(client: ApiClient, rawSelector?: string): Promise<Pod[]> {
  const podType = RESOURCE_TYPES.find((t) => t.kind === 'Pod') as ResourceType;
  const query = rawSelector ? `?labelSelector=${encodeURIComponent(rawSelector)}` : '';
  const list = await client.request<List<Pod>>('GET', podType.collectionPath + query);
  return list?.items ?? [];
}

/**
 * `get events [NAME...]`: kubectl's event table, oldest first; names select
 * the events about those objects.
 */
async function printEvents(client: ApiClient, names: string[], format: string, output: Output) {
  const list = await client.request<List<Event>>('GET', EVENTS_PATH);
  const events = (list?.items ?? [])
    .filter((e) => names.length === 0 || names.includes(e.involvedObject?.name ?? ''))
    .map((e) => ({ kind: 'Event', apiVersion: 'v1', ...e }))
    .sort((a, b) => (a.lastTimestamp ?? '').localeCompare(b.lastTimestamp ?? ''));
  if (format === 'json' || format === 'yaml') {
    const value = asList(events);
    output.out(format === 'json' ? JSON.stringify(value, null, 4) + '\n' : await toYaml(value));
    return;
  }
  if (events.length === 0) {
    output.err('No resources found in default namespace.\n');
    return;
  }
  if (format === 'name') {
    for (const e of events) output.out(`event/${e.metadata?.name}\n`);
    return;
  }
  output.out(renderTable(buildEventTable(events, Date.now())));
}
