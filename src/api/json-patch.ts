/**
 * RFC 6902 JSON Patch, as `kubectl patch --type=json` and `kubectl rollout
 * undo` send it. Paths are RFC 6901 JSON Pointers.
 */
import { cloneJson } from '../model/canonical';
import { BadRequestError } from './status';

/** One operation of a JSON Patch. */
export interface JsonPatchOperation {
  op: 'add' | 'remove' | 'replace' | 'move' | 'copy' | 'test';
  path: string;
  from?: string;
  value?: unknown;
}

type Container = Record<string, unknown> | unknown[];

/** Applies every operation in order to a copy of `target`; all or nothing. */
export function applyJsonPatch(target: unknown, patch: unknown): unknown {
  if (!Array.isArray(patch)) {
    throw new BadRequestError('a JSON patch must be an array of operations');
  }
  let doc = cloneJson(target);
  patch.forEach((op, i) => {
    doc = applyOperation(doc, checkOperation(op, i));
  });
  return doc;
}

function checkOperation(value: unknown, i: number): JsonPatchOperation {
  const op = value as JsonPatchOperation;
  const known = ['add', 'remove', 'replace', 'move', 'copy', 'test'];
  if (!op || typeof op !== 'object' || !known.includes(op.op)) {
    throw new BadRequestError(`JSON patch operation ${i}: expected op ${known.join('|')}`);
  }
  if (typeof op.path !== 'string') {
    throw new BadRequestError(`JSON patch operation ${i}: expected a string path`);
  }
  if ((op.op === 'move' || op.op === 'copy') && typeof op.from !== 'string') {
    throw new BadRequestError(`JSON patch operation ${i}: ${op.op} needs a string "from"`);
  }
  return op;
}

function applyOperation(doc: unknown, op: JsonPatchOperation): unknown {
  switch (op.op) {
    case 'add':
      return add(doc, op.path, cloneJson(op.value));
    case 'remove':
      return remove(doc, op.path).doc;
    case 'replace':
      return add(remove(doc, op.path).doc, op.path, cloneJson(op.value));
    case 'move': {
      const taken = remove(doc, op.from as string);
      return add(taken.doc, op.path, taken.value);
    }
    case 'copy':
      return add(doc, op.path, cloneJson(read(doc, op.from as string)));
    case 'test':
      if (JSON.stringify(read(doc, op.path)) !== JSON.stringify(op.value)) {
        throw new BadRequestError(`JSON patch: test of "${op.path}" failed`);
      }
      return doc;
  }
}

/** Splits a JSON Pointer into its unescaped tokens. */
export function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new BadRequestError(`invalid JSON pointer "${pointer}"`);
  return pointer
    .slice(1)
    .split('/')
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function read(doc: unknown, pointer: string): unknown {
  let node = doc;
  for (const token of parsePointer(pointer)) {
    node = child(node as Container, token, pointer);
  }
  return node;
}

function child(node: Container, token: string, pointer: string): unknown {
  if (Array.isArray(node)) return node[arrayIndex(node, token, pointer, false)];
  if (node && typeof node === 'object' && token in node) return node[token];
  throw new BadRequestError(`JSON patch: path "${pointer}" does not exist`);
}

function parentOf(doc: unknown, pointer: string): { parent: Container; token: string } {
  const tokens = parsePointer(pointer);
  const token = tokens.pop() as string;
  let parent = doc;
  for (const t of tokens) parent = child(parent as Container, t, pointer);
  if (!parent || typeof parent !== 'object') {
    throw new BadRequestError(`JSON patch: the parent of "${pointer}" is not an object or array`);
  }
  return { parent: parent as Container, token };
}

function add(doc: unknown, pointer: string, value: unknown): unknown {
  if (pointer === '') return value;
  const { parent, token } = parentOf(doc, pointer);
  if (Array.isArray(parent)) {
    const at = token === '-' ? parent.length : arrayIndex(parent, token, pointer, true);
    parent.splice(at, 0, value);
  } else {
    parent[token] = value;
  }
  return doc;
}

function remove(doc: unknown, pointer: string): { doc: unknown; value: unknown } {
  if (pointer === '') return { doc: undefined, value: doc };
  const { parent, token } = parentOf(doc, pointer);
  const value = child(parent, token, pointer);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, token, pointer, false), 1);
  else delete parent[token];
  return { doc, value };
}

function arrayIndex(list: unknown[], token: string, pointer: string, inserting: boolean): number {
  const max = inserting ? list.length : list.length - 1;
  if (!/^(0|[1-9][0-9]*)$/.test(token) || Number(token) > max) {
    throw new BadRequestError(`JSON patch: index "${token}" of "${pointer}" is out of range`);
  }
  return Number(token);
}
