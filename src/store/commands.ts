/**
 * The commands of the desired-state log. A command carries every value that
 * is not a pure function of the state (uids, names, timestamps), chosen by the
 * server that proposes it, so that applying the same log on any server gives
 * the same tables.
 */
import type { Deployment, Manifest, Service } from '../manifest/types';
import type { Condition, Node, Pod, PodStatus } from '../model/types';

/** Kinds a user can create, change and delete. */
export type UserKind = 'Deployment' | 'Service';

/** Creates or updates a batch of user objects, all or nothing. */
export interface ApplyCommand {
  op: 'apply';
  objects: Manifest[];
  /** One fresh uid per object, used only for objects that get created. */
  uids: string[];
  now: string;
}

/** Creates one object; fails if it exists. */
export interface CreateCommand {
  op: 'create';
  object: Manifest;
  uid: string;
  now: string;
}

/**
 * Replaces one object. When `object.metadata.resourceVersion` is set it must
 * equal the stored one (optimistic concurrency), otherwise it is a conflict.
 */
export interface UpdateCommand {
  op: 'update';
  object: Deployment | Service;
  now: string;
}

/** Deletes a user object; a Deployment's pods start terminating. */
export interface DeleteCommand {
  op: 'delete';
  kind: UserKind;
  name: string;
  now: string;
}

/** Adds pods made by a Deployment's controller. */
export interface CreatePodsCommand {
  op: 'createPods';
  pods: Pod[];
}

/** Places pods on nodes (the scheduler's decision). */
export interface BindPodsCommand {
  op: 'bindPods';
  bindings: { name: string; uid: string; nodeName: string }[];
}

/** Marks pods as terminating: balancers drain them, then their node stops them. */
export interface TerminatePodsCommand {
  op: 'terminatePods';
  pods: { name: string; uid: string }[];
  now: string;
}

/** Removes a pod for good, once its node has stopped its containers. */
export interface RemovePodCommand {
  op: 'removePod';
  name: string;
  uid: string;
}

/** Records what a node observed of one of its pods. */
export interface PodStatusCommand {
  op: 'podStatus';
  name: string;
  uid: string;
  status: PodStatus;
}

/** Records a Deployment's observed status and its ReplicaSets' counts. */
export interface DeploymentStatusCommand {
  op: 'deploymentStatus';
  name: string;
  uid: string;
  status: NonNullable<Deployment['status']>;
  replicaSets: { name: string; replicas: number; readyReplicas: number }[];
  /** ReplicaSets beyond the revision history limit, with no pods left. */
  pruneReplicaSets: string[];
  /** The ReplicaSet whose rollout just completed; auto-rollback returns to such ones. */
  completedReplicaSet?: string;
}

/** Adds a node or refreshes what it reports about itself. */
export interface RegisterNodeCommand {
  op: 'registerNode';
  node: Pick<Node, 'metadata' | 'status'>;
  uid: string;
  now: string;
}

/**
 * Sets one condition of a node as another server observed it (the leader's
 * failure detector marking it NotReady, or Ready again). The transition
 * time changes only when the status does.
 */
export interface NodeConditionCommand {
  op: 'nodeCondition';
  name: string;
  condition: Pick<Condition, 'type' | 'status' | 'reason' | 'message'>;
  now: string;
}

/** Marks a node (un)schedulable: cordon and uncordon. */
export interface SetUnschedulableCommand {
  op: 'setUnschedulable';
  name: string;
  unschedulable: boolean;
}

/**
 * Removes a node from the cluster: its Node object and its pods go (their
 * controllers recreate the pods elsewhere), its address is forgotten, and
 * a tombstone keeps it from registering again until it is admitted anew.
 */
export interface RemoveNodeCommand {
  op: 'removeNode';
  name: string;
}

/** Lifts a removed node's tombstone: it joined again with an empty data directory. */
export interface AdmitNodeCommand {
  op: 'admitNode';
  name: string;
}

/** What a component saw happen to one object, before aggregation. */
export interface EventRecord {
  involvedObject: { kind: string; name: string; uid?: string };
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  /** The component that saw it: kubelet, deployment-controller, scheduler. */
  source: { component: string; host?: string };
  /** How many times it happened since the last record. */
  count: number;
  firstTimestamp: string;
  lastTimestamp: string;
}

/**
 * Records events, merging each into an earlier event with the same object,
 * reason and message; old and surplus events are pruned as of `now`.
 */
export interface RecordEventsCommand {
  op: 'recordEvents';
  events: EventRecord[];
  now: string;
}

/** Every command of the log. */
export type Command =
  | ApplyCommand
  | CreateCommand
  | UpdateCommand
  | DeleteCommand
  | CreatePodsCommand
  | BindPodsCommand
  | TerminatePodsCommand
  | RemovePodCommand
  | PodStatusCommand
  | DeploymentStatusCommand
  | RegisterNodeCommand
  | NodeConditionCommand
  | RecordEventsCommand
  | SetUnschedulableCommand
  | RemoveNodeCommand
  | AdmitNodeCommand;

/** What applying `apply` did to each object, in input order. */
export interface ApplyOutcome {
  kind: string;
  name: string;
  result: 'created' | 'configured' | 'unchanged';
}

/** What a command returns to whoever proposed it. */
export interface CommandResult {
  index: number;
  applied?: ApplyOutcome[];
  object?: unknown;
}
