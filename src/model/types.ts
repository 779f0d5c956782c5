/**
 * The objects Flotilla stores beside the Deployments and Services users
 * write: Pods, ReplicaSets (one per Deployment revision) and Nodes, in the
 * Kubernetes JSON shape so that the API can return them as they are.
 */
import type { Container, ObjectMeta, PodSpec, PodTemplateSpec } from '../manifest/types';

/** Who owns an object; the owner's deletion cascades to it. */
export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
}

/** Metadata of stored objects: the server fills uid, versions and times. */
export interface StoredMeta extends ObjectMeta {
  uid: string;
  resourceVersion: string;
  generation?: number;
  creationTimestamp: string;
  deletionTimestamp?: string;
  ownerReferences?: OwnerReference[];
}

/** A condition in kubectl's shape (Ready, Available, Progressing, ...). */
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  lastUpdateTime?: string;
}

/** What one container of a pod is doing, as the node that runs it saw it. */
export interface ContainerState {
  running?: { startedAt: string };
  waiting?: { reason: string; message?: string };
  terminated?: {
    exitCode: number;
    reason: string;
    message?: string;
    startedAt?: string;
    finishedAt?: string;
  };
}

/** The observed state of one container, in kubectl's shape. */
export interface ContainerStatus {
  name: string;
  containerID?: string;
  image: string;
  imageID: string;
  ready: boolean;
  started: boolean;
  restartCount: number;
  state: ContainerState;
  lastState: ContainerState;
}

/** The observed state of a pod, reported by the node that runs it. */
export interface PodStatus {
  phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';
  conditions?: Condition[];
  reason?: string;
  message?: string;
  hostIP?: string;
  podIP?: string;
  startTime?: string;
  containerStatuses?: ContainerStatus[];
}

/** One replica: a set of containers placed on one node. */
export interface Pod {
  apiVersion: 'v1';
  kind: 'Pod';
  metadata: StoredMeta;
  spec: PodSpec & { nodeName?: string };
  status: PodStatus;
}

/** One revision of a Deployment's pod template and how many pods it should run. */
export interface ReplicaSet {
  apiVersion: 'apps/v1';
  kind: 'ReplicaSet';
  metadata: StoredMeta;
  spec: {
    replicas: number;
    selector: { matchLabels: Record<string, string> };
    template: PodTemplateSpec;
  };
  status: { replicas: number; readyReplicas: number; availableReplicas: number };
}

/** A server of the cluster. */
export interface Node {
  apiVersion: 'v1';
  kind: 'Node';
  metadata: StoredMeta;
  spec: { unschedulable?: boolean };
  status: {
    conditions: Condition[];
    addresses: { type: string; address: string }[];
    capacity: Record<string, string>;
    allocatable: Record<string, string>;
    nodeInfo: { kubeletVersion: string; containerRuntimeVersion?: string; osImage?: string };
  };
}

export type { Container };
