import {
  type Checker,
  type FieldPath,
  type FieldRules,
  describe,
  optBool,
  optEnum,
  optInt,
  optIntOrString,
  readObject,
} from './checker';
import { DEPLOYMENT_DEFAULTS } from './defaults';
import { readObjectMeta } from './metadata';
import { readPodTemplate } from './pod';
import { isEmptySelector, matchesSelector, readLabelSelector } from './selector';
import { checkDnsSubdomain, isPercent } from './syntax';
import type {
  Deployment,
  DeploymentSpec,
  DeploymentStrategy,
  LabelSelector,
  PodTemplateSpec,
} from './types';

const DEPLOYMENT_RULES: FieldRules = {
  apiVersion: 'known',
  kind: 'known',
  metadata: 'known',
  spec: 'known',
  status: 'serverSet',
};

const SPEC_RULES: FieldRules = {
  replicas: 'known',
  selector: 'known',
  template: 'known',
  strategy: 'known',
  minReadySeconds: 'known',
  revisionHistoryLimit: 'known',
  progressDeadlineSeconds: 'known',
  paused: 'known',
};

const STRATEGY_RULES: FieldRules = { type: 'known', rollingUpdate: 'known' };
const ROLLING_UPDATE_RULES: FieldRules = { maxSurge: 'known', maxUnavailable: 'known' };
const STRATEGY_TYPES = ['RollingUpdate', 'Recreate'] as const;

/** Reads an apps/v1 Deployment whose apiVersion and kind are already checked. */
export function readDeployment(c: Checker, value: unknown): Deployment {
  const fields = readObject(c, value, [], DEPLOYMENT_RULES);
  const metadata = readObjectMeta(c, fields.metadata, ['metadata'], checkDnsSubdomain);
  const spec = readDeploymentSpec(c, fields.spec, ['spec']);
  return { apiVersion: 'apps/v1', kind: 'Deployment', metadata, spec };
}

/**
 * Far above what a fleet of fifty servers runs (110 pods each), and low
 * enough that a typo cannot make the controller create millions of pods.
 */
export const MAX_REPLICAS = 10_000;

function readDeploymentSpec(c: Checker, value: unknown, path: FieldPath): DeploymentSpec {
  if (value === undefined || value === null) c.fail(path, 'required field is missing');
  const fields = readObject(c, value, path, SPEC_RULES);
  const selector = readSelector(c, fields.selector, [...path, 'selector']);
  const template = readPodTemplate(c, fields.template, [...path, 'template']);
  checkSelectorMatches(c, selector, template, path);
  const strategy = readStrategy(c, fields.strategy, [...path, 'strategy']);

  const int = (name: string) => optInt(c, fields[name], [...path, name], { min: 0 });
  const spec: DeploymentSpec = {
    replicas:
      optInt(c, fields.replicas, [...path, 'replicas'], { min: 0, max: MAX_REPLICAS }) ??
      DEPLOYMENT_DEFAULTS.replicas,
    selector,
    template,
    strategy,
    minReadySeconds: int('minReadySeconds') ?? DEPLOYMENT_DEFAULTS.minReadySeconds,
    revisionHistoryLimit: int('revisionHistoryLimit') ?? DEPLOYMENT_DEFAULTS.revisionHistoryLimit,
    progressDeadlineSeconds:
      int('progressDeadlineSeconds') ?? DEPLOYMENT_DEFAULTS.progressDeadlineSeconds,
    paused: optBool(c, fields.paused, [...path, 'paused']) ?? DEPLOYMENT_DEFAULTS.paused,
  };
  // Otherwise a rollout would be declared stuck before a pod could count as available.
  if (spec.progressDeadlineSeconds <= spec.minReadySeconds) {
    c.fail([...path, 'progressDeadlineSeconds'], `expected more than minReadySeconds ` +
      `(${spec.minReadySeconds}), got ${spec.progressDeadlineSeconds}`);
  }
  return spec;
}

function readSelector(c: Checker, value: unknown, path: FieldPath): LabelSelector {
  if (value === undefined || value === null) c.fail(path, 'required field is missing');
  const selector = readLabelSelector(c, value, path);
  // An empty selector would adopt every pod on the cluster.
  if (isEmptySelector(selector)) c.fail(path, 'expected a non-empty selector, got {}');
  return selector;
}

function checkSelectorMatches(
  c: Checker,
  selector: LabelSelector,
  template: PodTemplateSpec,
  specPath: FieldPath,
): void {
  const labels = template.metadata.labels;
  if (matchesSelector(selector, labels)) return;
  const shown = Object.entries(labels).map(([key, value]) => `${key}=${value}`).join(',');
  c.fail([...specPath, 'selector'], 'spec.selector does not match ' +
    `spec.template.metadata.labels (labels are {${shown}})`);
}

function readStrategy(c: Checker, value: unknown, path: FieldPath): DeploymentStrategy {
  const fields = readObject(c, value ?? {}, path, STRATEGY_RULES);
  const type =
    optEnum(c, fields.type, [...path, 'type'], STRATEGY_TYPES) ?? DEPLOYMENT_DEFAULTS.strategyType;
  const rollingPath = [...path, 'rollingUpdate'];
  if (type === 'Recreate') {
    if (fields.rollingUpdate !== undefined && fields.rollingUpdate !== null) {
      c.fail(rollingPath, 'expected no rollingUpdate when strategy.type is Recreate');
    }
    return { type };
  }

  const rolling = readObject(c, fields.rollingUpdate ?? {}, rollingPath, ROLLING_UPDATE_RULES);
  const maxSurge =
    readRollingAmount(c, rolling.maxSurge, [...rollingPath, 'maxSurge']) ??
    DEPLOYMENT_DEFAULTS.maxSurge;
  const maxUnavailablePath = [...rollingPath, 'maxUnavailable'];
  const maxUnavailable =
    readRollingAmount(c, rolling.maxUnavailable, maxUnavailablePath) ??
    DEPLOYMENT_DEFAULTS.maxUnavailable;
  if (typeof maxUnavailable === 'string' && parseInt(maxUnavailable, 10) > 100) {
    c.fail(maxUnavailablePath, `expected at most 100%, got ${maxUnavailable}`);
  }
  // With neither extra nor missing pods allowed, a rollout could never replace a pod.
  if (isZeroAmount(maxSurge) && isZeroAmount(maxUnavailable)) {
    c.fail(maxUnavailablePath, 'maxSurge and maxUnavailable cannot both be 0; ' +
      'a rolling update could never replace a pod');
  }
  return { type, rollingUpdate: { maxSurge, maxUnavailable } };
}

function readRollingAmount(
  c: Checker,
  value: unknown,
  path: FieldPath,
): number | string | undefined {
  const amount = optIntOrString(c, value, path);
  if (typeof amount === 'number' && amount < 0) {
    c.fail(path, `expected integer >= 0, got ${amount}`);
  }
  if (typeof amount === 'string' && !isPercent(amount)) {
    c.fail(path, `expected integer or percentage like "25%", got ${describe(amount)}`);
  }
  return amount;
}

function isZeroAmount(amount: number | string): boolean {
  return amount === 0 || (typeof amount === 'string' && parseInt(amount, 10) === 0);
}
