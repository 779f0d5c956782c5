/**
 * The `labelSelector` and `fieldSelector` query parameters, in Kubernetes'
 * syntax: `a=b,c!=d,e,!f,g in (x,y),h notin (z)` for labels and
 * `path=value,path!=value` for fields.
 */
import { BadRequestError } from './status';

type Labels = Record<string, string>;
type LabelTest = (labels: Labels) => boolean;

/** Parses a label selector into a predicate on an object's labels. */
export function parseLabelSelector(text: string): LabelTest {
  const tests = splitTerms(text).map(parseLabelTerm);
  return (labels) => tests.every((t) => t(labels ?? {}));
}

// Commas inside `in (a,b)` do not separate terms.
function splitTerms(text: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '(') depth++;
    else if (text[i] === ')') depth--;
    else if (text[i] === ',' && depth === 0) {
      terms.push(text.slice(start, i));
      start = i + 1;
    }
  }
  terms.push(text.slice(start));
  return terms.map((t) => t.trim()).filter((t) => t !== '');
}

function parseLabelTerm(term: string): LabelTest {
  const set = /^([^\s!=(),]+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(term);
  if (set) {
    const [, key, op, list] = set;
    const values = list.split(',').map((v) => v.trim());
    if (op === 'in') return (l) => key in l && values.includes(l[key]);
    return (l) => !(key in l) || !values.includes(l[key]);
  }
  const cmp = /^([^\s!=]+)\s*(==|=|!=)\s*([^\s,]*)$/.exec(term);
  if (cmp) {
    const [, key, op, value] = cmp;
    if (op === '!=') return (l) => l[key] !== value;
    return (l) => l[key] === value;
  }
  if (/^![^\s!=]+$/.test(term)) return (l) => !(term.slice(1) in l);
  if (/^[^\s!=()]+$/.test(term)) return (l) => term in l;
  throw new BadRequestError(`unable to parse requirement "${term}" of the label selector`);
}

type FieldTest = (object: unknown) => boolean;

/**
 * Parses a field selector. A field the object lacks reads as '', and an
 * object's namespace fields read as `default`, as in Kubernetes.
 */
export function parseFieldSelector(text: string): FieldTest {
  const tests = splitTerms(text).map((term): FieldTest => {
    const m = /^([^!=]+)(==|=|!=)(.*)$/.exec(term);
    if (!m) throw new BadRequestError(`invalid field selector term "${term}"`);
    const [, path, op, value] = m;
    const negate = op === '!=';
    return (o) => (readField(o, path.trim()) === value.trim()) !== negate;
  });
  return (o) => tests.every((t) => t(o));
}

const NAMESPACE_FIELDS = new Set(['metadata.namespace', 'involvedObject.namespace']);

function readField(object: unknown, path: string): string {
  const value = path
    .split('.')
    .reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], object);
  if (value === undefined || value === null) {
    const namespaced = (object as { kind?: string }).kind !== 'Node';
    return NAMESPACE_FIELDS.has(path) && namespaced ? 'default' : '';
  }
  return String(value);
}
