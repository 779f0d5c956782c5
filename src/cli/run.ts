import type { ApiClient } from '../api/client';
import type { Container, Deployment } from '../model/k8s-types';
import { InvalidError } from '../errors';
import type { Output } from './context';
import { RESOURCE_TYPES } from '../tables/kinds';
import { parseLabelPairs } from './selector';

/** Options of `flotilla run`. */
export interface RunOptions {
  image?: string;
  port?: string;
  replicas?: string;
  labels?: string;
}

/** Runs `flotilla run NAME --image=IMAGE`: creates a one-container deployment. */
export async function runRun(client: ApiClient, name: string, opts: RunOptions, output: Output) {
  const deployment = buildRunDeployment(name, opts);
  const path = RESOURCE_TYPES.find((t) => t.kind === 'Deployment')?.collectionPath ?? '';
  await client.request('POST', path, deployment);
  output.out(`deployment.apps/${name} created\n`);
}

/** The Deployment `flotilla run` creates, labelled `app=NAME` plus --labels. */
export function buildRunDeployment(name: string, opts: RunOptions): Deployment {
  if (!opts.image) throw new InvalidError('--image is required');
  const replicas = parseCount(opts.replicas ?? '1', '--replicas', 0);
  const labels = { app: name, ...parseLabelPairs(opts.labels ?? '', '--labels') };

  const container: Container = { name, image: opts.image };
  if (opts.port !== undefined) {
    container.ports = [{ containerPort: parseCount(opts.port, '--port', 1), protocol: 'TCP' }];
  }
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, labels },
    spec: {
      replicas,
      selector: { matchLabels: labels },
      template: { metadata: { labels }, spec: { containers: [container] } },
    },
  };
}

/** Parses a whole-number flag value no smaller than `min`. */
export function parseCount(text: string, flag: string, min: number): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < min || Number(text) > 2147483647) {
    throw new InvalidError(`expected ${flag} to be a whole number >= ${min}, got "${text}"`);
  }
  return Number(text);
}
