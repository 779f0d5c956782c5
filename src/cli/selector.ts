import { InvalidError } from '../errors';

/** One term of an equality-based label selector. */
export interface Requirement {
  key: string;
  op: '=' | '!=' | 'exists' | '!exists';
  value?: string;
}

/**
 * Parses `-l app=web,tier!=db,canary,!legacy`. Set-based terms (`in`,
 * `notin`) are not supported because no Flotilla object needs them.
 */
export function parseSelector(text: string): Requirement[] {
  return text
    .split(',')
    .map((term) => term.trim())
    .filter((term) => term !== '')
    .map(parseTerm);
}

function parseTerm(term: string): Requirement {
  const match = /^(!?)([^=!\s]+)\s*(?:(==|=|!=)\s*(\S*))?$/.exec(term);
  if (!match) throw new InvalidError(`expected a label selector term like k=v, got "${term}"`);

  const [, bang, key, op, value] = match;
  if (bang && op) throw new InvalidError(`expected !KEY without a value, got "${term}"`);
  if (!op) return { key, op: bang ? '!exists' : 'exists' };
  return { key, op: op === '!=' ? '!=' : '=', value };
}

/** Whether a label map satisfies every requirement. */
export function matchesSelector(
  labels: Record<string, string> | undefined,
  requirements: Requirement[],
): boolean {
  const have = labels ?? {};
  return requirements.every((req) => {
    const present = Object.prototype.hasOwnProperty.call(have, req.key);
    switch (req.op) {
      case 'exists':
        return present;
      case '!exists':
        return !present;
      case '=':
        return present && have[req.key] === req.value;
      case '!=':
        return !present || have[req.key] !== req.value;
    }
  });
}

/** Reads `k=v,k2=v2` into a map, as `--labels` and `--container-label` take it. */
export function parseLabelPairs(text: string, what: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of text.split(',').filter((p) => p.trim() !== '')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new InvalidError(`expected ${what} as key=value, got "${pair}"`);
    labels[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  return labels;
}
