/**
 * `GET .../pods/NAME/log`: a pod's container output from the engine of this
 * node, as plain text, followed while the client stays with `follow=true`.
 */
import type http from 'node:http';
import type { ContainerRuntime } from '../runtime/container-runtime';
import type { Pod } from '../model/k8s-types';
import { BadRequestError } from './status';

/** What serving logs needs. */
export interface PodLogSource {
  runtime?: ContainerRuntime;
  nodeName?: string;
}

/** Streams the logs of `pod` to `res`; throws a typed error before anything is sent. */
export async function servePodLogs(
  source: PodLogSource,
  pod: Pod,
  query: URLSearchParams,
  res: http.ServerResponse,
): Promise<void> {
  if (query.get('previous') === 'true') {
    throw new BadRequestError(
      'previous=true is not supported: Flotilla keeps no earlier container',
    );
  }
  const name = pod.metadata?.name ?? '';
  const node = pod.spec?.nodeName;
  if (node && node !== source.nodeName) {
    throw new BadRequestError(
      `pod "${name}" runs on node "${node}"; logs are served by the agent of that node`,
    );
  }
  if (!source.runtime) throw new BadRequestError('this server has no container engine');
  const containerId = containerIdOf(pod, query.get('container'));
  const tail = query.get('tailLines');
  const stream = await source.runtime.logs(containerId, {
    follow: query.get('follow') === 'true',
    timestamps: query.get('timestamps') === 'true',
    ...(tail !== null ? { tail: Number(tail) } : {}),
  });
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
  stream.pipe(res);
  res.on('close', () => (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.());
}

function containerIdOf(pod: Pod, wanted: string | null): string {
  const containers = pod.spec?.containers ?? [];
  const name = wanted ?? containers[0]?.name;
  const podName = pod.metadata?.name ?? '';
  if (!containers.some((c) => c.name === name)) {
    throw new BadRequestError(`container ${name} is not valid for pod ${podName}`);
  }
  const status = pod.status?.containerStatuses?.find((s) => s.name === name);
  const id = status?.containerID?.replace(/^docker:\/\//, '');
  if (!id) {
    const reason = status?.state?.waiting?.reason ?? 'ContainerCreating';
    throw new BadRequestError(
      `container "${name}" in pod "${podName}" is waiting to start: ${reason}`,
    );
  }
  return id;
}
