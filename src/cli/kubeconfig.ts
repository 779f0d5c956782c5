/**
 * `flotilla kubeconfig`: a kubeconfig that points kubectl at an agent's
 * HTTPS listener, trusting the cluster's CA and carrying a token made for
 * it, so that `flotilla kubeconfig > ~/.kube/config` is the whole set-up.
 */
import type { ApiClient } from '../api/client';
import { InvalidError } from '../errors';
import type { Output } from './context';
import { createRequest, createToken } from './token';

/** The answer of `GET /apis/flotilla.io/v1/info`. */
export interface AgentInfo {
  nodeName?: string;
  clusterId?: string;
  /** `https://HOST:PORT` of the node's listener; absent without --listen. */
  server?: string;
  /** The cluster CA's certificate (PEM); absent without --listen. */
  caCert?: string;
}

/** Options of `flotilla kubeconfig`. */
export interface KubeconfigOptions {
  role?: string;
  ttl?: string;
  name?: string;
}

/** What kubectl needs besides the address: the CA to trust and the token to send. */
export interface KubeconfigAuth {
  caPem?: string;
  token?: string;
}

/**
 * Prints the kubeconfig for the agent `client` talks to. The server written
 * is the one the CLI reached when remote (an address that works from here),
 * else the agent's own listener.
 */
export async function runKubeconfig(
  client: ApiClient,
  opts: KubeconfigOptions,
  output: Output,
  remoteServer?: string,
): Promise<void> {
  // Checked first: a bad flag must not leave a token behind.
  const body = createRequest(
    {
      role: opts.role ?? 'admin',
      ttl: opts.ttl,
      description: `kubeconfig ${opts.name ?? 'flotilla'}`,
    },
    ['admin', 'read-only'],
  );
  const info = await client.request<AgentInfo>('GET', '/apis/flotilla.io/v1/info');
  const server = remoteServer ?? info?.server;
  if (!server) {
    throw new InvalidError('the agent has no network listener: start it with --listen HOST:PORT');
  }
  const caPem = info?.caCert ?? (await client.pinnedCa());
  if (!caPem) {
    throw new InvalidError('the agent did not say which CA signs its certificate (no caCert)');
  }
  const created = await createToken(client, body);
  const YAML = await import('yaml');
  const config = buildKubeconfig(server, opts.name ?? 'flotilla', { caPem, token: created.token });
  output.out(YAML.stringify(config, { lineWidth: 0 }));
}

/** A kubeconfig with one cluster, user and context, all named `name`. */
export function buildKubeconfig(server: string, name: string, auth: KubeconfigAuth = {}): unknown {
  const cluster: Record<string, string> = { server };
  if (auth.caPem) {
    cluster['certificate-authority-data'] = Buffer.from(auth.caPem).toString('base64');
  }
  const user: Record<string, string> = {};
  if (auth.token) user.token = auth.token;
  return {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster }],
    users: [{ name, user }],
    contexts: [{ name, context: { cluster: name, user: name, namespace: 'default' } }],
    'current-context': name,
    preferences: {},
  };
}
