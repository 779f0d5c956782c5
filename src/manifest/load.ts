import { promises as fs } from 'node:fs';
import path from 'node:path';
import {
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseAllDocuments,
  visit,
  type YAMLError,
} from 'yaml';
import { ManifestError, ManifestErrors } from '../errors';
import {
  Checker,
  describe,
  type FieldRules,
  formatFieldPath,
  isPlainObject,
  type Locate,
  readObject,
  reqArray,
} from './checker';
import type { Manifest, ManifestWarning } from './types';
import { validateManifest } from './validate';

/** Re-exported so that callers of the loader need only this module. */
export type { ManifestWarning } from './types';

/** One validated object and where its document starts. */
export interface LoadedObject {
  object: Manifest;
  source: { file: string; line: number };
}

/** Everything read from a set of manifests; nothing is returned if any of it is invalid. */
export interface LoadedManifests {
  objects: LoadedObject[];
  warnings: ManifestWarning[];
}

/** Options of loadManifests. */
export interface LoadOptions {
  /** Read for the path "-"; process.stdin when absent. */
  stdin?: NodeJS.ReadableStream;
  /** Also read the subdirectories of a directory. */
  recursive?: boolean;
}

/** The largest manifest file or stdin input read, far above any real manifest. */
export const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;

const STDIN_NAME = '<stdin>';
const EXTENSIONS = new Set(['.yaml', '.yml', '.json']);
const LIST_RULES: FieldRules = {
  apiVersion: 'known',
  kind: 'known',
  items: 'known',
  metadata: 'serverSet',
};

type Position = { line: number; column: number };

/**
 * Reads manifests from files, directories (their *.yaml, *.yml and *.json
 * files in name order) and "-" for stdin. Throws a ManifestError for a
 * problem, or ManifestErrors with the first problem of each bad document,
 * so that callers apply all of it or none of it.
 */
export async function loadManifests(
  paths: string[],
  opts: LoadOptions = {},
): Promise<LoadedManifests> {
  const loaded: LoadedManifests = { objects: [], warnings: [] };
  const files = await expandPaths(paths, opts.recursive ?? false);
  const errors: ManifestError[] = [];
  for (const file of files) {
    const text = file === '-' ? await readStdin(opts.stdin) : await readManifestFile(file);
    try {
      const parsed = parseManifests(text, file === '-' ? STDIN_NAME : file);
      loaded.objects.push(...parsed.objects);
      loaded.warnings.push(...parsed.warnings);
    } catch (err) {
      errors.push(...manifestErrorsOf(err));
    }
  }
  throwAll(errors);

  checkUnique(loaded.objects);
  if (loaded.objects.length === 0) {
    throw new ManifestError(`no objects found in ${paths.join(', ') || 'no paths'}`);
  }
  return loaded;
}

/**
 * Parses and validates every document of a YAML or JSON text; empty
 * documents are skipped and a `kind: List` contributes its items.
 */
export function parseManifests(text: string, file: string): LoadedManifests {
  const lineCounter = new LineCounter();
  const documents = parseAllDocuments(text, {
    lineCounter,
    merge: true,
    prettyErrors: false,
    logLevel: 'silent',
  });
  const loaded: LoadedManifests = { objects: [], warnings: [] };
  const errors: ManifestError[] = [];
  for (const document of documents) {
    try {
      readDocument(document, file, lineCounter, loaded);
    } catch (err) {
      errors.push(...manifestErrorsOf(err));
    }
  }
  throwAll(errors);
  checkUnique(loaded.objects);
  return loaded;
}

/** The manifest errors `err` carries; anything else is rethrown. */
function manifestErrorsOf(err: unknown): ManifestError[] {
  if (err instanceof ManifestErrors) return err.errors;
  if (err instanceof ManifestError) return [err];
  throw err;
}

/** Throws the one error there is, or all of them together. */
function throwAll(errors: ManifestError[]): void {
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new ManifestErrors(errors);
}

function readDocument(
  document: Document.Parsed,
  file: string,
  lineCounter: LineCounter,
  loaded: LoadedManifests,
): void {
  const at = (offset: number): Position => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  if (document.errors.length > 0) throw syntaxError(document, document.errors[0], file, at);
  for (const warning of document.warnings) {
    loaded.warnings.push({ file, ...at(warning.pos[0]), fieldPath: '', message: warning.message });
  }
  if (document.contents === null) return;
  checkKeys(document, file, at);
  warnYaml11Booleans(document, file, at, loaded.warnings);
  const line = at(document.contents.range[0]).line;
  const value = toPlainValue(document, { file, line });
  if (value === null || value === undefined) return;

  const locate: Locate = (fieldPath) => locateNode(document, fieldPath, at);
  if (isListObject(value)) readList(value, file, locate, loaded);
  else addObject(value, file, line, locate, loaded);
}

