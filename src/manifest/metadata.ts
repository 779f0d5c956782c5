import {
  type Checker,
  type FieldPath,
  type FieldRules,
  optInt,
  optString,
  optStringMap,
  readObject,
  reqNonEmptyString,
} from './checker';
import { checkLabelValue, checkQualifiedName } from './syntax';
import type { ObjectMeta, PodTemplateMeta } from './types';

/** Kubernetes' limit on the total size of an object's annotations. */
export const MAX_ANNOTATIONS_BYTES = 256 * 1024;

const OBJECT_META_RULES: FieldRules = {
  name: 'known',
  namespace: 'known',
  labels: 'known',
  annotations: 'known',
  uid: 'known',
  generation: 'known',
  resourceVersion: 'known',
  creationTimestamp: 'known',
  generateName: 'ignored',
  finalizers: 'ignored',
  ownerReferences: 'ignored',
  selfLink: 'serverSet',
  managedFields: 'serverSet',
  deletionTimestamp: 'serverSet',
  deletionGracePeriodSeconds: 'serverSet',
};

const TEMPLATE_META_RULES: FieldRules = {
  labels: 'known',
  annotations: 'known',
  // Pods are named after their Deployment; these are never used.
  name: 'serverSet',
  namespace: 'serverSet',
  creationTimestamp: 'serverSet',
  generateName: 'serverSet',
};

/**
 * Reads an object's metadata; `checkName` returns the "expected ..."
 * phrase when the name is not valid for this kind of object.
 */
export function readObjectMeta(
  c: Checker,
  value: unknown,
  path: FieldPath,
  checkName: (name: string) => string | undefined,
): ObjectMeta {
  const fields = readObject(c, value ?? {}, path, OBJECT_META_RULES);
  const name = reqNonEmptyString(c, fields.name, [...path, 'name']);
  const nameProblem = checkName(name);
  if (nameProblem) c.fail([...path, 'name'], `${nameProblem}, got ${JSON.stringify(name)}`);

  const meta: ObjectMeta = { name };
  const namespace = readNamespace(c, fields.namespace, [...path, 'namespace']);
  if (namespace !== undefined) meta.namespace = namespace;
  Object.assign(meta, readLabelsAndAnnotations(c, fields, path));
  Object.assign(meta, readServerFields(c, fields, path));
  return meta;
}

/** Reads the metadata of a pod template, whose labels the selector must match. */
export function readTemplateMeta(c: Checker, value: unknown, path: FieldPath): PodTemplateMeta {
  const fields = readObject(c, value ?? {}, path, TEMPLATE_META_RULES);
  const { labels, annotations } = readLabelsAndAnnotations(c, fields, path);
  const meta: PodTemplateMeta = { labels: labels ?? {} };
  if (annotations !== undefined) meta.annotations = annotations;
  return meta;
}

function readNamespace(c: Checker, value: unknown, path: FieldPath): string | undefined {
  const namespace = optString(c, value, path);
  if (namespace === undefined || namespace === 'default') return namespace;
  c.fail(path, `namespace ${JSON.stringify(namespace)} is not supported; ` +
    'Flotilla has only the "default" namespace');
}

function readLabelsAndAnnotations(
  c: Checker,
  fields: Record<string, unknown>,
  path: FieldPath,
): { labels?: Record<string, string>; annotations?: Record<string, string> } {
  const labels = readLabels(c, fields.labels, [...path, 'labels']);
  const annotations = readAnnotations(c, fields.annotations, [...path, 'annotations']);
  const result: { labels?: Record<string, string>; annotations?: Record<string, string> } = {};
  if (labels !== undefined) result.labels = labels;
  if (annotations !== undefined) result.annotations = annotations;
  return result;
}

/** Reads a map of labels (also used for selectors and node selectors). */
export function readLabels(
  c: Checker,
  value: unknown,
  path: FieldPath,
): Record<string, string> | undefined {
  return optStringMap(c, value, path, (key, text, entryPath) => {
    checkKey(c, key, entryPath);
    const problem = checkLabelValue(text);
    if (problem) c.fail(entryPath, `${problem}, got ${JSON.stringify(text)}`);
  });
}

function readAnnotations(
  c: Checker,
  value: unknown,
  path: FieldPath,
): Record<string, string> | undefined {
  let bytes = 0;
  return optStringMap(c, value, path, (key, text, entryPath) => {
    checkKey(c, key, entryPath);
    bytes += Buffer.byteLength(key) + Buffer.byteLength(text);
    if (bytes > MAX_ANNOTATIONS_BYTES) {
      c.fail(path, `expected annotations of at most ${MAX_ANNOTATIONS_BYTES} bytes in total`);
    }
  });
}

/** Fails unless `key` is a valid label or annotation key. */
export function checkKey(c: Checker, key: string, path: FieldPath): void {
  const problem = checkQualifiedName(key);
  if (problem) c.fail(path, `invalid key ${JSON.stringify(key)}: ${problem}`);
}

function readServerFields(c: Checker, fields: Record<string, unknown>, path: FieldPath): object {
  const result: Partial<ObjectMeta> = {};
  const uid = optString(c, fields.uid, [...path, 'uid']);
  const generation = optInt(c, fields.generation, [...path, 'generation'], {
    min: 0,
    max: Number.MAX_SAFE_INTEGER,
  });
  const version = optString(c, fields.resourceVersion, [...path, 'resourceVersion']);
  const created = optString(c, fields.creationTimestamp, [...path, 'creationTimestamp']);
  if (created !== undefined && Number.isNaN(Date.parse(created))) {
    const got = JSON.stringify(created);
    c.fail([...path, 'creationTimestamp'], `expected an RFC 3339 time, got ${got}`);
  }
  if (uid !== undefined) result.uid = uid;
  if (generation !== undefined) result.generation = generation;
  if (version !== undefined) result.resourceVersion = version;
  if (created !== undefined) result.creationTimestamp = created;
  return result;
}
