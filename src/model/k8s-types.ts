/**
 * Shapes of the objects the admin API returns, in the Kubernetes dialect.
 * Only the fields Flotilla fills are listed, and every one is optional
 * because the client must cope with an older or newer server.
 */

/** Labels or annotations: string keys to string values. */
export type StringMap = Record<string, string>;

/** A link from an object to the object that owns it. */
export interface OwnerReference {
  apiVersion?: string;
  kind?: string;
  name?: string;
  uid?: string;
  controller?: boolean;
}

/** The metadata every API object carries. */
export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  labels?: StringMap;
  annotations?: StringMap;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  resourceVersion?: string;
  generation?: number;
  ownerReferences?: OwnerReference[];
}

/** Any API object: kind, apiVersion and metadata, plus whatever else. */
export interface KubeObject {
  kind?: string;
  apiVersion?: string;
  metadata?: ObjectMeta;
  [field: string]: unknown;
}

/** A list of objects as `GET .../<resource>` returns it. */
export interface List<T extends KubeObject = KubeObject> {
  kind?: string;
  apiVersion?: string;
  metadata?: { resourceVersion?: string };
  items: T[];
}

/** One condition of a node, pod or deployment. */
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown' | string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  lastUpdateTime?: string;
  lastHeartbeatTime?: string;
}

/** CPU, memory and pod counts of a node. */
export interface ResourceList {
  cpu?: string;
  memory?: string;
  pods?: string;
}

/** A server in the cluster. */
export interface Node extends KubeObject {
  spec?: { unschedulable?: boolean };
  status?: {
    conditions?: Condition[];
    addresses?: { type: string; address: string }[];
    capacity?: ResourceList;
    allocatable?: ResourceList;
    nodeInfo?: { kubeletVersion?: string };
  };
}

/** A container port as a manifest declares it. */
export interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol?: string;
}

/** A container of a pod template or pod. */
export interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  ports?: ContainerPort[];
  env?: { name: string; value?: string }[];
  [field: string]: unknown;
}

/** What a container is doing now, or did last: exactly one key is set. */
export interface ContainerState {
  running?: { startedAt?: string };
  waiting?: { reason?: string; message?: string };
  terminated?: {
    exitCode?: number;
    signal?: number;
    reason?: string;
    message?: string;
    startedAt?: string;
    finishedAt?: string;
  };
}

/** The observed state of one container of a pod. */
export interface ContainerStatus {
  name: string;
  containerID?: string;
  ready?: boolean;
  restartCount?: number;
  image?: string;
  imageID?: string;
  started?: boolean;
  state?: ContainerState;
  lastState?: ContainerState;
}

/** One replica of a deployment, placed on a node. */
export interface Pod extends KubeObject {
  spec?: { nodeName?: string; containers?: Container[] };
  status?: {
    phase?: string;
    reason?: string;
    message?: string;
    conditions?: Condition[];
    podIP?: string;
    hostIP?: string;
    startTime?: string;
    containerStatuses?: ContainerStatus[];
  };
}

/** The pod template inside a deployment. */
export interface PodTemplate {
  metadata?: ObjectMeta;
  spec?: { containers?: Container[]; [field: string]: unknown };
}

/** A label selector; Flotilla supports matchLabels only. */
export interface LabelSelector {
  matchLabels?: StringMap;
}

/** An apps/v1 Deployment with its observed status. */
export interface Deployment extends KubeObject {
  spec?: {
    replicas?: number;
    selector?: LabelSelector;
    minReadySeconds?: number;
    strategy?: {
      type?: string;
      rollingUpdate?: { maxUnavailable?: number | string; maxSurge?: number | string };
    };
    template?: PodTemplate;
  };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    updatedReplicas?: number;
    readyReplicas?: number;
    availableReplicas?: number;
    unavailableReplicas?: number;
    conditions?: Condition[];
  };
}

/** One port of a Service. */
export interface ServicePort {
  name?: string;
  protocol?: string;
  port: number;
  targetPort?: number | string;
  nodePort?: number;
}

/** A v1 Service with its assigned node ports. */
export interface Service extends KubeObject {
  spec?: {
    type?: string;
    selector?: StringMap;
    ports?: ServicePort[];
    clusterIP?: string;
    externalIPs?: string[];
  };
  status?: { loadBalancer?: { ingress?: { ip?: string; hostname?: string }[] } };
}

/** Something that happened to an object, as `kubectl describe` lists it. */
export interface Event extends KubeObject {
  involvedObject?: { kind?: string; name?: string; uid?: string };
  type?: string;
  reason?: string;
  message?: string;
  count?: number;
  source?: { component?: string; host?: string };
  firstTimestamp?: string;
  lastTimestamp?: string;
  eventTime?: string;
}

/** The error body of every failed API request. */
export interface Status extends KubeObject {
  status?: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  code?: number;
  details?: {
    name?: string;
    kind?: string;
    causes?: { field?: string; message?: string; reason?: string }[];
  };
}

/** The answer of `GET /version`. */
export interface VersionInfo {
  major?: string;
  minor?: string;
  gitVersion?: string;
  platform?: string;
}

/** One line of the apply endpoint's answer. */
export interface ApplyItem {
  kind: string;
  name: string;
  result: 'created' | 'configured' | 'unchanged';
}

/** The answer of `POST /apis/flotilla.io/v1/apply`. */
export interface ApplyResponse {
  items: ApplyItem[];
  warnings?: string[];
}
