/**
 * What the kubelet tells about a pod: the events a pod actor's transition
 * means (Pulled, Created, Started, Unhealthy, Killing, BackOff), and the
 * crash backoff a pod's annotations ask for. Pure.
 */
import type { BackoffSettings, PodContext } from '../actors/pod';
import type { Pod } from '../model/types';
import type { EventInput } from './events';

/** Annotation: first crash backoff delay in seconds (Kubernetes: 10). */
export const CRASH_BACKOFF_INITIAL_ANNOTATION = 'flotilla.io/crash-backoff-initial-seconds';
/** Annotation: longest crash backoff delay in seconds (Kubernetes: 300). */
export const CRASH_BACKOFF_MAX_ANNOTATION = 'flotilla.io/crash-backoff-max-seconds';

/** One observation of a pod actor. */
export interface PodObservation {
  state: string;
  context: PodContext;
}

type PodEventInput = Omit<EventInput, 'object'>;

/** The events that going from `before` to `after` means; none for the first sight. */
export function podEventsBetween(
  before: PodObservation | undefined,
  after: PodObservation,
): PodEventInput[] {
  const events: PodEventInput[] = [];
  const ctx = after.context;
  const name = ctx.container.name;
  const image = ctx.container.image;
  if (!before) return events;
  const entered = (state: string) => before.state !== state && after.state === state;

  if (before.state === 'preparing' && after.state === 'creating') {
    const pulled = ctx.container.imagePullPolicy === 'Always';
    const message = pulled
      ? `Successfully pulled image "${image}"`
      : `Container image "${image}" already present on machine`;
    events.push({ reason: 'Pulled', message });
  }
  const warn = (reason: string, message: string) =>
    events.push({ type: 'Warning', reason, message });
  if (entered('pullBackoff')) {
    const why = ctx.message ? `: ${ctx.message}` : '';
    warn('Failed', `Failed to pull image "${image}"${why}`);
    if (ctx.pullFailures > 1) warn('BackOff', `Back-off pulling image "${image}"`);
  }
  if (before.state === 'creating' && after.state === 'starting') {
    events.push({ reason: 'Created', message: `Created container ${name}` });
  }
  if (before.state === 'creating' && after.state === 'crashBackoff') {
    warn('Failed', `Error: ${ctx.message ?? 'create failed'}`);
  }
  if (before.state === 'starting' && after.state === 'running') {
    events.push({ reason: 'Started', message: `Started container ${name}` });
  }
  if (ctx.probeFailures > before.context.probeFailures && ctx.lastProbeFailure) {
    const { probe, message } = ctx.lastProbeFailure;
    const kind = probe[0].toUpperCase() + probe.slice(1);
    warn('Unhealthy', `${kind} probe failed: ${message}`);
  }
  if (entered('killing')) {
    events.push({ reason: 'Killing', message: ctx.killMessage ?? `Stopping container ${name}` });
  }
  if (entered('crashBackoff') && ctx.delayMs > 0 && ctx.reason === 'CrashLoopBackOff') {
    warn('BackOff', `Back-off restarting failed container ${name} in pod ${ctx.pod.name}`);
  }
  if (!before.state.startsWith('terminating') && after.state.startsWith('terminating')) {
    events.push({ reason: 'Killing', message: `Stopping container ${name}` });
  }
  return events;
}

/** The crash backoff for `pod`: `base`, with what its annotations override. */
export function podBackoff(pod: Pod, base: BackoffSettings): BackoffSettings {
  const annotations = pod.metadata.annotations ?? {};
  const seconds = (key: string) => {
    const value = Number(annotations[key]);
    return annotations[key] !== undefined && Number.isFinite(value) && value >= 0
      ? Math.round(value * 1000)
      : undefined;
  };
  const initial = seconds(CRASH_BACKOFF_INITIAL_ANNOTATION);
  const max = seconds(CRASH_BACKOFF_MAX_ANNOTATION);
  const crashInitialMs = initial ?? base.crashInitialMs;
  const crashMaxMs = Math.max(crashInitialMs, max ?? base.crashMaxMs);
  return { ...base, crashInitialMs, crashMaxMs };
}
