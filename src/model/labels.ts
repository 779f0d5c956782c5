import type { LabelSelector } from '../manifest/types';

/** True when `labels` satisfy every requirement of `selector`. */
export function matchesSelector(
  selector: LabelSelector | undefined,
  labels: Record<string, string> | undefined,
): boolean {
  if (!selector) return false;
  const have = labels ?? {};
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (have[key] !== value) return false;
  }
  for (const req of selector.matchExpressions ?? []) {
    const present = Object.prototype.hasOwnProperty.call(have, req.key);
    const values = req.values ?? [];
    if (req.operator === 'In' && !(present && values.includes(have[req.key]))) return false;
    if (req.operator === 'NotIn' && present && values.includes(have[req.key])) return false;
    if (req.operator === 'Exists' && !present) return false;
    if (req.operator === 'DoesNotExist' && present) return false;
  }
  return true;
}

/** True when `labels` carry every key/value of a Service's plain selector. */
export function matchesMap(
  selector: Record<string, string> | undefined,
  labels: Record<string, string> | undefined,
): boolean {
  if (!selector || Object.keys(selector).length === 0) return false;
  const have = labels ?? {};
  return Object.entries(selector).every(([k, v]) => have[k] === v);
}

/**
 * Parses a kubectl-style selector string (`app=web,tier!=db,env`) into a
 * predicate. Supports =, ==, != and bare keys (exists) and !key.
 */
export function parseSelectorString(text: string): (labels: Record<string, string>) => boolean {
  const tests: ((l: Record<string, string>) => boolean)[] = [];
  for (const raw of text.split(',')) {
    const part = raw.trim();
    if (!part) continue;
    const ne = part.split('!=');
    if (ne.length === 2) {
      tests.push((l) => l[ne[0].trim()] !== ne[1].trim());
      continue;
    }
    const eq = part.split(/==?/);
    if (eq.length === 2) {
      tests.push((l) => l[eq[0].trim()] === eq[1].trim());
      continue;
    }
    if (part.startsWith('!')) {
      tests.push((l) => !(part.slice(1) in l));
      continue;
    }
    tests.push((l) => part in l);
  }
  return (labels) => tests.every((t) => t(labels ?? {}));
}
