/**
 * The CLI's view of the manifest module (src/manifest/load.ts and
 * validate.ts). It is required lazily, because YAML parsing costs start-up
 * time that commands like `get` never need, and typed here so the CLI
 * depends on the contract rather than on the module's internals.
 */

/** A position-independent problem the loader or validator noticed. */
export interface ManifestWarning {
  file: string;
  line?: number;
  column?: number;
  fieldPath: string;
  message: string;
}

/** One validated object and where it was written. */
export interface LoadedObject {
  object: Record<string, unknown> & { kind?: string; metadata?: { name?: string } };
  source: { file: string; line: number };
}

/** What `loadManifests` returns. */
export interface LoadedManifests {
  objects: LoadedObject[];
  warnings: ManifestWarning[];
}

/** Finds where the value at a field path is written in the edited text. */
export type Locate = (path: (string | number)[]) => { line: number; column: number } | undefined;

interface LoadModule {
  loadManifests(
    paths: string[],
    opts: { stdin: NodeJS.ReadableStream; recursive: boolean },
  ): Promise<LoadedManifests>;
}

interface ValidateModule {
  validateManifest(
    value: unknown,
    opts: { file: string; locate?: Locate },
  ): { object: LoadedObject['object']; warnings: ManifestWarning[] };
}

/** Reads manifests from files, directories or `-` for stdin. */
export function loadManifests(
  paths: string[],
  opts: { stdin: NodeJS.ReadableStream; recursive: boolean },
): Promise<LoadedManifests> {
  const mod = require('../manifest/load') as LoadModule;
  return Promise.resolve(mod.loadManifests(paths, opts));
}

/** Validates one parsed manifest; throws ManifestError when it is invalid. */
export function validateManifest(
  value: unknown,
  opts: { file: string; locate?: Locate },
): ReturnType<ValidateModule['validateManifest']> {
  const mod = require('../manifest/validate') as ValidateModule;
  return mod.validateManifest(value, opts);
}

/** `Warning: FILE:LINE: MESSAGE`, as apply and edit print warnings. */
export function formatWarning(w: ManifestWarning): string {
  const where = w.line !== undefined ? `${w.file}:${w.line}` : w.file;
  const field = w.fieldPath && !w.message.includes(w.fieldPath) ? `${w.fieldPath}: ` : '';
  return `Warning: ${where}: ${field}${w.message}\n`;
}
