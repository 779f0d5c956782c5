import {
  type Checker,
  type FieldPath,
  type FieldRules,
  optArray,
  optEnum,
  optStringArray,
  readObject,
  reqString,
} from './checker';
import { checkKey, readLabels } from './metadata';
import { checkLabelValue } from './syntax';
import type { LabelSelector, LabelSelectorRequirement, SelectorOperator } from './types';

const SELECTOR_RULES: FieldRules = { matchLabels: 'known', matchExpressions: 'known' };
const REQUIREMENT_RULES: FieldRules = { key: 'known', operator: 'known', values: 'known' };
const OPERATORS: readonly SelectorOperator[] = ['In', 'NotIn', 'Exists', 'DoesNotExist'];

/** Reads a label selector; an empty one is returned as `{}`. */
export function readLabelSelector(c: Checker, value: unknown, path: FieldPath): LabelSelector {
  const fields = readObject(c, value, path, SELECTOR_RULES);
  const selector: LabelSelector = {};
  const matchLabels = readLabels(c, fields.matchLabels, [...path, 'matchLabels']);
  const expressionsPath = [...path, 'matchExpressions'];
  const expressions = optArray(c, fields.matchExpressions, expressionsPath, (item, itemPath) =>
    readRequirement(c, item, itemPath),
  );
  if (matchLabels && Object.keys(matchLabels).length > 0) selector.matchLabels = matchLabels;
  if (expressions && expressions.length > 0) selector.matchExpressions = expressions;
  return selector;
}

function readRequirement(c: Checker, value: unknown, path: FieldPath): LabelSelectorRequirement {
  const fields = readObject(c, value, path, REQUIREMENT_RULES);
  const key = reqString(c, fields.key, [...path, 'key']);
  checkKey(c, key, [...path, 'key']);
  const operator = optEnum(c, fields.operator, [...path, 'operator'], OPERATORS);
  if (operator === undefined) c.fail([...path, 'operator'], 'required field is missing');
  const values = optStringArray(c, fields.values, [...path, 'values']) ?? [];

  const needsValues = operator === 'In' || operator === 'NotIn';
  if (needsValues && values.length === 0) {
    c.fail([...path, 'values'], `expected at least one value for operator ${operator}`);
  }
  if (!needsValues && values.length > 0) {
    c.fail([...path, 'values'], `expected no values for operator ${operator}`);
  }
  values.forEach((text, index) => {
    const problem = checkLabelValue(text);
    if (problem) c.fail([...path, 'values', index], `${problem}, got ${JSON.stringify(text)}`);
  });
  return needsValues ? { key, operator, values } : { key, operator };
}

/** True when a selector has no terms; Kubernetes reads that as "selects everything". */
export function isEmptySelector(selector: LabelSelector): boolean {
  return !selector.matchLabels && !selector.matchExpressions;
}

/** True when `labels` satisfy every term of `selector`. */
export function matchesSelector(selector: LabelSelector, labels: Record<string, string>): boolean {
  const has = (key: string) => Object.hasOwn(labels, key);
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (!has(key) || labels[key] !== value) return false;
  }
  return (selector.matchExpressions ?? []).every((requirement) => {
    const { key, operator, values = [] } = requirement;
    switch (operator) {
      case 'In':
        return has(key) && values.includes(labels[key]);
      case 'NotIn':
        return !has(key) || !values.includes(labels[key]);
      case 'Exists':
        return has(key);
      case 'DoesNotExist':
        return !has(key);
    }
  });
}
