/**
 * ClusterIP on one node: every Service port is served on the Docker
 * bridge's gateway address, which containers reach without any routing, at
 * the Service's own port; containers learn the address from Kubernetes'
 * NAME_SERVICE_HOST / NAME_SERVICE_PORT variables.
 */
import os from 'node:os';
import Docker from 'dockerode';
import type { Service } from '../manifest/types';

/** Kubernetes' variable prefix for a Service or port name: upper case, "-" as "_". */
export function serviceVariableName(name: string): string {
  return name.toUpperCase().replace(/-/g, '_');
}

/**
 * The variables Kubernetes gives a container for every Service that
 * exists when it starts, pointing at `host`: NAME_SERVICE_HOST,
 * NAME_SERVICE_PORT (the first port) and NAME_SERVICE_PORT_PORTNAME for
 * each named port.
 */
export function serviceEnvironment(services: Service[], host: string): string[] {
  const env: string[] = [];
  for (const svc of services) {
    const [first] = svc.spec.ports;
    if (!first) continue;
    const prefix = serviceVariableName(svc.metadata.name);
    env.push(`${prefix}_SERVICE_HOST=${host}`, `${prefix}_SERVICE_PORT=${first.port}`);
    for (const port of svc.spec.ports) {
      if (!port.name) continue;
      env.push(`${prefix}_SERVICE_PORT_${serviceVariableName(port.name)}=${port.port}`);
    }
  }
  return env;
}

/**
 * The gateway address of Docker's default bridge network, or undefined.
 * The engine does not always report it, and then the bridge interface's
 * own address on this host is the gateway.
 */
export async function findBridgeGateway(docker = new Docker()): Promise<string | undefined> {
  let info: BridgeInfo;
  try {
    info = (await docker.getNetwork('bridge').inspect()) as BridgeInfo;
  } catch {
    return undefined;
  }
  const reported = info.IPAM?.Config?.find((c) => c.Gateway)?.Gateway;
  if (reported) return reported;
  const device = info.Options?.['com.docker.network.bridge.name'] ?? 'docker0';
  return os.networkInterfaces()[device]?.find((a) => a.family === 'IPv4')?.address;
}

interface BridgeInfo {
  IPAM?: { Config?: { Gateway?: string }[] };
  Options?: Record<string, string>;
}
