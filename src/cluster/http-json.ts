/**
 * The small JSON plumbing of the cluster's own HTTP routes (cluster
 * endpoints, node removal, tokens): Kubernetes Status bodies, JSON answers
 * and JSON bodies read up to a limit.
 */
import type http from 'node:http';
import { FlotillaError } from '../errors';

/** A Kubernetes Status: Success below 400, Failure from there. */
export function statusBody(code: number, reason: string, message: string) {
  const outcome = code < 400 ? 'Success' : 'Failure';
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: outcome, message, reason, code };
}

/** Answers `value` as JSON (an empty body for undefined). */
export function sendJson(res: http.ServerResponse, code: number, value: unknown): void {
  const text = value === undefined ? '' : JSON.stringify(value);
  const length = Buffer.byteLength(text);
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': length });
  res.end(text);
}

/**
 * Reads a JSON body of at most `maxBytes` (an empty body is `{}`); `what`
 * names the request in the too-large error.
 */
export function readJson(
  req: http.IncomingMessage,
  maxBytes: number,
  what: string,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        reject(new FlotillaError('PayloadTooLarge', `${what} body too large`, 413));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') return resolve({});
      try {
        resolve(JSON.parse(text));
      } catch (err) {
        reject(new FlotillaError('BadRequest', `invalid JSON: ${(err as Error).message}`, 400));
      }
    });
    req.on('error', reject);
  });
}
