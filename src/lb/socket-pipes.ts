import type { Socket } from 'node:net';

// Errors that mean no byte reached the backend: safe to try another one.
const CONNECT_FAILURES = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'EADDRNOTAVAIL',
  'ETIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  // Through another server's tunnel: that server refused the target (the
  // pod moved away) or its certificate did not verify; nothing reached a pod.
  'ERR_TUNNEL_403',
  'ERR_TUNNEL_BAD_ANSWER',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
]);

/** Other endpoints a request or connection tries after refused connects. */
export const REFUSED_RETRIES = 3;

// Errors on a reused connection the backend may have closed while idle.
const STALE_CONNECTION = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);

/** A failure error with the system or undici code it carries. */
export type CodedError = Error & { code?: string };

/** True if `err` happened while connecting, before anything was sent. */
export function isConnectFailure(err: CodedError): boolean {
  return err.code !== undefined && CONNECT_FAILURES.has(err.code);
}

/** True if `err` is the backend dropping a connection before answering. */
export function isStaleConnection(err: CodedError): boolean {
  return err.code !== undefined && STALE_CONNECTION.has(err.code);
}

/** An error marking a backend that did not accept within `ms`. */
export function connectTimeoutError(ms: number): CodedError {
  const err: CodedError = new Error(`connect timed out after ${ms} ms`);
  err.code = 'ETIMEDOUT';
  return err;
}

/**
 * Pipes bytes both ways with backpressure. An end from one side is passed
 * on as a half-close; an error on either side destroys both. `onClose`
 * runs once, when both sockets are closed.
 */
export function tunnel(a: Socket, b: Socket, onClose: () => void): void {
  let open = 2;
  const closed = (): void => {
    if (--open === 0) onClose();
  };
  const fail = (): void => {
    a.destroy();
    b.destroy();
  };
  for (const s of [a, b]) {
    s.setNoDelay(true);
    s.on('error', fail);
    s.once('close', (hadError) => {
      if (hadError || !s.readableEnded || !s.writableFinished) fail();
      closed();
    });
  }
  a.pipe(b);
  b.pipe(a);
}

/** Calls `fail` if `socket` has not connected within `ms`. */
export function limitConnect(socket: Socket, ms: number, fail: (err: CodedError) => void): void {
  if (!socket.connecting || ms <= 0) return;
  const timer = setTimeout(() => fail(connectTimeoutError(ms)), ms);
  const clear = (): void => clearTimeout(timer);
  socket.once('connect', clear);
  socket.once('close', clear);
}

/** Writes a short plain-text answer on a raw socket and closes it. */
export function answerRaw(socket: Socket, status: number, statusText: string, text: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const head =
    `HTTP/1.1 ${status} ${statusText}\r\n` +
    'content-type: text/plain; charset=utf-8\r\n' +
    `content-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n`;
  socket.end(head + text, () => socket.destroy());
}
