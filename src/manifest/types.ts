/**
 * The subset of the Kubernetes apps/v1 Deployment and v1 Service objects that
 * Flotilla understands, with the Kubernetes JSON field names. After
 * validation every defaulted field is present, so consumers never need to
 * re-apply Kubernetes defaults.
 */

/** Name, labels and server-filled bookkeeping of an object. */
export interface ObjectMeta {
  name: string;
  /** Only "default" exists in Flotilla. */
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Filled by the server; passed through from input for the store to check or replace. */
  uid?: string;
  /** Filled by the server; incremented on every change to `spec`. */
  generation?: number;
  /** Filled by the server; an opaque version used for optimistic concurrency. */
  resourceVersion?: string;
  /** Filled by the server; an RFC 3339 timestamp. */
  creationTimestamp?: string;
}

/** Metadata of a pod template: only labels and annotations matter. */
export interface PodTemplateMeta {
  labels: Record<string, string>;
  annotations?: Record<string, string>;
}

/** Operators of a label selector requirement. */
export type SelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

/** One set-based requirement of a label selector. */
export interface LabelSelectorRequirement {
  key: string;
  operator: SelectorOperator;
  values?: string[];
}

/** Selects objects by label; all of its terms must hold. */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

/** When the container engine pulls an image. */
export type ImagePullPolicy = 'Always' | 'IfNotPresent' | 'Never';

/** The only transport protocol Flotilla balances. */
export type Protocol = 'TCP';

/** An environment variable with a literal value. */
export interface EnvVar {
  name: string;
  value: string;
}

/** A port a container listens on. */
export interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol: Protocol;
}

/** CPU and memory quantities in Kubernetes notation ("500m", "128Mi"). */
export interface ResourceList {
  cpu?: string;
  memory?: string;
}

/** Resources a container asks for (requests) and may not exceed (limits). */
export interface ResourceRequirements {
  requests?: ResourceList;
  limits?: ResourceList;
}

/** A header sent with an HTTP probe. */
export interface HTTPHeader {
  name: string;
  value: string;
}

/** Probe by HTTP GET; any status from 200 to 399 is a success. */
export interface HTTPGetAction {
  path: string;
  /** A port number or the name of one of the container's ports. */
  port: number | string;
  scheme?: 'HTTP' | 'HTTPS';
  httpHeaders?: HTTPHeader[];
}

/** Probe by opening a TCP connection. */
export interface TCPSocketAction {
  port: number | string;
}

/** Probe by running a command in the container; exit code 0 is a success. */
export interface ExecAction {
  command: string[];
}

/** A health check; exactly one of httpGet, tcpSocket and exec is set. */
export interface Probe {
  httpGet?: HTTPGetAction;
  tcpSocket?: TCPSocketAction;
  exec?: ExecAction;
  initialDelaySeconds: number;
  periodSeconds: number;
  timeoutSeconds: number;
  successThreshold: number;
  failureThreshold: number;
}

/** One container of a pod. */
export interface Container {
  name: string;
  image: string;
  imagePullPolicy: ImagePullPolicy;
  command?: string[];
  args?: string[];
  workingDir?: string;
  env?: EnvVar[];
  ports?: ContainerPort[];
  resources?: ResourceRequirements;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
}

/** What runs in a pod. */
export interface PodSpec {
  containers: Container[];
  /** Kubernetes allows only Always for pods of a Deployment. */
  restartPolicy: 'Always';
  terminationGracePeriodSeconds: number;
  nodeSelector?: Record<string, string>;
}

/** The pod a Deployment stamps out for each replica. */
export interface PodTemplateSpec {
  metadata: PodTemplateMeta;
  spec: PodSpec;
}

/** Limits of a rolling update, as a count or a percentage such as "25%". */
export interface RollingUpdateDeployment {
  maxSurge: number | string;
  maxUnavailable: number | string;
}

/** How a Deployment replaces old pods with new ones. */
export interface DeploymentStrategy {
  type: 'RollingUpdate' | 'Recreate';
  /** Present exactly when type is RollingUpdate. */
  rollingUpdate?: RollingUpdateDeployment;
}

/** The desired state of a Deployment. */
export interface DeploymentSpec {
  replicas: number;
  selector: LabelSelector;
  template: PodTemplateSpec;
  strategy: DeploymentStrategy;
  minReadySeconds: number;
  revisionHistoryLimit: number;
  progressDeadlineSeconds: number;
  paused: boolean;
}

/** One condition of a Deployment ("Available", "Progressing"). */
export interface DeploymentCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastUpdateTime?: string;
  lastTransitionTime?: string;
}

/** The observed state of a Deployment, filled by the server. */
export interface DeploymentStatus {
  observedGeneration?: number;
  replicas?: number;
  updatedReplicas?: number;
  readyReplicas?: number;
  availableReplicas?: number;
  unavailableReplicas?: number;
  conditions?: DeploymentCondition[];
}

/** A set of identical pods kept running and rolled out together. */
export interface Deployment {
  apiVersion: 'apps/v1';
  kind: 'Deployment';
  metadata: ObjectMeta;
  spec: DeploymentSpec;
  status?: DeploymentStatus;
}

/** One port a Service exposes and where it forwards to. */
export interface ServicePort {
  name?: string;
  protocol: Protocol;
  port: number;
  /** A pod port number or the name of a container port. */
  targetPort: number | string;
  /** Only for NodePort and LoadBalancer services, 30000-32767. */
  nodePort?: number;
  appProtocol?: string;
}

/** How a Service is reachable. */
export type ServiceType = 'ClusterIP' | 'NodePort' | 'LoadBalancer';

/** The desired state of a Service. */
export interface ServiceSpec {
  type: ServiceType;
  selector?: Record<string, string>;
  ports: ServicePort[];
  sessionAffinity: 'None' | 'ClientIP';
  /** Present exactly when sessionAffinity is ClientIP. */
  sessionAffinityConfig?: { clientIP: { timeoutSeconds: number } };
  clusterIP?: string;
}

/** The observed state of a Service, filled by the server. */
export interface ServiceStatus {
  loadBalancer?: { ingress?: { ip?: string; hostname?: string }[] };
}

/** A stable address balancing over the pods its selector picks. */
export interface Service {
  apiVersion: 'v1';
  kind: 'Service';
  metadata: ObjectMeta;
  spec: ServiceSpec;
  status?: ServiceStatus;
}

/** Any object Flotilla accepts from a manifest. */
export type Manifest = Deployment | Service;

/** A non-fatal remark about a manifest, such as an ignored or misspelt field. */
export interface ManifestWarning {
  file: string;
  line?: number;
  column?: number;
  /** Kubernetes-style path such as `spec.template.spec.containers[0].image`. */
  fieldPath: string;
  message: string;
}
