import crypto from 'node:crypto';

/**
 * JSON with object keys sorted at every depth, so that two values equal in
 * content give the same text whatever order their keys were written in.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    const v = (value as Record<string, unknown>)[key];
    if (v !== undefined) out[key] = sortKeys(v);
  }
  return out;
}

/** True when two JSON values have the same content. */
export function sameContent(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

/**
 * A short lowercase hash of a value's content, safe in object names and
 * label values (the pod-template-hash of a ReplicaSet, for example).
 */
export function contentHash(value: unknown, length = 10): string {
  const digest = crypto.createHash('sha256').update(canonicalJson(value)).digest();
  // Base 36 of the first 8 bytes: letters and digits only, as Kubernetes'
  // hashes are, and no vowels problem worth caring about here.
  const n = digest.readBigUInt64BE(0);
  return n.toString(36).padStart(length, '0').slice(0, length);
}

/** A deep copy of a JSON value. */
export function cloneJson<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
