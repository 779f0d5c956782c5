import { createHash } from 'node:crypto';
import { canonicalJson } from '../model/canonical';

/** Label keys Flotilla puts on every container it creates. */
export const LABEL = {
  managed: 'io.flotilla.managed',
  cluster: 'io.flotilla.cluster',
  node: 'io.flotilla.node',
  pod: 'io.flotilla.pod',
  podUid: 'io.flotilla.pod-uid',
  namespace: 'io.flotilla.namespace',
  deployment: 'io.flotilla.deployment',
  container: 'io.flotilla.container',
  specHash: 'io.flotilla.spec-hash',
} as const;

/** What the labels of one Flotilla-managed container say about it. */
export interface ContainerIdentity {
  clusterId: string;
  nodeName: string;
  podName: string;
  podUid: string;
  namespace: string;
  /** Absent for a pod that no deployment owns. */
  deployment?: string;
  /** The container's name inside the pod spec, not the Docker name. */
  containerName: string;
  /** From {@link hashContainerSpec}; tells whether the container is outdated. */
  specHash: string;
}

/** Builds the full label set for a container Flotilla is about to create. */
export function buildContainerLabels(id: ContainerIdentity): Record<string, string> {
  const labels: Record<string, string> = {
    [LABEL.managed]: 'true',
    [LABEL.cluster]: id.clusterId,
    [LABEL.node]: id.nodeName,
    [LABEL.pod]: id.podName,
    [LABEL.podUid]: id.podUid,
    [LABEL.namespace]: id.namespace,
    [LABEL.container]: id.containerName,
    [LABEL.specHash]: id.specHash,
  };
  if (id.deployment !== undefined) labels[LABEL.deployment] = id.deployment;
  return labels;
}

/**
 * Reads the identity back from a container's labels; undefined when the
 * container is not Flotilla's or a required label is missing, so a container
 * someone else labelled by hand is never mistaken for a pod.
 */
export function readContainerLabels(
  labels: Record<string, string> | undefined,
): ContainerIdentity | undefined {
  if (!labels || labels[LABEL.managed] !== 'true') return undefined;

  const required = [
    LABEL.cluster,
    LABEL.node,
    LABEL.pod,
    LABEL.podUid,
    LABEL.namespace,
    LABEL.container,
    LABEL.specHash,
  ];
  if (required.some((key) => !labels[key])) return undefined;

  const id: ContainerIdentity = {
    clusterId: labels[LABEL.cluster],
    nodeName: labels[LABEL.node],
    podName: labels[LABEL.pod],
    podUid: labels[LABEL.podUid],
    namespace: labels[LABEL.namespace],
    containerName: labels[LABEL.container],
    specHash: labels[LABEL.specHash],
  };
  if (labels[LABEL.deployment]) id.deployment = labels[LABEL.deployment];
  return id;
}

/** The label filter that selects every container of one node of one cluster. */
export function nodeSelector(clusterId: string, nodeName: string): Record<string, string> {
  return { [LABEL.managed]: 'true', [LABEL.cluster]: clusterId, [LABEL.node]: nodeName };
}

/** The label filter that selects the containers of one pod instance. */
export function podSelector(clusterId: string, podUid: string): Record<string, string> {
  return { [LABEL.managed]: 'true', [LABEL.cluster]: clusterId, [LABEL.podUid]: podUid };
}

/**
 * A short stable hash of a container spec. Keys are sorted first so that the
 * same spec read from a differently ordered manifest hashes the same, and
 * undefined fields are dropped, as JSON would drop them.
 */
export function hashContainerSpec(spec: unknown): string {
  return createHash('sha256').update(canonicalJson(spec)).digest('hex').slice(0, 16);
}

/** True when every key/value of `selector` is present in `labels`. */
export function matchesLabels(
  labels: Record<string, string>,
  selector: Record<string, string>,
): boolean {
  return Object.entries(selector).every(([key, value]) => labels[key] === value);
}
