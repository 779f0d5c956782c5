import { Checker, describe, isPlainObject, type Locate } from './checker';
import { readDeployment } from './deployment';
import { readService } from './service';
import type { Manifest, ManifestWarning } from './types';

/** Where a value came from: the file name and, for YAML, a position lookup. */
export interface ValidationContext {
  file: string;
  locate?: Locate;
}

/** The outcome of validating one object. */
export interface ValidatedManifest {
  object: Manifest;
  warnings: ManifestWarning[];
}

const SUPPORTED = 'Flotilla supports Deployment (apps/v1) and Service (v1)';
const API_VERSIONS: Readonly<Record<string, string>> = { Deployment: 'apps/v1', Service: 'v1' };

/**
 * Checks one decoded object (from YAML, or JSON arriving through the API)
 * against Flotilla's subset of Kubernetes and returns a new object with
 * every Kubernetes default filled in; unknown fields are dropped with a
 * warning, server-filled `status` is dropped, and server-filled metadata
 * (uid, resourceVersion...) is passed through for the store to check or
 * replace. Throws a ManifestError naming the field path, and the line and
 * column when `ctx.locate` knows them.
 */
export function validateManifest(value: unknown, ctx: ValidationContext): ValidatedManifest {
  const c: Checker = new Checker(ctx.file, ctx.locate);
  if (!isPlainObject(value)) c.fail([], `expected object, got ${describe(value)}`);
  const kind = readKind(c, value);
  const object = kind === 'Deployment' ? readDeployment(c, value) : readService(c, value);
  return { object, warnings: sortByPosition(c.warnings) };
}

// Fields are visited in schema order; users read a file top to bottom.
function sortByPosition(warnings: ManifestWarning[]): ManifestWarning[] {
  const key = (w: ManifestWarning) => (w.line ?? 0) * 1e6 + (w.column ?? 0);
  return [...warnings].sort((a, b) => key(a) - key(b));
}

function readKind(c: Checker, value: Record<string, unknown>): 'Deployment' | 'Service' {
  const { kind, apiVersion } = value;
  if (kind === undefined || kind === null) {
    c.fail(['kind'], `required field is missing; ${SUPPORTED}`);
  }
  if (typeof kind !== 'string') c.fail(['kind'], `expected string, got ${describe(kind)}`);
  if (!Object.hasOwn(API_VERSIONS, kind)) {
    c.fail(['kind'], `kind ${JSON.stringify(kind)} is not supported; ${SUPPORTED}`);
  }

  const expected = API_VERSIONS[kind];
  if (apiVersion === undefined || apiVersion === null) {
    c.fail(['apiVersion'], `required field is missing; expected "${expected}" for kind ${kind}`);
  }
  if (apiVersion !== expected) {
    c.fail(['apiVersion'], `expected "${expected}" for kind ${kind}, got ${describe(apiVersion)}`);
  }
  return kind as 'Deployment' | 'Service';
}
