import type { ApiClient } from '../api/client';
import type { Container, Deployment } from '../model/k8s-types';
import { InvalidError } from '../errors';
import type { Output } from './context';
import { objectPath, parseTargets } from '../tables/kinds';
import { MERGE_PATCH } from './scale';

/**
 * Runs `flotilla set image deployment/NAME CONTAINER=IMAGE...`. A merge
 * patch replaces lists whole, so the full container list is sent together
 * with the resourceVersion it was read at: a concurrent change then fails
 * with Conflict instead of being overwritten.
 */
export async function runSetImage(client: ApiClient, words: string[], output: Output) {
  const split = words.findIndex((w) => w.includes('='));
  if (split < 1) throw new InvalidError('expected TYPE/NAME followed by CONTAINER=IMAGE');
  const targets = parseTargets(words.slice(0, split));
  const images = parseImages(words.slice(split));

  for (const { type, name } of targets) {
    if (type.kind !== 'Deployment' || name === undefined) {
      throw new InvalidError('set image works on deployments: deployment/NAME');
    }
    const path = objectPath(type, name);
    const current = await client.request<Deployment>('GET', path);
    const containers = replaceImages(current.spec?.template?.spec?.containers ?? [], images);
    const patch = {
      metadata: { resourceVersion: current.metadata?.resourceVersion },
      spec: { template: { spec: { containers } } },
    };
    await client.request('PATCH', path, patch, MERGE_PATCH);
    output.out(`${type.qualified}/${name} image updated\n`);
  }
}

function parseImages(pairs: string[]): Map<string, string> {
  const images = new Map<string, string>();
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0 || eq === pair.length - 1) {
      throw new InvalidError(`expected CONTAINER=IMAGE, got "${pair}"`);
    }
    images.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  return images;
}

/** New containers with images swapped; `*` names every container. */
export function replaceImages(containers: Container[], images: Map<string, string>): Container[] {
  for (const name of images.keys()) {
    if (name !== '*' && !containers.some((c) => c.name === name)) {
      throw new InvalidError(`unable to find container named "${name}"`);
    }
  }
  return containers.map((c) => {
    const image = images.get(c.name) ?? images.get('*');
    return image === undefined ? c : { ...c, image };
  });
}