function toPlainValue(document: Document.Parsed, position: { file: string; line: number }) {
  try {
    // The alias limit stops a few lines of YAML from expanding into gigabytes.
    return document.toJS({ maxAliasCount: 100 }) as unknown;
  } catch (err) {
    throw new ManifestError(`YAML error: ${(err as Error).message}`, position);
  }
}

function addObject(
  value: unknown,
  file: string,
  line: number,
  locate: Locate,
  loaded: LoadedManifests,
): void {
  const { object, warnings } = validateManifest(value, { file, locate });
  loaded.objects.push({ object, source: { file, line } });
  loaded.warnings.push(...warnings);
}

function isListObject(value: unknown): value is Record<string, unknown> {
  return isPlainObject(value) && value.kind === 'List';
}

// kubectl accepts `kind: List` (what `kubectl get -o yaml` prints for several objects).
function readList(
  value: Record<string, unknown>,
  file: string,
  locate: Locate,
  loaded: LoadedManifests,
): void {
  const c: Checker = new Checker(file, locate);
  const fields = readObject(c, value, [], LIST_RULES);
  if (fields.apiVersion !== 'v1') {
    c.fail(['apiVersion'], `expected "v1" for kind List, got ${describe(fields.apiVersion)}`);
  }
  const items = reqArray(c, fields.items, ['items'], (item) => item);
  loaded.warnings.push(...c.warnings);
  items.forEach((item, index) => {
    const itemLocate: Locate = (fieldPath) => locate(['items', index, ...fieldPath]);
    const line = locate(['items', index])?.line ?? 1;
    addObject(item, file, line, itemLocate, loaded);
  });
}

function syntaxError(
  document: Document.Parsed,
  error: YAMLError,
  file: string,
  at: (offset: number) => Position,
): ManifestError {
  const position = { file, ...at(error.pos[0]) };
  if (error.code === 'TAB_AS_INDENT') {
    const message = 'tab characters are not allowed for indentation; use spaces';
    return new ManifestError(message, position);
  }
  if (error.code === 'DUPLICATE_KEY') {
    const keyPath = pathAtOffset(document.contents, error.pos[0]);
    if (!keyPath) return new ManifestError('duplicate key in a mapping', position);
    const key = JSON.stringify(String(keyPath[keyPath.length - 1]));
    return new ManifestError(`duplicate key ${key}`, position, formatFieldPath(keyPath));
  }
  return new ManifestError(`YAML syntax error: ${error.message}`, position);
}

// JavaScript objects only have string keys; yaml would otherwise stringify "[a, b]" silently.
function checkKeys(document: Document.Parsed, file: string, at: (offset: number) => Position) {
  visit(document, {
    Pair(_, pair) {
      if (isScalar(pair.key) && pair.key.value !== null && typeof pair.key.value !== 'object') {
        return;
      }
      const offset = (pair.key as Node | null)?.range?.[0] ?? 0;
      throw new ManifestError('expected a string as map key', { file, ...at(offset) });
    },
  });
}

const YAML_11_BOOLEAN = /^(y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)$/;

/**
 * kubectl reads YAML 1.1, where an unquoted yes, no, on or off is a boolean;
 * YAML 1.2 reads a string. Accepting the string is kind, but the user should
 * know that kubectl would refuse or misread the same file.
 */
function warnYaml11Booleans(
  document: Document.Parsed,
  file: string,
  at: (offset: number) => Position,
  warnings: ManifestWarning[],
): void {
  visit(document, {
    Pair(_, pair) {
      const value = pair.value;
      if (!isScalar(value) || value.type !== 'PLAIN' || !value.range) return;
      if (typeof value.value !== 'string' || !YAML_11_BOOLEAN.test(value.value)) return;
      const fieldPath = pathAtOffset(document.contents, value.range[0]) ?? [];
      warnings.push({
        file,
        ...at(value.range[0]),
        fieldPath: formatFieldPath(fieldPath),
        message: `unquoted ${value.value} is a string here but a boolean to kubectl; quote it`,
      });
    },
  });
}

