/**
 * The rollout step: given a Deployment's desired replicas, its strategy and
 * the pods it has, which pods to create and which to terminate now. Pure, so
 * that the bounds can be property-tested; the deployment actor calls it each
 * time anything about the Deployment or its pods changes.
 *
 * Pods that are terminating still count towards the total, because their
 * containers still run until their node has drained and stopped them: this
 * is what keeps the number of containers within replicas + maxSurge.
 */

/** What the planner needs to know about one pod. */
export interface PodView {
  name: string;
  uid: string;
  /** The pod-template-hash of the revision the pod runs. */
  hash: string;
  ready: boolean;
  terminating: boolean;
  /** Creation order; larger is newer. */
  createdIndex: number;
}

/** The strategy fields of a Deployment. */
export interface StrategyView {
  type: 'RollingUpdate' | 'Recreate';
  maxSurge?: number | string;
  maxUnavailable?: number | string;
}

/** The decision of one step. */
export interface RolloutPlan {
  /** How many pods of the new revision to create. */
  create: number;
  /** Pods to terminate, by name. */
  terminate: string[];
}

/** Resolves an int-or-percent field against `replicas`, as Kubernetes rounds it. */
export function resolveIntOrPercent(
  value: number | string | undefined,
  replicas: number,
  roundUp: boolean,
): number {
  if (value === undefined) return 0;
  if (typeof value === 'number') return value;
  const percent = Number(value.replace('%', ''));
  const exact = (percent * replicas) / 100;
  return roundUp ? Math.ceil(exact) : Math.floor(exact);
}

/** maxSurge and maxUnavailable as numbers; both zero makes maxUnavailable 1. */
export function rollingBounds(strategy: StrategyView, replicas: number) {
  const surge = resolveIntOrPercent(strategy.maxSurge ?? '25%', replicas, true);
  let unavailable = resolveIntOrPercent(strategy.maxUnavailable ?? '25%', replicas, false);
  if (surge === 0 && unavailable === 0) unavailable = 1;
  return { surge, unavailable };
}

/** Decides the next step towards `replicas` pods of revision `newHash`. */
export function planRollout(
  replicas: number,
  strategy: StrategyView,
  newHash: string,
  pods: PodView[],
): RolloutPlan {
  if (strategy.type === 'Recreate') return planRecreate(replicas, newHash, pods);
  return planRolling(replicas, strategy, newHash, pods);
}

function planRolling(replicas: number, strategy: StrategyView, newHash: string, pods: PodView[]) {
  const { surge, unavailable } = rollingBounds(strategy, replicas);
  const live = pods.filter((p) => !p.terminating);
  const fresh = live.filter((p) => p.hash === newHash);
  const old = live.filter((p) => p.hash !== newHash);
  const terminate: string[] = [];

  // Too many pods of the current revision: a scale-down, done at once.
  const extra = fresh.length - replicas;
  if (extra > 0) terminate.push(...byRemovalOrder(fresh).slice(0, extra).map((p) => p.name));

  // Old pods that are not ready serve nobody: they go first and freely.
  const oldUnready = old.filter((p) => !p.ready);
  terminate.push(...oldUnready.map((p) => p.name));

  // Ready old pods go only while enough ready pods remain.
  const readyLive = live.filter((p) => p.ready && !terminate.includes(p.name)).length;
  const canRemove = Math.max(0, readyLive - (replicas - unavailable));
  const oldReady = byRemovalOrder(old.filter((p) => p.ready));
  terminate.push(...oldReady.slice(0, canRemove).map((p) => p.name));

  // Every pod still has its container, terminating or not: all count.
  const room = replicas + surge - pods.length;
  const wanted = replicas - Math.min(fresh.length, replicas);
  return { create: Math.max(0, Math.min(wanted, room)), terminate };
}

function planRecreate(replicas: number, newHash: string, pods: PodView[]) {
  const old = pods.filter((p) => p.hash !== newHash);
  const fresh = pods.filter((p) => p.hash === newHash && !p.terminating);
  const terminate = old.filter((p) => !p.terminating).map((p) => p.name);
  const extra = fresh.length - replicas;
  if (extra > 0) terminate.push(...byRemovalOrder(fresh).slice(0, extra).map((p) => p.name));
  const create = old.length === 0 ? Math.max(0, replicas - fresh.length) : 0;
  return { create, terminate };
}

/** Unready before ready, then newest first, as Kubernetes picks pods to delete. */
function byRemovalOrder(pods: PodView[]): PodView[] {
  return [...pods].sort((a, b) => {
    if (a.ready !== b.ready) return a.ready ? 1 : -1;
    return b.createdIndex - a.createdIndex;
  });
}
