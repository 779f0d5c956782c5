/**
 * A Deployment's revisions are its ReplicaSets, numbered by the
 * deployment.kubernetes.io/revision annotation. Going back to one (by
 * `rollout undo` or by auto-rollback) is an ordinary update of the
 * Deployment's template to that ReplicaSet's template; the store then
 * renumbers that ReplicaSet as the newest revision, as kubectl does. Pure.
 */
import type { PodTemplateSpec } from '../manifest/types';
import type { ReplicaSet } from '../model/types';
import { REVISION_ANNOTATION, TEMPLATE_HASH_LABEL } from '../store/apply';

/** Deployment annotation that opts in to rolling back failed rollouts. */
export const AUTO_ROLLBACK_ANNOTATION = 'flotilla.io/auto-rollback';
/** ReplicaSet annotation set once a rollout to it completed. */
export const COMPLETE_ANNOTATION = 'flotilla.io/rollout-complete';
/** Deployment annotation naming the revision an auto-rollback abandoned. */
export const ROLLED_BACK_FROM_ANNOTATION = 'flotilla.io/rolled-back-from-revision';
/** Deployment annotation saying why the last auto-rollback happened. */
export const ROLLBACK_REASON_ANNOTATION = 'flotilla.io/rollback-reason';
/** Pod template annotation `rollout restart` sets, as kubectl does. */
export const RESTARTED_AT_ANNOTATION = 'kubectl.kubernetes.io/restartedAt';

/** The revision number of a ReplicaSet, 0 when it has none. */
export function revisionNumber(rs: Pick<ReplicaSet, 'metadata'>): number {
  return Number(rs.metadata.annotations?.[REVISION_ANNOTATION] ?? 0) || 0;
}

/** ReplicaSets ordered by revision, oldest first. */
export function byRevision<T extends Pick<ReplicaSet, 'metadata'>>(sets: T[]): T[] {
  return [...sets].sort((a, b) => revisionNumber(a) - revisionNumber(b));
}

/** The Deployment template that recreates `rs`: its template without the hash label. */
export function templateOf(rs: Pick<ReplicaSet, 'spec'>): PodTemplateSpec {
  const template = JSON.parse(JSON.stringify(rs.spec.template)) as PodTemplateSpec;
  const labels = { ...(template.metadata?.labels ?? {}) };
  delete labels[TEMPLATE_HASH_LABEL];
  template.metadata = { ...(template.metadata ?? {}), labels };
  return template;
}

/** The newest revision other than `current` whose rollout completed. */
export function rollbackTarget(sets: ReplicaSet[], current: ReplicaSet): ReplicaSet | undefined {
  const done = sets.filter(
    (rs) =>
      rs.metadata.uid !== current.metadata.uid && rs.metadata.annotations?.[COMPLETE_ANNOTATION],
  );
  return byRevision(done).pop();
}

/** Why an undo cannot happen; the CLI turns it into an error. */
export type UndoProblem =
  | { problem: 'NoHistory' }
  | { problem: 'RevisionNotFound'; revision: number };

/**
 * The revision `rollout undo` goes back to: `toRevision` when given (0 means
 * the previous one), else the newest revision older than the current one.
 */
export function undoTarget<T extends Pick<ReplicaSet, 'metadata'>>(
  sets: T[],
  currentRevision: number,
  toRevision = 0,
): T | UndoProblem {
  if (toRevision > 0) {
    const found = sets.find((rs) => revisionNumber(rs) === toRevision);
    return found ?? { problem: 'RevisionNotFound', revision: toRevision };
  }
  const older = byRevision(sets.filter((rs) => revisionNumber(rs) < currentRevision));
  return older.pop() ?? { problem: 'NoHistory' };
}
