/**
 * Kubernetes' strategic merge patch for the kinds Flotilla serves: a JSON
 * merge patch in which some lists are merged element by element on a merge
 * key (containers by name, ports by containerPort or port, env by name)
 * instead of being replaced, plus the `$patch`, `$retainKeys`,
 * `$setElementOrder` and `$deleteFromPrimitiveList` directives that
 * kubectl apply, edit and set send.
 */
import { cloneJson } from '../model/canonical';
import { BadRequestError } from './status';

type Json = Record<string, unknown>;

const ORDER_PREFIX = '$setElementOrder/';
const DELETE_PRIMITIVE_PREFIX = '$deleteFromPrimitiveList/';

/**
 * Merge keys of the lists that merge element-wise, found by the field path
 * with list positions left out; the longest matching suffix wins.
 */
const MERGE_KEYS: [suffix: string, key: string][] = [
  ['containers.ports', 'containerPort'],
  ['initContainers.ports', 'containerPort'],
  ['spec.ports', 'port'],
  ['containers', 'name'],
  ['initContainers', 'name'],
  ['env', 'name'],
  ['volumeMounts', 'mountPath'],
  ['volumeDevices', 'devicePath'],
  ['volumes', 'name'],
  ['imagePullSecrets', 'name'],
  ['hostAliases', 'ip'],
  ['conditions', 'type'],
  ['ownerReferences', 'uid'],
];

/** Lists of primitives that merge as sets instead of being replaced. */
const MERGED_PRIMITIVE_LISTS = new Set(['metadata.finalizers']);

/** The merge key of the list at `path`, or undefined when it is replaced whole. */
export function mergeKeyOf(path: string[]): string | undefined {
  const joined = path.join('.');
  for (const [suffix, key] of MERGE_KEYS) {
    if (joined === suffix || joined.endsWith(`.${suffix}`)) return key;
  }
  return undefined;
}

/** Applies a strategic merge patch to a copy of `target`. */
export function applyStrategicMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) throw new BadRequestError('a strategic merge patch must be a JSON object');
  return mergeMap(isObject(target) ? cloneJson(target) : {}, patch, []);
}

function mergeMap(target: Json, patch: Json, path: string[]): Json | undefined {
  const directive = patch.$patch;
  if (directive === 'delete') return undefined;
  if (directive === 'replace') return withoutDirectives(patch);
  if (directive !== undefined) {
    throw new BadRequestError(`unknown $patch directive "${String(directive)}" at ${where(path)}`);
  }
  const result = { ...target };
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith('$')) continue;
    const fieldPath = [...path, key];
    if (value === null) delete result[key];
    else if (isObject(value)) {
      const merged = mergeMap(isObject(result[key]) ? (result[key] as Json) : {}, value, fieldPath);
      if (merged === undefined) delete result[key];
      else result[key] = merged;
    } else if (Array.isArray(value)) result[key] = mergeList(result[key], value, fieldPath);
    else result[key] = value;
  }
  applyListDirectives(result, patch, path);
  const retain = patch.$retainKeys;
  if (Array.isArray(retain)) {
    for (const key of Object.keys(result)) if (!retain.includes(key)) delete result[key];
  }
  return result;
}

function applyListDirectives(result: Json, patch: Json, path: string[]): void {
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith(DELETE_PRIMITIVE_PREFIX) && Array.isArray(value)) {
      const field = key.slice(DELETE_PRIMITIVE_PREFIX.length);
      const list = result[field];
      if (Array.isArray(list)) result[field] = list.filter((v) => !value.includes(v));
    }
  }
  for (const [key, value] of Object.entries(patch)) {
    if (!key.startsWith(ORDER_PREFIX) || !Array.isArray(value)) continue;
    const field = key.slice(ORDER_PREFIX.length);
    const list = result[field];
    if (Array.isArray(list)) result[field] = reorder(list, value, mergeKeyOf([...path, field]));
  }
}

function mergeList(target: unknown, patch: unknown[], path: string[]): unknown[] {
  const current = Array.isArray(target) ? target : [];
  const key = mergeKeyOf(path);
  if (MERGED_PRIMITIVE_LISTS.has(path.join('.'))) {
    return [...current, ...patch.filter((v) => !current.includes(v))];
  }
  if (!key) return patch.map((v) => (isObject(v) ? withoutDirectives(v) : v));
  if (patch.some((v) => isObject(v) && v.$patch === 'replace')) {
    return patch.filter((v) => !(isObject(v) && v.$patch === 'replace')).map(
      (v) => (isObject(v) ? withoutDirectives(v) : v),
    );
  }
  return mergeByKey(current, patch, key, path);
}

function mergeByKey(current: unknown[], patch: unknown[], key: string, path: string[]): unknown[] {
  const result = [...current];
  for (const item of patch) {
    if (!isObject(item) || item[key] === undefined) {
      throw new BadRequestError(`every element of ${where(path)} needs its merge key "${key}"`);
    }
    const at = result.findIndex((e) => isObject(e) && e[key] === item[key]);
    if (item.$patch === 'delete') {
      if (at >= 0) result.splice(at, 1);
      continue;
    }
    const base = at >= 0 ? (result[at] as Json) : {};
    const merged = mergeMap(base, item, path) as Json;
    if (at >= 0) result[at] = merged;
    else result.push(merged);
  }
  return result;
}

/**
 * Orders `list` as `order` says (elements named there come first, in that
 * order); elements the order does not name keep their place after them.
 */
function reorder(list: unknown[], order: unknown[], key: string | undefined): unknown[] {
  const id = (v: unknown) => JSON.stringify(key && isObject(v) ? v[key] : v);
  const wanted = order.map(id);
  const ranked = list.filter((v) => wanted.includes(id(v)));
  ranked.sort((a, b) => wanted.indexOf(id(a)) - wanted.indexOf(id(b)));
  return [...ranked, ...list.filter((v) => !wanted.includes(id(v)))];
}

function withoutDirectives(value: Json): Json {
  const result: Json = {};
  for (const [k, v] of Object.entries(value)) if (!k.startsWith('$')) result[k] = v;
  return result;
}

function isObject(value: unknown): value is Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function where(path: string[]): string {
  return path.join('.') || '(root)';
}
