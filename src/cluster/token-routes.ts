/**
 * The token routes of the admin API, for admins only (the unix socket, an
 * admin token or a member certificate; the API server checks that before
 * handing requests here):
 *
 *   POST   /apis/flotilla.io/v1/tokens      {role?, ttlSeconds?, description?}
 *   GET    /apis/flotilla.io/v1/tokens
 *   DELETE /apis/flotilla.io/v1/tokens/ID
 *
 * A new token's secret is shown once, in the answer to POST; the cluster
 * keeps its hash. Creating and revoking are log records, so they hold on
 * every server once the call returns.
 */
import type http from 'node:http';
import { newToken } from '../auth/token-format';
import { TOKEN_ROLES, listTokens, tokenKey, tokenRecord, type TokenRole } from '../auth/tokens';
import { FlotillaError, InvalidError, NotFoundError } from '../errors';
import { caHash } from '../pki';
import type { Store } from '../store/store';
import { readClusterPki } from './certificates';
import { readJson, sendJson, statusBody } from './http-json';
import type { RaftCommandLog } from './raft-command-log';

export const TOKENS_PATH = '/apis/flotilla.io/v1/tokens';

/** Join tokens expire after a day unless asked otherwise; API tokens do not. */
const DEFAULT_JOIN_TTL_SECONDS = 24 * 3600;
const MAX_TTL_SECONDS = 10 * 365 * 24 * 3600;
const MAX_DESCRIPTION = 200;
const MAX_BODY_BYTES = 64 * 1024;

/** Answers one request under TOKENS_PATH. */
export async function serveTokens(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  store: Store,
  log: RaftCommandLog,
): Promise<void> {
  try {
    const rest = (req.url ?? '').slice(TOKENS_PATH.length).split('?')[0];
    if (rest === '' && req.method === 'GET') {
      req.resume();
      return sendJson(res, 200, tokenList(store));
    }
    if (rest === '' && req.method === 'POST') {
      return sendJson(
        res,
        201,
        await createToken(store, log, await readJson(req, MAX_BODY_BYTES, 'token request')),
      );
    }
    const id = /^\/([0-9a-f]{12})$/.exec(rest)?.[1];
    if (id && req.method === 'DELETE') {
      req.resume();
      await revokeToken(store, log, id);
      return sendJson(res, 200, statusBody(200, 'Success', `token ${id} revoked`));
    }
    req.resume();
    throw new FlotillaError('NotFound', `no token route ${req.method} ${rest || '/'}`, 404);
  } catch (err) {
    const e =
      err instanceof FlotillaError
        ? err
        : new FlotillaError('InternalError', `internal error: ${(err as Error).message}`, 500);
    sendJson(res, e.status, statusBody(e.status, e.code, e.message));
  }
}

function tokenList(store: Store) {
  const items = listTokens(store).map(({ id, role, created, expires, description }) => ({
    id,
    role,
    created,
    expires,
    description,
  }));
  return { kind: 'TokenList', apiVersion: 'flotilla.io/v1', items };
}

async function createToken(store: Store, log: RaftCommandLog, body: unknown) {
  const input = (body ?? {}) as Record<string, unknown>;
  if (typeof input !== 'object' || Array.isArray(input))
    throw new InvalidError('expected an object');
  for (const key of Object.keys(input)) {
    if (!['role', 'ttlSeconds', 'description'].includes(key)) {
      throw new InvalidError(`unknown field "${key}" (expected role, ttlSeconds, description)`);
    }
  }
  const role = (input.role ?? 'join') as TokenRole;
  if (!TOKEN_ROLES.includes(role)) {
    throw new InvalidError(
      `expected join, admin or read-only, got "${String(input.role)}"`,
      'role',
    );
  }
  const ttl = input.ttlSeconds;
  if (ttl !== undefined && !(typeof ttl === 'number' && ttl >= 0 && ttl <= MAX_TTL_SECONDS)) {
    throw new InvalidError('expected seconds from 0 (never expires) to ten years', 'ttlSeconds');
  }
  const description = input.description ?? '';
  if (typeof description !== 'string' || description.length > MAX_DESCRIPTION) {
    throw new InvalidError(`expected text of at most ${MAX_DESCRIPTION} characters`, 'description');
  }
  // Listings print it as it is: control characters could forge rows or colours.
  if (/[\u0000-\u001f\u007f-\u009f]/.test(description)) {
    throw new InvalidError('expected printable text without line breaks', 'description');
  }
  const pki = readClusterPki(store);
  if (!pki) throw new FlotillaError('ServiceUnavailable', 'the cluster has no CA yet', 503);
  const seconds = ttl === undefined ? (role === 'join' ? DEFAULT_JOIN_TTL_SECONDS : 0) : ttl;
  const token = newToken(caHash(pki.caCert));
  const now = new Date();
  const record = tokenRecord(token.id, token.secret, role, {
    now,
    ttlMs: seconds * 1000,
    description,
  });
  await log.submit({ token: record });
  const { hash: _hash, ...shown } = record;
  return { kind: 'Token', apiVersion: 'flotilla.io/v1', ...shown, token: token.text };
}

async function revokeToken(store: Store, log: RaftCommandLog, id: string): Promise<void> {
  if (!store.getMeta(tokenKey(id))) throw new NotFoundError('token', id);
  await log.submit({ revokeToken: { id } });
}
