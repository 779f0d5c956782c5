import { ManifestError, type SourcePosition } from '../errors';
import { suggestFieldName } from './suggest';
import type { ManifestWarning } from './types';

/** A path to a value: names for object fields, indexes for array items. */
export type FieldPath = readonly (string | number)[];

/** Finds where the value at a path is written, when the source is known. */
export type Locate = (path: (string | number)[]) => { line: number; column: number } | undefined;

/** Largest value of the int32 fields of the Kubernetes API. */
export const INT32_MAX = 2147483647;

/**
 * Carries what every check needs: the file, the optional position lookup,
 * and the warnings gathered so far. The first error ends validation, so a
 * user fixes problems one at a time but never sees a cascade of follow-ups.
 */
export class Checker {
  /** Warnings in the order the fields were visited. */
  readonly warnings: ManifestWarning[] = [];

  constructor(
    readonly file: string,
    private readonly locate?: Locate,
  ) {}

  /** Throws a ManifestError about the value at `path`. */
  fail(path: FieldPath, message: string): never {
    throw new ManifestError(message, this.position(path), formatFieldPath(path) || undefined);
  }

  /** Records a warning about the value at `path`. */
  warn(path: FieldPath, message: string): void {
    const { line, column } = this.position(path);
    const where = line === undefined ? {} : { line, column };
    this.warnings.push({ file: this.file, ...where, fieldPath: formatFieldPath(path), message });
  }

  // A missing field has no position of its own: point at its nearest parent.
  private position(path: FieldPath): SourcePosition {
    for (let length = path.length; this.locate && length >= 0; length--) {
      const found = this.locate(path.slice(0, length));
      if (found) return { file: this.file, line: found.line, column: found.column };
    }
    return { file: this.file };
  }
}

