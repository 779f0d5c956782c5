import {
  type Checker,
  type FieldPath,
  type FieldRules,
  describe,
  optArray,
  optEnum,
  optString,
  optStringArray,
  readObject,
  reqInt,
  reqNonEmptyString,
} from './checker';
import { defaultImagePullPolicy, POD_DEFAULTS } from './defaults';
import { type ProbeKind, readProbe } from './probe';
import { parseQuantity } from './quantity';
import { checkDnsLabel, checkImageReference, checkPortName } from './syntax';
import type {
  Container,
  ContainerPort,
  EnvVar,
  ImagePullPolicy,
  ResourceList,
  ResourceRequirements,
} from './types';

const CONTAINER_RULES: FieldRules = {
  name: 'known',
  image: 'known',
  imagePullPolicy: 'known',
  command: 'known',
  args: 'known',
  workingDir: 'known',
  env: 'known',
  ports: 'known',
  resources: 'known',
  readinessProbe: 'known',
  livenessProbe: 'known',
  startupProbe: 'known',
  // Running without these would lose data, variables or a security boundary.
  volumeMounts: 'refused',
  volumeDevices: 'refused',
  envFrom: 'refused',
  securityContext: 'refused',
  lifecycle: 'ignored',
  stdin: 'ignored',
  stdinOnce: 'ignored',
  tty: 'ignored',
  resizePolicy: 'ignored',
  restartPolicy: 'ignored',
  terminationMessagePath: { serverDefault: '/dev/termination-log' },
  terminationMessagePolicy: { serverDefault: 'File' },
};

const ENV_RULES: FieldRules = { name: 'known', value: 'known', valueFrom: 'refused' };
const PORT_RULES: FieldRules = {
  name: 'known',
  containerPort: 'known',
  protocol: 'known',
  hostPort: 'ignored',
  hostIP: 'ignored',
};
const RESOURCES_RULES: FieldRules = { requests: 'known', limits: 'known', claims: 'ignored' };
const RESOURCE_LIST_RULES: FieldRules = {
  cpu: 'known',
  memory: 'known',
  'ephemeral-storage': 'ignored',
};
const PULL_POLICIES: readonly ImagePullPolicy[] = ['Always', 'IfNotPresent', 'Never'];
const PROBES: readonly ProbeKind[] = ['readinessProbe', 'livenessProbe', 'startupProbe'];

/** Reads one container of a pod template and applies the Kubernetes defaults. */
export function readContainer(c: Checker, value: unknown, path: FieldPath): Container {
  const fields = readObject(c, value, path, CONTAINER_RULES);
  const name = reqNonEmptyString(c, fields.name, [...path, 'name']);
  const nameProblem = checkDnsLabel(name);
  if (nameProblem) c.fail([...path, 'name'], `${nameProblem}, got ${JSON.stringify(name)}`);
  const image = readImage(c, fields.image, [...path, 'image']);
  const policyPath = [...path, 'imagePullPolicy'];
  const pullPolicy = optEnum(c, fields.imagePullPolicy, policyPath, PULL_POLICIES);

  const container: Container = {
    name,
    image,
    imagePullPolicy: pullPolicy ?? defaultImagePullPolicy(image),
  };
  Object.assign(container, readProcess(c, fields, path));
  const ports = optArray(c, fields.ports, [...path, 'ports'], (item, itemPath) =>
    readContainerPort(c, item, itemPath),
  );
  if (ports && ports.length > 0) container.ports = ports;
  const resources = readResources(c, fields.resources, [...path, 'resources']);
  if (resources) container.resources = resources;
  readProbes(c, fields, path, container);
  return container;
}

function readImage(c: Checker, value: unknown, path: FieldPath): string {
  const image = reqNonEmptyString(c, value, path);
  const problem = checkImageReference(image);
  if (problem) c.fail(path, `${problem}, got ${JSON.stringify(image)}`);
  return image;
}

function readProcess(
  c: Checker,
  fields: Record<string, unknown>,
  path: FieldPath,
): Pick<Container, 'command' | 'args' | 'workingDir' | 'env'> {
  const result: Pick<Container, 'command' | 'args' | 'workingDir' | 'env'> = {};
  const command = optStringArray(c, fields.command, [...path, 'command']);
  const args = optStringArray(c, fields.args, [...path, 'args']);
  const workingDir = optString(c, fields.workingDir, [...path, 'workingDir']);
  if (workingDir && !workingDir.startsWith('/')) {
    c.fail([...path, 'workingDir'], `expected an absolute path, got ${JSON.stringify(workingDir)}`);
  }
  const env = readEnv(c, fields.env, [...path, 'env']);

  // An empty list means "not set" in Kubernetes; dropping it keeps equal manifests equal.
  if (command && command.length > 0) result.command = command;
  if (args && args.length > 0) result.args = args;
  if (workingDir) result.workingDir = workingDir;
  if (env && env.length > 0) result.env = env;
  return result;
}

