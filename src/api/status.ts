/**
 * Kubernetes `Status` objects: how the API reports errors, so that kubectl
 * and Flotilla's own CLI show them the same way.
 */
import { FlotillaError, ManifestError } from '../errors';

/** A Kubernetes v1 Status. */
export interface StatusObject {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Success' | 'Failure';
  message: string;
  reason: string;
  code: number;
  details?: { name?: string; kind?: string; causes?: { field?: string; message: string }[] };
}

const REASONS: Record<string, string> = {
  NotFound: 'NotFound',
  Conflict: 'Conflict',
  AlreadyExists: 'AlreadyExists',
  ManifestInvalid: 'Invalid',
  Invalid: 'Invalid',
  BadRequest: 'BadRequest',
  MethodNotAllowed: 'MethodNotAllowed',
  NotAcceptable: 'NotAcceptable',
  UnsupportedMediaType: 'UnsupportedMediaType',
  NoQuorum: 'ServiceUnavailable',
  NotLeader: 'ServiceUnavailable',
};

/** The Status for an error; unknown errors become InternalError. */
export function statusFor(err: unknown): StatusObject {
  if (!(err instanceof FlotillaError)) {
    return failure(500, 'InternalError', `internal error: ${(err as Error)?.message ?? String(err)}`);
  }
  const reason = REASONS[err.code] ?? (err.status >= 500 ? 'InternalError' : 'BadRequest');
  const status = failure(err.status, reason, err.message);
  if (err instanceof ManifestError && err.fieldPath) {
    status.details = { causes: [{ field: err.fieldPath, message: err.message }] };
  }
  return status;
}

/** A failure Status with the given HTTP code and reason. */
export function failure(code: number, reason: string, message: string): StatusObject {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

/** Returned for malformed requests: bad JSON, a missing body. */
export class BadRequestError extends FlotillaError {
  constructor(message: string) {
    super('BadRequest', message, 400);
  }
}
