import { isIP } from 'node:net';
import {
  type Checker,
  type FieldPath,
  type FieldRules,
  describe,
  optEnum,
  optInt,
  optIntOrString,
  optString,
  readObject,
  reqArray,
  reqInt,
} from './checker';
import { readProtocol } from './container';
import { SERVICE_DEFAULTS } from './defaults';
import { readLabels, readObjectMeta } from './metadata';
import { checkDns1035Label, checkDnsLabel, checkPortName } from './syntax';
import type { Service, ServicePort, ServiceSpec, ServiceType } from './types';

/** The range Kubernetes reserves for node ports by default. */
export const NODE_PORT_RANGE = { min: 30000, max: 32767 } as const;

const SERVICE_RULES: FieldRules = {
  apiVersion: 'known',
  kind: 'known',
  metadata: 'known',
  spec: 'known',
  status: 'serverSet',
};

const SPEC_RULES: FieldRules = {
  type: 'known',
  selector: 'known',
  ports: 'known',
  sessionAffinity: 'known',
  sessionAffinityConfig: 'known',
  clusterIP: 'known',
  clusterIPs: 'serverSet',
  ipFamilies: 'serverSet',
  ipFamilyPolicy: 'serverSet',
  internalTrafficPolicy: { serverDefault: 'Cluster' },
  externalTrafficPolicy: { serverDefault: 'Cluster' },
  allocateLoadBalancerNodePorts: { serverDefault: true },
  // Ignoring a source range would open the service to every client.
  loadBalancerSourceRanges: 'refused',
  externalIPs: 'ignored',
  externalName: 'ignored',
  loadBalancerIP: 'ignored',
  loadBalancerClass: 'ignored',
  healthCheckNodePort: 'ignored',
  publishNotReadyAddresses: 'ignored',
  trafficDistribution: 'ignored',
};

const PORT_RULES: FieldRules = {
  name: 'known',
  protocol: 'known',
  port: 'known',
  targetPort: 'known',
  nodePort: 'known',
  appProtocol: 'known',
};

const AFFINITY_CONFIG_RULES: FieldRules = { clientIP: 'known' };
const CLIENT_IP_RULES: FieldRules = { timeoutSeconds: 'known' };
const TYPES: readonly ServiceType[] = ['ClusterIP', 'NodePort', 'LoadBalancer'];

/** Reads a v1 Service whose apiVersion and kind are already checked. */
export function readService(c: Checker, value: unknown): Service {
  const fields = readObject(c, value, [], SERVICE_RULES);
  const metadata = readObjectMeta(c, fields.metadata, ['metadata'], checkDns1035Label);
  const spec = readServiceSpec(c, fields.spec, ['spec']);
  return { apiVersion: 'v1', kind: 'Service', metadata, spec };
}

function readServiceSpec(c: Checker, value: unknown, path: FieldPath): ServiceSpec {
  if (value === undefined || value === null) c.fail(path, 'required field is missing');
  const fields = readObject(c, value, path, SPEC_RULES);
  const type = readType(c, fields.type, [...path, 'type']);
  const ports = readPorts(c, fields.ports, [...path, 'ports'], type);
  const selector = readLabels(c, fields.selector, [...path, 'selector']);

  const spec: ServiceSpec = { type, ports, ...readAffinity(c, fields, path) };
  if (selector && Object.keys(selector).length > 0) spec.selector = selector;
  else c.warn([...path, 'selector'], 'no selector: this Service will have no endpoints');
  const clusterIP = readClusterIP(c, fields.clusterIP, [...path, 'clusterIP']);
  if (clusterIP !== undefined) spec.clusterIP = clusterIP;
  return spec;
}

function readType(c: Checker, value: unknown, path: FieldPath): ServiceType {
  if (value === 'ExternalName') {
    c.fail(path, 'type ExternalName is not supported; ' +
      'Flotilla supports ClusterIP, NodePort and LoadBalancer');
  }
  return optEnum(c, value, path, TYPES) ?? SERVICE_DEFAULTS.type;
}

function readPorts(c: Checker, value: unknown, path: FieldPath, type: ServiceType): ServicePort[] {
  const ports = reqArray(c, value, path, (item, itemPath) => readPort(c, item, itemPath, type));
  if (ports.length === 0) c.fail(path, 'expected at least one port, got none');
  const names = new Set<string | undefined>();
  const numbers = new Set<number>();
  const nodePorts = new Set<number>();
  ports.forEach((port, index) => {
    const at = (field: string) => [...path, index, field];
    // Endpoints and users tell the ports of a multi-port Service apart by name.
    if (ports.length > 1 && port.name === undefined) {
      c.fail(at('name'), 'required when a Service has more than one port');
    }
    if (names.has(port.name)) c.fail(at('name'), `duplicate port name "${port.name}"`);
    if (numbers.has(port.port)) c.fail(at('port'), `duplicate port ${port.port}`);
    if (port.nodePort !== undefined && nodePorts.has(port.nodePort)) {
      c.fail(at('nodePort'), `duplicate nodePort ${port.nodePort}`);
    }
    names.add(port.name);
    numbers.add(port.port);
    if (port.nodePort !== undefined) nodePorts.add(port.nodePort);
  });
  return ports;
}

