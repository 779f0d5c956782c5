/**
 * Who is calling the admin API and what they may do.
 *
 * The unix socket is the root-only way in (file permissions guard it) and
 * is an admin. On the network listener, a caller is a member (a client
 * certificate from the cluster CA, verified by TLS), or holds an admin or
 * read-only token sent as `Authorization: Bearer`. Everyone else gets 401,
 * except on the health checks. Read-only callers may read everything but
 * the backup (it holds the CA key) and the token list.
 */
import type http from 'node:http';
import type tls from 'node:tls';
import { isRemovedNode } from '../store/apply-nodes';
import type { Store } from '../store/store';
import { checkToken, type TokenRefusal } from './tokens';

/** An authenticated caller. */
export interface Principal {
  /** For logs: "local socket", "node NAME" or "token ID". */
  name: string;
  role: 'admin' | 'read-only';
  /** The bearer token presented, checked again while a watch stays open. */
  token?: string;
  /** The member whose certificate was presented, checked again likewise. */
  node?: string;
}

/** Paths anyone may call: load balancers and systemd probe them. */
const PUBLIC_PATHS = new Set(['/healthz', '/livez', '/readyz']);
const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** Reads that only admins may do. */
const ADMIN_READS = ['/apis/flotilla.io/v1/backup', '/apis/flotilla.io/v1/tokens'];

/** The outcome of authenticating a request. */
export type Authentication =
  | { ok: true; principal?: Principal }
  | { ok: false; status: 401; message: string; reason: TokenRefusal | 'missing' };

/**
 * Authenticates `req`. `caHash` is the hash of the cluster CA certificate
 * that tokens must pin (undefined before the cluster has one).
 */
export function authenticate(
  req: http.IncomingMessage,
  store: Store,
  caHash: string | undefined,
  now = new Date(),
): Authentication {
  const socket = req.socket as tls.TLSSocket;
  // A unix socket has no remote address.
  if (typeof socket.remoteAddress !== 'string') {
    return { ok: true, principal: { name: 'local socket', role: 'admin' } };
  }
  const path = (req.url ?? '').split('?')[0];
  if (socket.encrypted && socket.authorized) {
    const cn = peerCommonName(socket);
    // A removed member's certificate stays valid for TLS until it expires.
    if (typeof cn === 'string' && !isRemovedNode(store, cn)) {
      return { ok: true, principal: { name: `node ${cn}`, role: 'admin', node: cn } };
    }
  }
  const header = req.headers.authorization ?? '';
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
  if (!bearer) {
    if (PUBLIC_PATHS.has(path)) return { ok: true };
    return {
      ok: false,
      status: 401,
      reason: 'missing',
      message: 'authentication required: send an admin or read-only token as a bearer token',
    };
  }
  const check = caHash ? checkToken(store, bearer, caHash, now) : undefined;
  if (!check?.ok || check.record.role === 'join') {
    if (PUBLIC_PATHS.has(path)) return { ok: true };
    return {
      ok: false,
      status: 401,
      reason: check && !check.ok ? check.reason : 'unknown',
      message: 'the token is not valid here (unknown, revoked, expired or a join token)',
    };
  }
  const role = check.record.role === 'admin' ? 'admin' : 'read-only';
  return { ok: true, principal: { name: `token ${check.record.id}`, role, token: bearer } };
}

/** Why `principal` may not make this request, or undefined when it may. */
export function forbidden(
  principal: Principal | undefined,
  method: string,
  path: string,
): string | undefined {
  if (!principal) return PUBLIC_PATHS.has(path) ? undefined : 'authentication required';
  if (principal.role === 'admin') return undefined;
  if (!READ_METHODS.has(method)) return `${principal.name} is read-only: ${method} is refused`;
  if (ADMIN_READS.some((p) => path === p || path.startsWith(`${p}/`))) {
    return `${principal.name} is read-only: ${path} is for admins`;
  }
  return undefined;
}

/**
 * True while `principal` would still be let in: its token not revoked or
 * expired, its member not removed. Long-lived answers (watches, followed
 * logs) are ended when this turns false.
 */
export function stillAdmitted(
  principal: Principal,
  store: Store,
  caHash: string | undefined,
  now = new Date(),
): boolean {
  if (principal.node !== undefined) return !isRemovedNode(store, principal.node);
  if (principal.token === undefined) return true;
  return caHash !== undefined && checkToken(store, principal.token, caHash, now).ok;
}

// Parsing the peer certificate costs more than the rest of a Raft request:
// once per connection is enough, since a connection keeps its certificate.
const commonNames = new WeakMap<tls.TLSSocket, string | undefined>();

/** The CN of the certificate a TLS client presented, read once per connection. */
export function peerCommonName(socket: tls.TLSSocket): string | undefined {
  if (!commonNames.has(socket)) {
    const cn = socket.getPeerCertificate().subject?.CN;
    commonNames.set(socket, typeof cn === 'string' ? cn : undefined);
  }
  return commonNames.get(socket);
}
