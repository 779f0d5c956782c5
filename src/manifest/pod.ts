import {
  type Checker,
  type FieldPath,
  type FieldRules,
  describe,
  optInt,
  optString,
  readObject,
  reqArray,
} from './checker';
import { readContainer } from './container';
import { POD_DEFAULTS } from './defaults';
import { readLabels, readTemplateMeta } from './metadata';
import type { Container, PodSpec, PodTemplateSpec } from './types';

const TEMPLATE_RULES: FieldRules = { metadata: 'known', spec: 'known' };

const POD_SPEC_RULES: FieldRules = {
  containers: 'known',
  restartPolicy: 'known',
  terminationGracePeriodSeconds: 'known',
  nodeSelector: 'known',
  // Ignoring these would run without data, without a setup step, or with
  // more privileges or a different network than the manifest asks for.
  volumes: 'refused',
  initContainers: 'refused',
  ephemeralContainers: 'refused',
  securityContext: 'refused',
  hostNetwork: 'refused',
  hostPID: 'refused',
  hostIPC: 'refused',
  hostUsers: 'refused',
  runtimeClassName: 'refused',
  affinity: 'ignored',
  tolerations: 'ignored',
  topologySpreadConstraints: 'ignored',
  serviceAccountName: 'ignored',
  serviceAccount: 'ignored',
  automountServiceAccountToken: 'ignored',
  imagePullSecrets: 'ignored',
  priorityClassName: 'ignored',
  priority: 'ignored',
  preemptionPolicy: 'ignored',
  nodeName: 'ignored',
  hostname: 'ignored',
  subdomain: 'ignored',
  hostAliases: 'ignored',
  dnsConfig: 'ignored',
  readinessGates: 'ignored',
  overhead: 'ignored',
  os: 'ignored',
  activeDeadlineSeconds: 'ignored',
  setHostnameAsFQDN: 'ignored',
  shareProcessNamespace: 'ignored',
  resourceClaims: 'ignored',
  schedulingGates: 'ignored',
  enableServiceLinks: 'ignored',
  dnsPolicy: { serverDefault: 'ClusterFirst' },
  schedulerName: { serverDefault: 'default-scheduler' },
};

/** Reads the pod template of a Deployment. */
export function readPodTemplate(c: Checker, value: unknown, path: FieldPath): PodTemplateSpec {
  if (value === undefined || value === null) c.fail(path, 'required field is missing');
  const fields = readObject(c, value, path, TEMPLATE_RULES);
  const metadata = readTemplateMeta(c, fields.metadata, [...path, 'metadata']);
  const spec = readPodSpec(c, fields.spec, [...path, 'spec']);
  return { metadata, spec };
}

function readPodSpec(c: Checker, value: unknown, path: FieldPath): PodSpec {
  if (value === undefined || value === null) c.fail(path, 'required field is missing');
  const fields = readObject(c, value, path, POD_SPEC_RULES);
  const containers = readContainers(c, fields.containers, [...path, 'containers']);
  const grace = optInt(c, fields.terminationGracePeriodSeconds,
    [...path, 'terminationGracePeriodSeconds'], { min: 0, max: Number.MAX_SAFE_INTEGER });
  readRestartPolicy(c, fields.restartPolicy, [...path, 'restartPolicy']);
  const nodeSelector = readLabels(c, fields.nodeSelector, [...path, 'nodeSelector']);

  const spec: PodSpec = {
    containers,
    restartPolicy: POD_DEFAULTS.restartPolicy,
    terminationGracePeriodSeconds: grace ?? POD_DEFAULTS.terminationGracePeriodSeconds,
  };
  if (nodeSelector && Object.keys(nodeSelector).length > 0) spec.nodeSelector = nodeSelector;
  return spec;
}

function readContainers(c: Checker, value: unknown, path: FieldPath): Container[] {
  const containers = reqArray(c, value, path, (item, itemPath) => readContainer(c, item, itemPath));
  if (containers.length === 0) c.fail(path, 'expected at least one container, got none');
  checkUniqueNames(c, containers, path);
  if (containers.length > 1) {
    // Refused rather than half-run: the pod actor drives one container.
    c.fail([...path, 1], `Flotilla runs one container per pod; got ${containers.length}`);
  }
  return containers;
}

// Kubernetes wants container names, and port names across all containers, unique in a pod.
function checkUniqueNames(c: Checker, containers: Container[], path: FieldPath): void {
  const containerNames = new Set<string>();
  const portNames = new Set<string>();
  containers.forEach((container, index) => {
    if (containerNames.has(container.name)) {
      c.fail([...path, index, 'name'], `duplicate container name "${container.name}"`);
    }
    containerNames.add(container.name);
    (container.ports ?? []).forEach((port, portIndex) => {
      if (port.name === undefined) return;
      if (portNames.has(port.name)) {
        c.fail([...path, index, 'ports', portIndex, 'name'], `duplicate port name "${port.name}"`);
      }
      portNames.add(port.name);
    });
  });
}

function readRestartPolicy(c: Checker, value: unknown, path: FieldPath): void {
  const policy = optString(c, value, path);
  if (policy === undefined || policy === 'Always') return;
  c.fail(path, `expected "Always" (the only restart policy a Deployment allows), ` +
    `got ${describe(policy)}`);
}