function readEnv(c: Checker, value: unknown, path: FieldPath): EnvVar[] | undefined {
  const seen = new Set<string>();
  return optArray(c, value, path, (item, itemPath) => {
    const fields = readObject(c, item, itemPath, ENV_RULES);
    const name = reqNonEmptyString(c, fields.name, [...itemPath, 'name']);
    if (name.includes('=') || /[^\x20-\x7e]/.test(name)) {
      const got = JSON.stringify(name);
      c.fail([...itemPath, 'name'], `expected printable ASCII without "=", got ${got}`);
    }
    if (seen.has(name)) {
      c.warn([...itemPath, 'name'], `duplicate environment variable "${name}"; the last one wins`);
    }
    seen.add(name);
    return { name, value: optString(c, fields.value, [...itemPath, 'value']) ?? '' };
  });
}

function readContainerPort(c: Checker, value: unknown, path: FieldPath): ContainerPort {
  const fields = readObject(c, value, path, PORT_RULES);
  const containerPort = reqInt(c, fields.containerPort, [...path, 'containerPort'], {
    min: 1,
    max: 65535,
  });
  const port: ContainerPort = { containerPort, protocol: readProtocol(c, fields.protocol, path) };
  const name = optString(c, fields.name, [...path, 'name']);
  if (name) {
    const problem = checkPortName(name);
    if (problem) c.fail([...path, 'name'], `${problem}, got ${JSON.stringify(name)}`);
    port.name = name;
  }
  return port;
}

/** Reads the protocol of a port, which Flotilla's balancer supports only as TCP. */
export function readProtocol(c: Checker, value: unknown, portPath: FieldPath): 'TCP' {
  const path = [...portPath, 'protocol'];
  const protocol = optString(c, value, path) ?? POD_DEFAULTS.protocol;
  if (protocol === 'TCP') return protocol;
  if (protocol === 'UDP' || protocol === 'SCTP') {
    c.fail(path, `protocol ${protocol} is not supported; Flotilla supports only TCP`);
  }
  c.fail(path, `expected "TCP", got ${describe(protocol)}`);
}

function readResources(
  c: Checker,
  value: unknown,
  path: FieldPath,
): ResourceRequirements | undefined {
  if (value === undefined || value === null) return undefined;
  const fields = readObject(c, value, path, RESOURCES_RULES);
  const limits = readResourceList(c, fields.limits, [...path, 'limits']);
  const requests = readResourceList(c, fields.requests, [...path, 'requests']) ?? {};
  for (const resource of ['cpu', 'memory'] as const) {
    const limit = limits?.[resource];
    // Kubernetes requests what it limits unless told otherwise.
    if (limit === undefined) continue;
    const request = requests[resource] ?? limit;
    requests[resource] = request;
    if (parseQuantity(request)! > parseQuantity(limit)!) {
      const message = `expected at most the limit ${limit}, got ${request}`;
      c.fail([...path, 'requests', resource], message);
    }
  }

  const resources: ResourceRequirements = {};
  if (Object.keys(requests).length > 0) resources.requests = requests;
  if (limits && Object.keys(limits).length > 0) resources.limits = limits;
  return Object.keys(resources).length > 0 ? resources : undefined;
}

function readResourceList(c: Checker, value: unknown, path: FieldPath): ResourceList | undefined {
  if (value === undefined || value === null) return undefined;
  const fields = readObject(c, value, path, RESOURCE_LIST_RULES);
  const list: ResourceList = {};
  for (const resource of ['cpu', 'memory'] as const) {
    const quantity = readQuantity(c, fields[resource], [...path, resource]);
    if (quantity !== undefined) list[resource] = quantity;
  }
  return list;
}

// Kubernetes accepts `cpu: 1` and `cpu: 0.5` as well as strings.
function readQuantity(c: Checker, value: unknown, path: FieldPath): string | undefined {
  if (value === undefined || value === null) return undefined;
  const text = typeof value === 'number' ? String(value) : value;
  if (typeof text !== 'string' || parseQuantity(text) === undefined) {
    c.fail(path, `expected a quantity like "500m", "1", "128Mi" or "1G", got ${describe(value)}`);
  }
  return text;
}

function readProbes(
  c: Checker,
  fields: Record<string, unknown>,
  path: FieldPath,
  container: Container,
): void {
  const portNames = new Set((container.ports ?? []).flatMap((port) => port.name ?? []));
  for (const kind of PROBES) {
    const value = fields[kind];
    if (value === undefined || value === null) continue;
    container[kind] = readProbe(c, value, [...path, kind], kind, portNames);
  }
}
