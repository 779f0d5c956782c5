/**
 * The text of a Flotilla token: `flt1.CAHASH.ID.SECRET`.
 *
 * CAHASH is the SHA-256 (hex) of the cluster CA certificate, so that whoever
 * holds a token can pin the cluster's CA before trusting any server (a
 * joining node, or the CLI talking to a remote agent). ID names the token in
 * listings and revocations; SECRET is what proves possession, and servers
 * keep only its hash. The same shape serves join, admin and read-only tokens.
 */
import crypto from 'node:crypto';
import { InvalidError } from '../errors';

const PREFIX = 'flt1';
const PATTERN = /^flt1\.([0-9a-f]{64})\.([0-9a-f]{12})\.([0-9a-f]{32})$/;

/** A token's parts. */
export interface TokenParts {
  caHash: string;
  id: string;
  secret: string;
}

/** Makes a new token for the CA whose certificate hashes to `caHash`. */
export function newToken(caHash: string): TokenParts & { text: string } {
  const id = crypto.randomBytes(6).toString('hex');
  const secret = crypto.randomBytes(16).toString('hex');
  return { caHash, id, secret, text: formatToken({ caHash, id, secret }) };
}

export function formatToken(parts: TokenParts): string {
  return `${PREFIX}.${parts.caHash}.${parts.id}.${parts.secret}`;
}

/** Parses a token; `what` names where it came from in the error (e.g. "--token"). */
export function parseToken(text: string, what = 'the token'): TokenParts {
  const m = PATTERN.exec(text.trim());
  if (!m) {
    throw new InvalidError(
      `${what} is not a Flotilla token (expected flt1.CAHASH.ID.SECRET, as printed by ` +
        '`flotilla token create`)',
    );
  }
  return { caHash: m[1], id: m[2], secret: m[3] };
}

/** The hash a server keeps instead of the secret. */
export function hashSecret(secret: string): string {
  return crypto.createHash('sha256').update(secret).digest('hex');
}

/** Compares a presented secret with a stored hash in constant time. */
export function secretMatches(secret: string, storedHash: string): boolean {
  const a = Buffer.from(hashSecret(secret), 'hex');
  const b = Buffer.from(storedHash, 'hex');
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}
