import {
  type Checker,
  type FieldPath,
  type FieldRules,
  optArray,
  optEnum,
  optInt,
  optIntOrString,
  optString,
  readObject,
  reqNonEmptyString,
  reqString,
} from './checker';
import { PROBE_DEFAULTS } from './defaults';
import { checkPortName } from './syntax';
import type { ExecAction, HTTPGetAction, HTTPHeader, Probe, TCPSocketAction } from './types';

/** Which of a container's probes is being read; they differ in what they allow. */
export type ProbeKind = 'readinessProbe' | 'livenessProbe' | 'startupProbe';

const PROBE_RULES: FieldRules = {
  httpGet: 'known',
  tcpSocket: 'known',
  exec: 'known',
  initialDelaySeconds: 'known',
  periodSeconds: 'known',
  timeoutSeconds: 'known',
  successThreshold: 'known',
  failureThreshold: 'known',
  // Without a handler Flotilla could run, the probe would silently vanish.
  grpc: 'refused',
  terminationGracePeriodSeconds: 'ignored',
};

const HTTP_GET_RULES: FieldRules = {
  path: 'known',
  port: 'known',
  scheme: 'known',
  httpHeaders: 'known',
  host: 'ignored',
};

const TCP_SOCKET_RULES: FieldRules = { port: 'known', host: 'ignored' };
const EXEC_RULES: FieldRules = { command: 'known' };
const HEADER_RULES: FieldRules = { name: 'known', value: 'known' };
const HANDLERS = ['httpGet', 'tcpSocket', 'exec'] as const;

/**
 * Reads one probe of a container; `portNames` are the names of the
 * container's ports, which a probe may use instead of a number.
 */
export function readProbe(
  c: Checker,
  value: unknown,
  path: FieldPath,
  kind: ProbeKind,
  portNames: ReadonlySet<string>,
): Probe {
  const fields = readObject(c, value, path, PROBE_RULES);
  const probe: Probe = {
    ...readHandler(c, fields, path, portNames),
    ...readTiming(c, fields, path),
  };
  // As in Kubernetes: only readiness may ask for several successes in a row.
  const { successThreshold } = probe;
  if (kind !== 'readinessProbe' && successThreshold !== 1) {
    c.fail([...path, 'successThreshold'], `expected 1 for a ${kind}, got ${successThreshold}`);
  }
  return probe;
}

function readHandler(
  c: Checker,
  fields: Record<string, unknown>,
  path: FieldPath,
  portNames: ReadonlySet<string>,
): Pick<Probe, 'httpGet' | 'tcpSocket' | 'exec'> {
  const present = HANDLERS.filter((name) => fields[name] !== undefined && fields[name] !== null);
  if (present.length !== 1) {
    const got = present.length === 0 ? 'none' : present.join(' and ');
    c.fail(path, `expected exactly one of httpGet, tcpSocket and exec, got ${got}`);
  }
  const handlerPath = [...path, present[0]];
  switch (present[0]) {
    case 'httpGet':
      return { httpGet: readHttpGet(c, fields.httpGet, handlerPath, portNames) };
    case 'tcpSocket':
      return { tcpSocket: readTcpSocket(c, fields.tcpSocket, handlerPath, portNames) };
    case 'exec':
      return { exec: readExec(c, fields.exec, handlerPath) };
  }
}

function readTiming(c: Checker, fields: Record<string, unknown>, path: FieldPath) {
  const read = (name: keyof typeof PROBE_DEFAULTS & keyof Probe, min: number) =>
    optInt(c, fields[name], [...path, name], { min }) ?? PROBE_DEFAULTS[name];
  return {
    initialDelaySeconds: read('initialDelaySeconds', 0),
    periodSeconds: read('periodSeconds', 1),
    timeoutSeconds: read('timeoutSeconds', 1),
    successThreshold: read('successThreshold', 1),
    failureThreshold: read('failureThreshold', 1),
  };
}

function readHttpGet(
  c: Checker,
  value: unknown,
  path: FieldPath,
  portNames: ReadonlySet<string>,
): HTTPGetAction {
  const fields = readObject(c, value, path, HTTP_GET_RULES);
  const port = readProbePort(c, fields.port, [...path, 'port'], portNames);
  const rawPath = optString(c, fields.path, [...path, 'path']) || PROBE_DEFAULTS.httpPath;
  const scheme =
    optEnum(c, fields.scheme, [...path, 'scheme'], ['HTTP', 'HTTPS'] as const) ??
    PROBE_DEFAULTS.httpScheme;
  const headersPath = [...path, 'httpHeaders'];
  const headers = optArray(c, fields.httpHeaders, headersPath, (item, itemPath) =>
    readHeader(c, item, itemPath),
  );

  // The kubelet requests "healthz" as "/healthz"; say so in the object.
  const action: HTTPGetAction = {
    path: rawPath.startsWith('/') ? rawPath : `/${rawPath}`,
    port,
    scheme,
  };
  if (headers && headers.length > 0) action.httpHeaders = headers;
  return action;
}

function readHeader(c: Checker, value: unknown, path: FieldPath): HTTPHeader {
  const fields = readObject(c, value, path, HEADER_RULES);
  const name = reqNonEmptyString(c, fields.name, [...path, 'name']);
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
    c.fail([...path, 'name'], `expected an HTTP header name, got ${JSON.stringify(name)}`);
  }
  return { name, value: optString(c, fields.value, [...path, 'value']) ?? '' };
}

function readTcpSocket(
  c: Checker,
  value: unknown,
  path: FieldPath,
  portNames: ReadonlySet<string>,
): TCPSocketAction {
  const fields = readObject(c, value, path, TCP_SOCKET_RULES);
  return { port: readProbePort(c, fields.port, [...path, 'port'], portNames) };
}

function readExec(c: Checker, value: unknown, path: FieldPath): ExecAction {
  const fields = readObject(c, value, path, EXEC_RULES);
  const commandPath = [...path, 'command'];
  const command = optArray(c, fields.command, commandPath, (item, itemPath) =>
    reqString(c, item, itemPath),
  );
  if (!command || command.length === 0) c.fail(commandPath, 'expected a non-empty command');
  return { command };
}

function readProbePort(
  c: Checker,
  value: unknown,
  path: FieldPath,
  portNames: ReadonlySet<string>,
): number | string {
  const port = optIntOrString(c, value, path);
  if (port === undefined) c.fail(path, 'required field is missing; expected integer or string');
  if (typeof port === 'number') {
    if (port < 1 || port > 65535) c.fail(path, `expected integer between 1 and 65535, got ${port}`);
    return port;
  }
  const problem = checkPortName(port);
  if (problem) c.fail(path, `${problem}, got ${JSON.stringify(port)}`);
  if (!portNames.has(port)) {
    c.fail(path, `expected the name of one of this container's ports, got ${JSON.stringify(port)}`);
  }
  return port;
}
