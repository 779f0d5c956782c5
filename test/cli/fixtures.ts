import type { Deployment, Node, Pod, Service } from '../../src/model/k8s-types';
import { ago, DAY, HOUR, MIN } from './fake-api';

/** Canned API objects: a three-node cluster running `web` behind a service. */

export function nodes(): Node[] {
  return [node('alpha', 'leader', '10.0.0.1', true), node('beta', 'voter', '10.0.0.2', false)];
}

function node(name: string, role: string, ip: string, ready: boolean): Node {
  return {
    metadata: {
      name,
      labels: { 'kubernetes.io/hostname': name },
      annotations: { 'flotilla.io/role': role },
      creationTimestamp: ago(3 * DAY + 90 * MIN),
    },
    spec: { unschedulable: false },
    status: {
      conditions: [{ type: 'Ready', status: ready ? 'True' : 'Unknown' }],
      addresses: [{ type: 'InternalIP', address: ip }],
      capacity: { cpu: '4', memory: '8Gi', pods: '110' },
      allocatable: { cpu: '4', memory: '7Gi', pods: '110' },
      nodeInfo: { kubeletVersion: 'v0.1.0' },
    },
  };
}

export function pods(): Pod[] {
  return [
    pod('web-7d4b9c-abcde', 'alpha', '10.42.0.5', {
      ready: true,
      restartCount: 0,
      state: { running: { startedAt: ago(2 * HOUR) } },
    }),
    pod('web-7d4b9c-fghij', 'beta', '10.42.1.7', {
      ready: false,
      restartCount: 4,
      state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 40s' } },
      lastState: {
        terminated: { exitCode: 1, reason: 'Error', finishedAt: ago(5 * MIN + 30_000) },
      },
    }),
  ];
}

function pod(name: string, nodeName: string, ip: string, cs: object): Pod {
  const ready = (cs as { ready: boolean }).ready;
  return {
    metadata: {
      name,
      uid: `uid-${name}`,
      labels: { app: 'web', 'pod-template-hash': '7d4b9c' },
      creationTimestamp: ago(2 * HOUR + 10 * MIN),
      ownerReferences: [{ kind: 'Deployment', name: 'web', controller: true }],
    },
    spec: { nodeName, containers: [{ name: 'web', image: 'nginx:1.27' }] },
    status: {
      phase: 'Running',
      conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
      podIP: ip,
      hostIP: '10.0.0.1',
      startTime: ago(2 * HOUR),
      containerStatuses: [
        { name: 'web', containerID: 'docker://abc123', image: 'nginx:1.27', ...cs },
      ],
    },
  };
}

export function deployment(): Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: 'web',
      uid: 'uid-web',
      generation: 3,
      resourceVersion: '41',
      creationTimestamp: ago(2 * DAY + 3 * HOUR),
      labels: { app: 'web' },
      annotations: { 'deployment.kubernetes.io/revision': '2' },
    },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: {
          containers: [
            {
              name: 'web',
              image: 'nginx:1.27',
              ports: [{ containerPort: 80, protocol: 'TCP' }],
            },
          ],
        },
      },
    },
    status: {
      observedGeneration: 3,
      replicas: 2,
      updatedReplicas: 2,
      readyReplicas: 1,
      availableReplicas: 1,
      unavailableReplicas: 1,
      conditions: [{ type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable' }],
    },
  };
}

export function service(): Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', resourceVersion: '12', creationTimestamp: ago(45 * MIN + 20_000) },
    spec: {
      type: 'NodePort',
      selector: { app: 'web' },
      clusterIP: '10.43.0.10',
      ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080, nodePort: 31234 }],
    },
    status: { loadBalancer: {} },
  };
}

/** A list as the API returns it: items without kind and apiVersion. */
export function list(items: object[]): object {
  const bare = items.map((i) => {
    const { kind: _kind, apiVersion: _apiVersion, ...rest } = i as Record<string, unknown>;
    return rest;
  });
  return { kind: 'List', apiVersion: 'v1', metadata: { resourceVersion: '50' }, items: bare };
}
