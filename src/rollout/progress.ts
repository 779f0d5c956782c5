/**
 * Whether a rollout still progresses, as Kubernetes' progressDeadlineSeconds
 * defines it: progress is more pods of the new revision, more of them
 * available, or fewer old pods. Only new highs count, so a crash-looping pod
 * that is ready for a moment at every restart does not keep a stuck rollout
 * alive, while a slow rollout that keeps gaining is never failed. Pure.
 */

/** Pod counts of one rollout step. */
export interface RolloutCounts {
  /** Live pods of the newest revision. */
  updated: number;
  /** Of those, the available ones. */
  available: number;
  /** Pods of older revisions, terminating ones included. */
  old: number;
}

/** The best counts a rollout of revision `hash` reached, and when it last gained. */
export interface ProgressMark extends RolloutCounts {
  hash: string;
  /** Milliseconds since the epoch of the last progress. */
  at: number;
}

/** The mark after observing `counts` at `now`. */
export function advanceProgress(
  previous: ProgressMark | undefined,
  hash: string,
  counts: RolloutCounts,
  now: number,
): ProgressMark {
  if (!previous || previous.hash !== hash) return { hash, ...counts, at: now };
  const gained =
    counts.updated > previous.updated ||
    counts.available > previous.available ||
    counts.old < previous.old;
  return {
    hash,
    updated: Math.max(previous.updated, counts.updated),
    available: Math.max(previous.available, counts.available),
    old: Math.min(previous.old, counts.old),
    at: gained ? now : previous.at,
  };
}

/** Milliseconds left before the deadline; 0 or less once it passed. */
export function msUntilDeadline(mark: ProgressMark, deadlineSeconds: number, now: number): number {
  return mark.at + deadlineSeconds * 1000 - now;
}

/** The Progressing condition's status and reason, as Kubernetes names them. */
export type ProgressState =
  | { status: 'True'; reason: 'NewReplicaSetAvailable' }
  | { status: 'True'; reason: 'ReplicaSetUpdated' }
  | { status: 'False'; reason: 'ProgressDeadlineExceeded' }
  | { status: 'Unknown'; reason: 'DeploymentPaused' };

/** What the Progressing condition says for a rollout in this situation. */
export function progressState(opts: {
  complete: boolean;
  paused: boolean;
  mark: ProgressMark;
  deadlineSeconds: number;
  now: number;
}): ProgressState {
  if (opts.complete) return { status: 'True', reason: 'NewReplicaSetAvailable' };
  if (opts.paused) return { status: 'Unknown', reason: 'DeploymentPaused' };
  if (msUntilDeadline(opts.mark, opts.deadlineSeconds, opts.now) <= 0) {
    return { status: 'False', reason: 'ProgressDeadlineExceeded' };
  }
  return { status: 'True', reason: 'ReplicaSetUpdated' };
}

/** kubectl's message for each reason, naming the new ReplicaSet. */
export function progressMessage(state: ProgressState, replicaSet: string, name: string): string {
  switch (state.reason) {
    case 'NewReplicaSetAvailable':
      return `ReplicaSet "${replicaSet}" has successfully progressed.`;
    case 'ReplicaSetUpdated':
      return `ReplicaSet "${replicaSet}" is progressing.`;
    case 'ProgressDeadlineExceeded':
      return `ReplicaSet "${replicaSet}" has timed out progressing.`;
    case 'DeploymentPaused':
      return `Deployment "${name}" is paused`;
  }
}
