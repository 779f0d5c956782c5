/**
 * The cluster's tokens as the replicated state keeps them: one meta value
 * per token (`token/ID`), holding its role, expiry and the hash of its
 * secret, never the secret itself. Join tokens admit new servers; admin and
 * read-only tokens authenticate callers of the API's network listener.
 * Creating and revoking go through the Raft log, so every server answers
 * alike and a revocation holds on every server once committed.
 */
import type { Store } from '../store/store';
import { hashSecret, parseToken, secretMatches } from './token-format';

/** What a token allows. */
export type TokenRole = 'join' | 'admin' | 'read-only';

export const TOKEN_ROLES: readonly TokenRole[] = ['join', 'admin', 'read-only'];

/** A token as stored: everything but the secret. */
export interface TokenRecord {
  id: string;
  role: TokenRole;
  /** sha256 hex of the secret. */
  hash: string;
  /** ISO time of creation. */
  created: string;
  /** ISO time after which the token is refused; null for never. */
  expires: string | null;
  description: string;
}

const TOKEN_PREFIX = 'token/';

/** The meta key of token `id`. */
export function tokenKey(id: string): string {
  return `${TOKEN_PREFIX}${id}`;
}

/** True for the meta keys that hold tokens. */
export function isTokenKey(key: string): boolean {
  return key.startsWith(TOKEN_PREFIX);
}

/** A record for a new token with secret `secret`. */
export function tokenRecord(
  id: string,
  secret: string,
  role: TokenRole,
  opts: { now: Date; ttlMs?: number; description?: string },
): TokenRecord {
  const expires = opts.ttlMs ? new Date(opts.now.getTime() + opts.ttlMs).toISOString() : null;
  return {
    id,
    role,
    hash: hashSecret(secret),
    created: opts.now.toISOString(),
    expires,
    description: opts.description ?? '',
  };
}

/** Every stored token, oldest first. */
export function listTokens(store: Store): TokenRecord[] {
  const records = [...store.metaWithPrefix(TOKEN_PREFIX).values()].map(
    (v) => JSON.parse(v) as TokenRecord,
  );
  return records.sort((a, b) => a.created.localeCompare(b.created) || a.id.localeCompare(b.id));
}

/** Why a presented token is refused; kept vague towards callers on purpose. */
export type TokenRefusal = 'malformed' | 'unknown' | 'expired' | 'wrong-ca';

/** The outcome of checking a presented token. */
export type TokenCheck = { ok: true; record: TokenRecord } | { ok: false; reason: TokenRefusal };

/**
 * Checks a presented token against the stored ones: well formed, pinning
 * this cluster's CA, known (a revoked token is unknown), not expired, and
 * with the right secret.
 */
export function checkToken(store: Store, text: string, caHash: string, now: Date): TokenCheck {
  let parts;
  try {
    parts = parseToken(text);
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  if (parts.caHash !== caHash) return { ok: false, reason: 'wrong-ca' };
  const stored = store.getMeta(tokenKey(parts.id));
  if (!stored) return { ok: false, reason: 'unknown' };
  const record = JSON.parse(stored) as TokenRecord;
  if (!secretMatches(parts.secret, record.hash)) return { ok: false, reason: 'unknown' };
  if (record.expires !== null && Date.parse(record.expires) <= now.getTime()) {
    return { ok: false, reason: 'expired' };
  }
  return { ok: true, record };
}

/** Stores a token record (applying a committed `token` log record). */
export function saveToken(store: Store, record: TokenRecord): void {
  store.setMeta(tokenKey(record.id), JSON.stringify(record));
}

/** Forgets a token (applying a committed `revokeToken` log record). */
export function deleteToken(store: Store, id: string): void {
  store.deleteMeta(tokenKey(id));
}
