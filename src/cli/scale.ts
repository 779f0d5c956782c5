import type { ApiClient } from '../api/client';
import { InvalidError } from '../errors';
import type { Output } from './context';
import { objectPath, parseSingleTarget } from '../tables/kinds';
import { parseCount } from './run';

/** The content type of a JSON merge patch (RFC 7386). */
export const MERGE_PATCH = { 'content-type': 'application/merge-patch+json' };

/** Runs `flotilla scale deployment NAME --replicas=N`. */
export async function runScale(
  client: ApiClient,
  words: string[],
  opts: { replicas?: string },
  output: Output,
): Promise<void> {
  const { type, name } = parseSingleTarget(words);
  if (type.kind !== 'Deployment') throw new InvalidError(`${type.plural} cannot be scaled`);
  if (opts.replicas === undefined) throw new InvalidError('--replicas is required');
  const replicas = parseCount(opts.replicas, '--replicas', 0);

  await client.request('PATCH', objectPath(type, name), { spec: { replicas } }, MERGE_PATCH);
  output.out(`${type.qualified}/${name} scaled\n`);
}
