/**
 * `flotilla kubeconfig`: a kubeconfig that points kubectl at the local
 * agent's network listener, so that `flotilla kubeconfig > ~/.kube/config`
 * is the whole set-up.
 */
import type { ApiClient } from '../api/client';
import { InvalidError } from '../errors';
import type { Output } from './context';

/** The answer of `GET /apis/flotilla.io/v1/info`. */
export interface AgentInfo {
  nodeName?: string;
  clusterId?: string;
  /** `http://HOST:PORT` of the node's listener; absent without --listen. */
  server?: string;
}

/** Options of `flotilla kubeconfig`. */
export interface KubeconfigOptions {
  server?: string;
  name?: string;
}

/** Prints the kubeconfig for the agent `client` talks to. */
export async function runKubeconfig(
  client: ApiClient,
  opts: KubeconfigOptions,
  output: Output,
): Promise<void> {
  const server = opts.server ?? (await serverOf(client));
  const YAML = await import('yaml');
  output.out(YAML.stringify(buildKubeconfig(server, opts.name ?? 'flotilla')));
}

async function serverOf(client: ApiClient): Promise<string> {
  const info = await client.request<AgentInfo>('GET', '/apis/flotilla.io/v1/info');
  if (!info?.server) {
    throw new InvalidError(
      'the agent has no network listener: start it with --listen HOST:PORT, or pass --server URL',
    );
  }
  return info.server;
}

/** A kubeconfig with one cluster, user and context, all named `name`. */
export function buildKubeconfig(server: string, name: string): unknown {
  return {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster: { server } }],
    users: [{ name, user: {} }],
    contexts: [{ name, context: { cluster: name, user: name, namespace: 'default' } }],
    'current-context': name,
    preferences: {},
  };
}
