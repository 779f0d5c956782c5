import crypto from 'node:crypto';

/** Annotation on a pod naming the Deployment it belongs to. */
export const DEPLOYMENT_ANNOTATION = 'flotilla.io/deployment';
/** Annotation on a Node saying its Raft role: leader, voter or non-voter. */
export const ROLE_ANNOTATION = 'flotilla.io/role';

const ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

/**
 * A random suffix for generated names, from the same consonant-and-digit
 * alphabet Kubernetes uses so that suffixes never spell words.
 */
export function randomSuffix(length = 5): string {
  const bytes = crypto.randomBytes(length);
  let out = '';
  for (const b of bytes) out += ALPHABET[b % ALPHABET.length];
  return out;
}

/** A fresh object uid. */
export function newUid(): string {
  return crypto.randomUUID();
}