/** Finds the node at a path: a map key's position, or an array item's. */
function locateNode(
  document: Document.Parsed,
  fieldPath: (string | number)[],
  at: (offset: number) => Position,
): Position | undefined {
  let node = resolve(document, document.contents);
  let offset = node?.range?.[0];
  for (const segment of fieldPath) {
    if (isMap(node)) {
      const pair = node.items.find(
        (item) => isScalar(item.key) && String(item.key.value) === String(segment),
      );
      if (!pair) return undefined;
      offset = (pair.key as Node).range?.[0];
      node = resolve(document, pair.value);
    } else if (isSeq(node) && typeof segment === 'number') {
      node = resolve(document, node.items[segment]);
      offset = node?.range?.[0];
    } else {
      return undefined;
    }
  }
  return offset === undefined ? undefined : at(offset);
}

// An alias is written where its anchor is; positions point there.
function resolve(document: Document.Parsed, node: unknown): Node | undefined {
  if (isAlias(node)) return node.resolve(document) ?? undefined;
  return isMap(node) || isSeq(node) || isScalar(node) ? node : undefined;
}

/** The path to the map key or item that covers `offset`, for syntax errors. */
function pathAtOffset(node: unknown, offset: number): (string | number)[] | undefined {
  const covers = (candidate: unknown) => {
    const range = (candidate as Node | null)?.range;
    return range != null && range[0] <= offset && offset < Math.max(range[1], range[0] + 1);
  };
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : '';
      if (covers(pair.key)) return [key];
      if (covers(pair.value)) return [key, ...(pathAtOffset(pair.value, offset) ?? [])];
    }
  }
  if (isSeq(node)) {
    for (const [index, item] of node.items.entries()) {
      if (covers(item)) return [index, ...(pathAtOffset(item, offset) ?? [])];
    }
  }
  return undefined;
}

// Two documents describing the same object would make "apply" order-dependent.
function checkUnique(objects: LoadedObject[]): void {
  const seen = new Map<string, LoadedObject['source']>();
  for (const { object, source } of objects) {
    const key = `${object.kind}/${object.metadata.name}`;
    const first = seen.get(key);
    if (first) {
      const what = `${object.kind} "${object.metadata.name}"`;
      const message = `${what} is defined twice; first at ${first.file}:${first.line}`;
      throw new ManifestError(message, source, 'metadata.name');
    }
    seen.set(key, source);
  }
}

async function expandPaths(paths: string[], recursive: boolean): Promise<string[]> {
  if (paths.filter((p) => p === '-').length > 1) {
    throw new ManifestError('"-" (stdin) may be given only once', { file: STDIN_NAME });
  }
  const files: string[] = [];
  for (const p of paths) {
    const isDirectory = p !== '-' && (await statPath(p)).isDirectory();
    if (isDirectory) files.push(...(await listDirectory(p, recursive, new Set())));
    else files.push(p);
  }
  return files;
}

async function listDirectory(
  dir: string,
  recursive: boolean,
  visited: Set<string>,
): Promise<string[]> {
  // A symlink loop must not make a recursive listing endless.
  const real = await fs.realpath(dir);
  if (visited.has(real)) return [];
  visited.add(real);

  const names = (await fs.readdir(dir)).sort();
  const files: string[] = [];
  for (const name of names) {
    const full = path.join(dir, name);
    const stat = await statPath(full);
    if (stat.isDirectory()) {
      if (recursive) files.push(...(await listDirectory(full, recursive, visited)));
    } else if (stat.isFile() && EXTENSIONS.has(path.extname(name).toLowerCase())) {
      files.push(full);
    }
  }
  return files;
}

async function statPath(file: string) {
  try {
    return await fs.stat(file);
  } catch (err) {
    throw readError(file, err);
  }
}

async function readManifestFile(file: string): Promise<string> {
  try {
    const handle = await fs.open(file, 'r');
    try {
      const { size } = await handle.stat();
      if (size > MAX_MANIFEST_BYTES) throw tooLarge(file);
      return await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
  } catch (err) {
    throw err instanceof ManifestError ? err : readError(file, err);
  }
}

async function readStdin(stream: NodeJS.ReadableStream = process.stdin): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    size += buffer.length;
    if (size > MAX_MANIFEST_BYTES) throw tooLarge(STDIN_NAME);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function tooLarge(file: string): ManifestError {
  return new ManifestError(`expected at most ${MAX_MANIFEST_BYTES} bytes`, { file });
}

function readError(file: string, err: unknown): ManifestError {
  const code = (err as NodeJS.ErrnoException).code;
  const reason = code === 'ENOENT' ? 'no such file or directory' : (err as Error).message;
  return new ManifestError(`cannot read: ${reason}`, { file });
}
