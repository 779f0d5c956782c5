import type { ApiClient } from '../api/client';
import { ApiError, InvalidError } from '../errors';
import { settleErrors, type Output } from './context';
import { loadManifests } from './manifest-module';
import { objectPath, parseTargets, typeOfKind, type ResourceType } from '../tables/kinds';

/** Options of `flotilla delete`. */
export interface DeleteOptions {
  filename?: string[];
  recursive?: boolean;
  ignoreNotFound?: boolean;
}

interface Victim {
  type: ResourceType;
  name: string;
}

const DELETABLE = ['Deployment', 'Service'];

/**
 * Runs `flotilla delete KIND NAME...` or `delete -f PATH`. Every named
 * object is tried even after a failure, as kubectl does, and the failures
 * are reported at the end.
 */
export async function runDelete(
  client: ApiClient,
  words: string[],
  opts: DeleteOptions,
  output: Output,
): Promise<void> {
  const victims = await collectVictims(words, opts);
  const errors: unknown[] = [];
  for (const victim of victims) {
    try {
      await deleteOne(client, victim, opts.ignoreNotFound === true, output);
    } catch (err) {
      // Only an answer about one object lets the others go on.
      if (!(err instanceof ApiError)) throw err;
      errors.push(err);
    }
  }
  settleErrors(errors, output);
}

async function collectVictims(words: string[], opts: DeleteOptions): Promise<Victim[]> {
  if (opts.filename?.length) {
    if (words.length) throw new InvalidError('cannot name objects together with -f');
    const loaded = await loadManifests(opts.filename, {
      stdin: process.stdin,
      recursive: opts.recursive === true,
    });
    return loaded.objects.map(({ object }) => ({
      type: typeOfKind(object.kind),
      name: object.metadata?.name ?? '',
    }));
  }

  const victims = parseTargets(words).map(({ type, name }) => {
    if (name === undefined) throw new InvalidError(`expected a name after "${type.plural}"`);
    return { type, name };
  });
  for (const { type } of victims) {
    if (!DELETABLE.includes(type.kind)) {
      throw new InvalidError(`${type.plural} cannot be deleted; delete their deployment`);
    }
  }
  return victims;
}

async function deleteOne(client: ApiClient, v: Victim, ignoreNotFound: boolean, output: Output) {
  try {
    await client.request('DELETE', objectPath(v.type, v.name));
  } catch (err) {
    if (ignoreNotFound && err instanceof ApiError && err.status === 404) return;
    throw err;
  }
  output.out(`${v.type.qualified} "${v.name}" deleted\n`);
}
