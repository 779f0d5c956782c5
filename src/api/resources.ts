/**
 * The resources the admin API serves, and the discovery documents that tell
 * kubectl about them: which group, which verbs, which short names.
 */
import type { Kind } from '../store/store';

/** One served resource (a kind at a URL), as discovery describes it. */
export interface ResourceInfo {
  /** The plural name in URLs: `deployments`. */
  name: string;
  singularName: string;
  kind: Kind | 'Namespace';
  /** '' for the core group. */
  group: string;
  namespaced: boolean;
  /** Create, update, patch and delete are served. */
  writable: boolean;
  /** Only delete is served among the writes (pods). */
  deletable: boolean;
  shortNames?: string[];
  categories?: string[];
}

/** Every resource, in discovery order. */
export const RESOURCES: ResourceInfo[] = [
  {
    name: 'namespaces', singularName: 'namespace', kind: 'Namespace', group: '',
    namespaced: false, writable: false, deletable: false, shortNames: ['ns'],
  },
  {
    name: 'nodes', singularName: 'node', kind: 'Node', group: '',
    namespaced: false, writable: false, deletable: false, shortNames: ['no'],
  },
  {
    name: 'pods', singularName: 'pod', kind: 'Pod', group: '',
    namespaced: true, writable: false, deletable: true, shortNames: ['po'], categories: ['all'],
  },
  {
    name: 'services', singularName: 'service', kind: 'Service', group: '',
    namespaced: true, writable: true, deletable: true, shortNames: ['svc'], categories: ['all'],
  },
  {
    name: 'events', singularName: 'event', kind: 'Event', group: '',
    namespaced: true, writable: false, deletable: false, shortNames: ['ev'],
  },
  {
    name: 'deployments', singularName: 'deployment', kind: 'Deployment', group: 'apps',
    namespaced: true, writable: true, deletable: true, shortNames: ['deploy'], categories: ['all'],
  },
  {
    name: 'replicasets', singularName: 'replicaset', kind: 'ReplicaSet', group: 'apps',
    namespaced: true, writable: false, deletable: false, shortNames: ['rs'], categories: ['all'],
  },
];

/** The one namespace Flotilla has. */
export const NAMESPACE = 'default';

/** `v1` or `apps/v1`. */
export function apiVersionOf(resource: ResourceInfo): string {
  return resource.group ? `${resource.group}/v1` : 'v1';
}

/** The URL prefix of a resource's group version: `/api/v1` or `/apis/apps/v1`. */
export function groupPrefix(group: string): string {
  return group ? `/apis/${group}/v1` : '/api/v1';
}

function verbsOf(r: ResourceInfo): string[] {
  const verbs = ['get', 'list', 'watch'];
  if (r.writable) verbs.push('create', 'update', 'patch');
  // Nodes take patches of spec.unschedulable only: cordon and uncordon.
  if (r.kind === 'Node') verbs.push('patch');
  if (r.deletable) verbs.push('delete');
  return verbs;
}

/** The APIResourceList of one group version, with the subresources served. */
export function resourceList(group: string): unknown {
  const resources: unknown[] = [];
  for (const r of RESOURCES.filter((x) => x.group === group)) {
    resources.push({
      name: r.name,
      singularName: r.singularName,
      namespaced: r.namespaced,
      kind: r.kind,
      verbs: verbsOf(r),
      ...(r.shortNames ? { shortNames: r.shortNames } : {}),
      ...(r.categories ? { categories: r.categories } : {}),
    });
    resources.push(...subresourcesOf(r));
  }
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: group ? `${group}/v1` : 'v1',
    resources,
  };
}

function subresourcesOf(r: ResourceInfo): unknown[] {
  const sub = (name: string, kind: string, verbs: string[], group?: string) => ({
    name: `${r.name}/${name}`,
    singularName: '',
    namespaced: r.namespaced,
    kind,
    verbs,
    ...(group ? { group, version: 'v1' } : {}),
  });
  if (r.kind === 'Deployment') {
    return [
      sub('scale', 'Scale', ['get', 'patch', 'update'], 'autoscaling'),
      sub('status', 'Deployment', ['get']),
    ];
  }
  if (r.kind === 'Pod') return [sub('log', 'Pod', ['get'])];
  return [];
}

/** The answer of `GET /api`. */
export function coreVersions(serverAddress: string): unknown {
  return {
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }],
  };
}

/** The answer of `GET /apis`: the named groups. */
export function groupList(): unknown {
  const version = { groupVersion: 'apps/v1', version: 'v1' };
  return {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: [{ name: 'apps', versions: [version], preferredVersion: version }],
  };
}
