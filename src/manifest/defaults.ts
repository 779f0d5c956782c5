import { parseImageReference } from './syntax';
import type { ImagePullPolicy } from './types';

/** Values a Kubernetes server fills into a Deployment that leaves them out. */
export const DEPLOYMENT_DEFAULTS = {
  replicas: 1,
  strategyType: 'RollingUpdate',
  maxSurge: '25%',
  maxUnavailable: '25%',
  minReadySeconds: 0,
  revisionHistoryLimit: 10,
  progressDeadlineSeconds: 600,
  paused: false,
} as const;

/** Values a Kubernetes server fills into a pod spec that leaves them out. */
export const POD_DEFAULTS = {
  restartPolicy: 'Always',
  terminationGracePeriodSeconds: 30,
  protocol: 'TCP',
} as const;

/** Values a Kubernetes server fills into a probe that leaves them out. */
export const PROBE_DEFAULTS = {
  initialDelaySeconds: 0,
  periodSeconds: 10,
  timeoutSeconds: 1,
  successThreshold: 1,
  failureThreshold: 3,
  httpPath: '/',
  httpScheme: 'HTTP',
} as const;

/** Values a Kubernetes server fills into a Service that leaves them out. */
export const SERVICE_DEFAULTS = {
  type: 'ClusterIP',
  protocol: 'TCP',
  sessionAffinity: 'None',
  /** Session affinity lasts three hours unless sessionAffinityConfig says otherwise. */
  clientIPTimeoutSeconds: 10800,
} as const;

/**
 * The pull policy Kubernetes picks when a container names none: a moving
 * tag (latest, or no tag at all) is pulled every time, anything pinned
 * only when missing.
 */
export function defaultImagePullPolicy(image: string): ImagePullPolicy {
  const { tag, digest } = parseImageReference(image);
  if (digest !== undefined) return 'IfNotPresent';
  return tag === undefined || tag === 'latest' ? 'Always' : 'IfNotPresent';
}
