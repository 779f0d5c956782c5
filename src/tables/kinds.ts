/**
 * The kinds the CLI and the API's tables address, and how a name typed on
 * the command line (`deploy`, `svc`, `pods`) resolves to one.
 */
import { InvalidError } from '../errors';

/** The kinds of object the CLI knows how to address. */
export type KindName = 'Node' | 'Pod' | 'Deployment' | 'Service';

/** How one kind is named on the command line and reached through the API. */
export interface ResourceType {
  kind: KindName;
  apiVersion: string;
  /** The collection's name in URLs and messages: `deployments`. */
  plural: string;
  /** kubectl's `-o name` prefix: `deployment.apps`. */
  qualified: string;
  /** How messages name the collection: `deployments.apps`. */
  qualifiedPlural: string;
  /** Path of the collection in the admin API. */
  collectionPath: string;
  /** Every word that selects this kind on the command line. */
  aliases: string[];
}

const NAMESPACE = '/namespaces/default';

/** Every kind the admin API serves, in the order `get all` would print them. */
export const RESOURCE_TYPES: readonly ResourceType[] = [
  {
    kind: 'Node',
    apiVersion: 'v1',
    plural: 'nodes',
    qualified: 'node',
    qualifiedPlural: 'nodes',
    collectionPath: '/api/v1/nodes',
    aliases: ['nodes', 'node', 'no'],
  },
  {
    kind: 'Pod',
    apiVersion: 'v1',
    plural: 'pods',
    qualified: 'pod',
    qualifiedPlural: 'pods',
    collectionPath: `/api/v1${NAMESPACE}/pods`,
    aliases: ['pods', 'pod', 'po'],
  },
  {
    kind: 'Deployment',
    apiVersion: 'apps/v1',
    plural: 'deployments',
    qualified: 'deployment.apps',
    qualifiedPlural: 'deployments.apps',
    collectionPath: `/apis/apps/v1${NAMESPACE}/deployments`,
    aliases: ['deployments', 'deployment', 'deploy', 'deployments.apps', 'deployment.apps'],
  },
  {
    kind: 'Service',
    apiVersion: 'v1',
    plural: 'services',
    qualified: 'service',
    qualifiedPlural: 'services',
    collectionPath: `/api/v1${NAMESPACE}/services`,
    aliases: ['services', 'service', 'svc'],
  },
];

/** Finds the kind a command-line word (`svc`, `deployment.apps`) names. */
export function resolveType(word: string): ResourceType {
  const lower = word.toLowerCase();
  const found = RESOURCE_TYPES.find((t) => t.aliases.includes(lower));
  if (!found) {
    throw new InvalidError(
      `the server doesn't have a resource type "${word}" ` +
        '(expected nodes, pods, deployments or services)',
    );
  }
  return found;
}

/** Finds the kind of a manifest's `kind` field (`Deployment`). */
export function typeOfKind(kind: string | undefined): ResourceType {
  const found = RESOURCE_TYPES.find((t) => t.kind === kind);
  if (!found) throw new InvalidError(`unsupported kind "${kind}"`);
  return found;
}

/** The URL path of one named object. */
export function objectPath(type: ResourceType, name: string): string {
  return `${type.collectionPath}/${encodeURIComponent(name)}`;
}

/** One object, or a whole collection when `name` is absent. */
export interface Target {
  type: ResourceType;
  name?: string;
}

/**
 * Reads kubectl's ways of naming objects: `TYPE[,TYPE] [NAME...]` or
 * `TYPE/NAME [TYPE/NAME...]`.
 */
export function parseTargets(words: string[]): Target[] {
  if (words.length === 0) throw new InvalidError('you must specify the type of resource');
  if (words[0].includes('/')) return words.map(parseSlashed);

  const types = words[0]
    .split(',')
    .filter((w) => w !== '')
    .map(resolveType);
  const names = words.slice(1);
  if (names.length === 0) return types.map((type) => ({ type }));
  if (types.length > 1) {
    throw new InvalidError('there is no need to specify a resource type with a list of types');
  }
  return names.map((name) => ({ type: types[0], name }));
}

function parseSlashed(word: string): Target {
  const slash = word.indexOf('/');
  if (slash < 0) {
    throw new InvalidError(`expected TYPE/NAME, got "${word}" among TYPE/NAME arguments`);
  }
  const name = word.slice(slash + 1);
  if (name === '') throw new InvalidError(`expected TYPE/NAME, got "${word}"`);
  return { type: resolveType(word.slice(0, slash)), name };
}

/** Reads exactly one `TYPE NAME` or `TYPE/NAME` pair. */
export function parseSingleTarget(words: string[]): Required<Target> {
  const targets = parseTargets(words);
  const [first] = targets;
  if (targets.length !== 1 || first.name === undefined) {
    throw new InvalidError('expected exactly one TYPE NAME or TYPE/NAME');
  }
  return { type: first.type, name: first.name };
}