function readPort(c: Checker, value: unknown, path: FieldPath, type: ServiceType): ServicePort {
  const fields = readObject(c, value, path, PORT_RULES);
  const port = reqInt(c, fields.port, [...path, 'port'], { min: 1, max: 65535 });
  const result: ServicePort = {
    protocol: readProtocol(c, fields.protocol, path),
    port,
    targetPort: readTargetPort(c, fields.targetPort, [...path, 'targetPort']) ?? port,
  };
  const name = optString(c, fields.name, [...path, 'name']);
  if (name) {
    const problem = checkDnsLabel(name);
    if (problem) c.fail([...path, 'name'], `${problem}, got ${JSON.stringify(name)}`);
    result.name = name;
  }
  const nodePort = readNodePort(c, fields.nodePort, [...path, 'nodePort'], type);
  if (nodePort !== undefined) result.nodePort = nodePort;
  const appProtocol = optString(c, fields.appProtocol, [...path, 'appProtocol']);
  if (appProtocol) result.appProtocol = appProtocol;
  return result;
}

// Kubernetes reads 0 and "" as "same as port".
function readTargetPort(c: Checker, value: unknown, path: FieldPath): number | string | undefined {
  const target = optIntOrString(c, value, path);
  if (target === undefined || target === 0 || target === '') return undefined;
  if (typeof target === 'number' && (target < 1 || target > 65535)) {
    c.fail(path, `expected integer between 1 and 65535, got ${target}`);
  }
  if (typeof target === 'string') {
    const problem = checkPortName(target);
    if (problem) c.fail(path, `${problem}, got ${JSON.stringify(target)}`);
  }
  return target;
}

function readNodePort(
  c: Checker,
  value: unknown,
  path: FieldPath,
  type: ServiceType,
): number | undefined {
  const nodePort = optInt(c, value, path);
  if (nodePort === undefined || nodePort === 0) return undefined;
  if (type === 'ClusterIP') {
    c.fail(path, 'nodePort is allowed only for NodePort and LoadBalancer services, ' +
      'got type ClusterIP');
  }
  return optInt(c, nodePort, path, NODE_PORT_RANGE);
}

function readAffinity(
  c: Checker,
  fields: Record<string, unknown>,
  specPath: FieldPath,
): Pick<ServiceSpec, 'sessionAffinity' | 'sessionAffinityConfig'> {
  const path = [...specPath, 'sessionAffinity'];
  const affinity =
    optEnum(c, fields.sessionAffinity, path, ['None', 'ClientIP'] as const) ??
    SERVICE_DEFAULTS.sessionAffinity;
  const configPath = [...specPath, 'sessionAffinityConfig'];
  const config = fields.sessionAffinityConfig;
  if (affinity === 'None') {
    if (config !== undefined && config !== null) {
      c.fail(configPath, 'expected no sessionAffinityConfig when sessionAffinity is None');
    }
    return { sessionAffinity: affinity };
  }

  const configFields = readObject(c, config ?? {}, configPath, AFFINITY_CONFIG_RULES);
  const clientIPPath = [...configPath, 'clientIP'];
  const clientIP = readObject(c, configFields.clientIP ?? {}, clientIPPath, CLIENT_IP_RULES);
  const timeoutPath = [...clientIPPath, 'timeoutSeconds'];
  const timeoutSeconds =
    optInt(c, clientIP.timeoutSeconds, timeoutPath, { min: 1, max: 86400 }) ??
    SERVICE_DEFAULTS.clientIPTimeoutSeconds;
  return { sessionAffinity: affinity, sessionAffinityConfig: { clientIP: { timeoutSeconds } } };
}

function readClusterIP(c: Checker, value: unknown, path: FieldPath): string | undefined {
  const clusterIP = optString(c, value, path);
  if (!clusterIP) return undefined;
  // A headless Service relies on cluster DNS, which Flotilla does not run.
  if (clusterIP === 'None') {
    c.fail(path, 'headless Services (clusterIP: None) are not supported by Flotilla');
  }
  if (isIP(clusterIP) === 0) c.fail(path, `expected an IP address, got ${describe(clusterIP)}`);
  return clusterIP;
}