/** Formats a path the way Kubernetes prints it: `spec.containers[0].image`. */
export function formatFieldPath(path: FieldPath): string {
  let text = '';
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`;
    else if (!/^[A-Za-z_$][\w$]*$/.test(segment)) text += `[${segment}]`;
    else text += text ? `.${segment}` : segment;
  }
  return text;
}

/**
 * How a field of an object is treated:
 * - known: read and checked by the caller;
 * - serverSet: filled by a Kubernetes server (status, managedFields),
 *   accepted silently and dropped;
 * - ignored: a Kubernetes feature Flotilla lacks, dropped with a warning;
 * - refused: a Kubernetes feature whose absence would silently change what
 *   runs (volumes, securityContext), so a non-empty value is an error;
 * - serverDefault: ignored, but silently while it holds the value a
 *   Kubernetes server fills in, so `kubectl get -o yaml` output applies cleanly.
 */
export type FieldRule = 'known' | 'serverSet' | 'ignored' | 'refused' | { serverDefault: unknown };

/** The fields of one kind of object and how each is treated. */
export type FieldRules = Readonly<Record<string, FieldRule>>;

/** An object's known fields, without a prototype so no field name is inherited. */
export type Fields = Record<string, unknown>;

/**
 * Checks that `value` is an object, reports every field outside `rules`
 * or outside Flotilla's subset, and returns only the known fields.
 */
export function readObject(c: Checker, value: unknown, path: FieldPath, rules: FieldRules): Fields {
  if (!isPlainObject(value)) c.fail(path, `expected object, got ${describe(value)}`);
  const known: Fields = Object.create(null);
  for (const [key, field] of Object.entries(value)) {
    const rule = Object.hasOwn(rules, key) ? rules[key] : undefined;
    if (rule === 'known') known[key] = field;
    else checkOtherField(c, [...path, key], field, rule, rules);
  }
  return known;
}

function checkOtherField(
  c: Checker,
  path: FieldPath,
  value: unknown,
  rule: FieldRule | undefined,
  rules: FieldRules,
): void {
  const name = String(path[path.length - 1]);
  if (rule === undefined) return warnUnknown(c, path, name, rules);
  if (rule === 'serverSet' || isZero(value)) return;
  if (rule === 'refused') {
    c.fail(path, `${name} is not supported by Flotilla; refusing to run without it`);
  }
  if (typeof rule === 'object' && isDeepEqual(value, rule.serverDefault)) return;
  c.warn(path, `${name} is not supported by Flotilla, ignored`);
}

function warnUnknown(c: Checker, path: FieldPath, name: string, rules: FieldRules): void {
  const suggestion = suggestFieldName(name, Object.keys(rules));
  const hint = suggestion === undefined ? ', ignored' : `, did you mean "${suggestion}"?`;
  c.warn(path, `unknown field "${name}"${hint}`);
}

// Go's zero values: Kubernetes itself cannot tell them from an absent field.
function isZero(value: unknown): boolean {
  if (value === null || value === undefined || value === false) return true;
  if (value === 0 || value === '') return true;
  if (Array.isArray(value)) return value.length === 0;
  return isPlainObject(value) && Object.keys(value).length === 0;
}

function isDeepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** True for a non-null, non-array object. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Describes a value for "expected X, got Y" messages. */
export function describe(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'string') {
    const shown = value.length > 60 ? `${value.slice(0, 57)}...` : value;
    return `string ${JSON.stringify(shown)}`;
  }
  if (typeof value === 'number' || typeof value === 'boolean') {
    return `${typeof value} ${String(value)}`;
  }
  return typeof value;
}

function missing(c: Checker, path: FieldPath, expected: string): never {
  // An array item cannot be "missing": it is there and empty.
  if (typeof path[path.length - 1] === 'number') c.fail(path, `expected ${expected}, got null`);
  c.fail(path, `required field is missing; expected ${expected}`);
}

/** Reads an optional string; null counts as absent, as in Kubernetes. */
export function optString(c: Checker, value: unknown, path: FieldPath): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  // YAML turns an unquoted 8080 or true into a number or boolean.
  const hint = typeof value === 'number' || typeof value === 'boolean' ? ' (quote the value)' : '';
  c.fail(path, `expected string, got ${describe(value)}${hint}`);
}

/** Reads a required string. */
export function reqString(c: Checker, value: unknown, path: FieldPath): string {
  return optString(c, value, path) ?? missing(c, path, 'string');
}

/** Reads a required string that must not be empty or blank. */
export function reqNonEmptyString(c: Checker, value: unknown, path: FieldPath): string {
  const text = reqString(c, value, path);
  if (text.trim() === '') c.fail(path, `expected a non-empty string, got ${describe(text)}`);
  return text;
}

/** Bounds for an integer field; both ends are inclusive. */
export interface IntRange {
  min?: number;
  max?: number;
}

/** Reads an optional integer within `range` (int32 unless `range.max` says more). */
export function optInt(
  c: Checker,
  value: unknown,
  path: FieldPath,
  range: IntRange = {},
): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    c.fail(path, `expected integer, got ${describe(value)}`);
  }
  const min = range.min ?? -INT32_MAX - 1;
  const max = range.max ?? INT32_MAX;
  if (value < min || value > max) {
    const bounds = max === INT32_MAX ? `>= ${min}` : `between ${min} and ${max}`;
    c.fail(path, `expected integer ${bounds}, got ${value}`);
  }
  return value;
}

/** Reads a required integer within `range`. */
export function reqInt(c: Checker, value: unknown, path: FieldPath, range: IntRange = {}): number {
  return optInt(c, value, path, range) ?? missing(c, path, 'integer');
}

/** Reads an optional boolean. */
export function optBool(c: Checker, value: unknown, path: FieldPath): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') c.fail(path, `expected boolean, got ${describe(value)}`);
  return value;
}

/** Reads a Kubernetes int-or-string field such as targetPort or maxSurge. */
export function optIntOrString(
  c: Checker,
  value: unknown,
  path: FieldPath,
): number | string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
  c.fail(path, `expected integer or string, got ${describe(value)}`);
}

/** Reads an optional string that must be one of `allowed`. */
export function optEnum<T extends string>(
  c: Checker,
  value: unknown,
  path: FieldPath,
  allowed: readonly T[],
): T | undefined {
  const text = optString(c, value, path);
  if (text === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(text)) {
    const choices = allowed.map((choice) => `"${choice}"`).join(', ');
    c.fail(path, `expected one of ${choices}, got ${describe(text)}`);
  }
  return text as T;
}

/** Reads an optional array, passing each item and its path to `readItem`. */
export function optArray<T>(
  c: Checker,
  value: unknown,
  path: FieldPath,
  readItem: (item: unknown, itemPath: FieldPath) => T,
): T[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) c.fail(path, `expected array, got ${describe(value)}`);
  return value.map((item, index) => readItem(item, [...path, index]));
}

/** Reads a required array. */
export function reqArray<T>(
  c: Checker,
  value: unknown,
  path: FieldPath,
  readItem: (item: unknown, itemPath: FieldPath) => T,
): T[] {
  return optArray(c, value, path, readItem) ?? missing(c, path, 'array');
}

/** Reads an optional array of strings. */
export function optStringArray(c: Checker, value: unknown, path: FieldPath): string[] | undefined {
  return optArray(c, value, path, (item, itemPath) => reqString(c, item, itemPath));
}

/** Reads an optional map of strings to strings, each entry checked by `checkEntry`. */
export function optStringMap(
  c: Checker,
  value: unknown,
  path: FieldPath,
  checkEntry: (key: string, value: string, entryPath: FieldPath) => void,
): Record<string, string> | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isPlainObject(value)) c.fail(path, `expected object, got ${describe(value)}`);
  const map: Record<string, string> = {};
  for (const key of Object.keys(value).sort()) {
    const entryPath = [...path, key];
    const text = reqString(c, value[key], entryPath);
    checkEntry(key, text, entryPath);
    // defineProperty: a "__proto__" label must stay an ordinary key.
    Object.defineProperty(map, key, {
      value: text,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return map;
}
