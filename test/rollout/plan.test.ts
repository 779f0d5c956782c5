import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  planRollout,
  resolveIntOrPercent,
  rollingBounds,
  type PodView,
  type RolloutPlan,
  type StrategyView,
} from '../../src/rollout/plan';

const NEW = 'new';

/** Kubernetes' rounding, written out independently of the code under test. */
function expectedBounds(strategy: StrategyView, replicas: number) {
  const resolve = (v: number | string | undefined, up: boolean) => {
    if (v === undefined) v = '25%';
    if (typeof v === 'number') return v;
    const exact = (Number(v.slice(0, -1)) * replicas) / 100;
    return up ? Math.ceil(exact) : Math.floor(exact);
  };
  const surge = resolve(strategy.maxSurge, true);
  const unavailable = resolve(strategy.maxUnavailable, false);
  return { surge, unavailable: surge === 0 && unavailable === 0 ? 1 : unavailable };
}

const isZero = (v: number | string) => v === 0 || v === '0%';

const intOrPercent = (maxInt: number, maxPercent: number) =>
  fc.oneof(
    fc.integer({ min: 0, max: maxInt }),
    fc.integer({ min: 0, max: maxPercent }).map((p) => `${p}%`),
  );

const rollingArb: fc.Arbitrary<StrategyView> = fc
  .record({ maxSurge: intOrPercent(5, 200), maxUnavailable: intOrPercent(5, 100) })
  .filter((s) => !(isZero(s.maxSurge) && isZero(s.maxUnavailable)))
  .map((s) => ({ type: 'RollingUpdate' as const, ...s }));

const podsArb: fc.Arbitrary<PodView[]> = fc
  .array(
    fc.record({
      hash: fc.constantFrom(NEW, 'old-1', 'old-2'),
      ready: fc.boolean(),
      terminating: fc.boolean(),
    }),
    { maxLength: 30 },
  )
  .map((list) =>
    list.map((p, i) => ({ ...p, name: `pod-${i}`, uid: `uid-${i}`, createdIndex: i })),
  );

const replicasArb = fc.integer({ min: 0, max: 20 });

function readyLive(pods: PodView[]): number {
  return pods.filter((p) => p.ready && !p.terminating).length;
}

/** The pods after a plan: terminations marked, new unready pods added. */
function applyPlan(pods: PodView[], plan: RolloutPlan, serial: { next: number }): PodView[] {
  const doomed = new Set(plan.terminate);
  const after = pods.map((p) => (doomed.has(p.name) ? { ...p, terminating: true } : p));
  for (let i = 0; i < plan.create; i++) {
    const n = serial.next++;
    after.push({
      name: `pod-${n}`,
      uid: `uid-${n}`,
      hash: NEW,
      ready: false,
      terminating: false,
      createdIndex: n,
    });
  }
  return after;
}

/**
 * One step of the world: terminating pods go away and unready pods become
 * ready, each only when `progress` says so.
 */
function advance(pods: PodView[], progress: () => boolean): PodView[] {
  return pods
    .filter((p) => !(p.terminating && progress()))
    .map((p) => (!p.terminating && !p.ready && progress() ? { ...p, ready: true } : p));
}

function isConverged(pods: PodView[], replicas: number): boolean {
  return pods.length === replicas && pods.every((p) => p.hash === NEW && p.ready && !p.terminating);
}

/**
 * Runs plan/apply/advance until the Deployment settles, checking the bounds
 * after every plan; returns the number of steps taken.
 */
function simulate(
  replicas: number,
  strategy: StrategyView,
  start: PodView[],
  pattern: boolean[] = [true],
): number {
  const { surge, unavailable } = expectedBounds(strategy, replicas);
  const rolling = strategy.type === 'RollingUpdate';
  const serial = { next: start.length };
  let k = 0;
  let pods = start;
  let withinTotal = pods.length <= replicas + surge;
  let enoughReady = readyLive(pods) >= replicas - unavailable;
  const limit = (4 * (replicas + start.length) + 20) * 3;

  for (let step = 0; step < limit; step++) {
    const plan = planRollout(replicas, strategy, NEW, pods);
    if (isConverged(pods, replicas) && plan.create === 0 && plan.terminate.length === 0) {
      return step;
    }
    if (!rolling && pods.some((p) => p.hash !== NEW)) {
      assert.equal(plan.create, 0, `Recreate created a pod while old ones exist (step ${step})`);
    }
    pods = applyPlan(pods, plan, serial);
    if (rolling && withinTotal) {
      assert.ok(pods.length <= replicas + surge, `step ${step}: ${pods.length} pods`);
    }
    if (rolling && enoughReady) {
      assert.ok(readyLive(pods) >= replicas - unavailable, `step ${step}: too few ready`);
    }
    // Every third step everything progresses, so the world is fair.
    const full = step % 3 === 2;
    pods = advance(pods, () => full || pattern[k++ % pattern.length]);
    withinTotal ||= pods.length <= replicas + surge;
    enoughReady ||= readyLive(pods) >= replicas - unavailable;
  }
  assert.fail(`no convergence within ${limit} steps`);
}

describe('rollout plan: Kubernetes rounding', () => {
  const rolling = (maxSurge?: number | string, maxUnavailable?: number | string): StrategyView => ({
    type: 'RollingUpdate',
    maxSurge,
    maxUnavailable,
  });

  it('resolves 25%/25% of 4 replicas to a surge of 1 and 1 unavailable', () => {
    assert.deepEqual(rollingBounds(rolling('25%', '25%'), 4), { surge: 1, unavailable: 1 });
  });

  it('rounds surge up and unavailable down for 1 replica', () => {
    assert.deepEqual(rollingBounds(rolling('25%', '25%'), 1), { surge: 1, unavailable: 0 });
  });

  it('rounds 25% of 10 replicas to a surge of 3 and 2 unavailable', () => {
    assert.deepEqual(rollingBounds(rolling('25%', '25%'), 10), { surge: 3, unavailable: 2 });
  });

  it('makes maxUnavailable 1 when both resolve to zero', () => {
    assert.deepEqual(rollingBounds(rolling(0, '25%'), 3), { surge: 0, unavailable: 1 });
    assert.deepEqual(rollingBounds(rolling('0%', '10%'), 5), { surge: 0, unavailable: 1 });
  });

  it('defaults both fields to 25%', () => {
    assert.deepEqual(rollingBounds({ type: 'RollingUpdate' }, 8), { surge: 2, unavailable: 2 });
  });

  it('takes integers as they are', () => {
    assert.equal(resolveIntOrPercent(3, 100, true), 3);
    assert.equal(resolveIntOrPercent('150%', 3, true), 5);
  });

  it('replaces one of 4 ready pods at a time at 25%/25%', () => {
    const old = [0, 1, 2, 3].map((i) => ({
      name: `old-${i}`,
      uid: `u${i}`,
      hash: 'old',
      ready: true,
      terminating: false,
      createdIndex: i,
    }));
    const plan = planRollout(4, rolling('25%', '25%'), NEW, old);
    assert.equal(plan.create, 1);
    assert.deepEqual(plan.terminate, ['old-3']);
  });

  it('matches the independent rounding for any replicas and any int or percent', () => {
    fc.assert(
      fc.property(replicasArb, rollingArb, (replicas, strategy) => {
        assert.deepEqual(rollingBounds(strategy, replicas), expectedBounds(strategy, replicas));
      }),
    );
  });
});

describe('rollout plan: RollingUpdate bounds', () => {
  it('never takes the pod count above replicas + maxSurge', () => {
    fc.assert(
      fc.property(replicasArb, rollingArb, podsArb, (replicas, strategy, pods) => {
        const { surge } = expectedBounds(strategy, replicas);
        const plan = planRollout(replicas, strategy, NEW, pods);
        if (pods.length <= replicas + surge) {
          assert.ok(pods.length + plan.create <= replicas + surge);
        } else {
          assert.equal(plan.create, 0);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('never leaves fewer than replicas - maxUnavailable ready pods', () => {
    fc.assert(
      fc.property(replicasArb, rollingArb, podsArb, (replicas, strategy, pods) => {
        const { unavailable } = expectedBounds(strategy, replicas);
        fc.pre(readyLive(pods) >= replicas - unavailable);
        const plan = planRollout(replicas, strategy, NEW, pods);
        const after = applyPlan(pods, plan, { next: pods.length });
        assert.ok(readyLive(after) >= replicas - unavailable);
      }),
      { numRuns: 500 },
    );
  });

  it('terminates only live pods, each once, and creates no more than are missing', () => {
    fc.assert(
      fc.property(replicasArb, rollingArb, podsArb, (replicas, strategy, pods) => {
        const plan = planRollout(replicas, strategy, NEW, pods);
        const byName = new Map(pods.map((p) => [p.name, p]));
        assert.equal(new Set(plan.terminate).size, plan.terminate.length);
        for (const name of plan.terminate) assert.equal(byName.get(name)?.terminating, false);
        const fresh = pods.filter((p) => p.hash === NEW && !p.terminating).length;
        assert.ok(plan.create >= 0 && plan.create <= Math.max(0, replicas - fresh));
      }),
      { numRuns: 500 },
    );
  });

  it('converges to exactly replicas new pods within bounds at every step', () => {
    fc.assert(
      fc.property(replicasArb, rollingArb, podsArb, (replicas, strategy, pods) => {
        simulate(replicas, strategy, pods);
      }),
      { numRuns: 300 },
    );
  });

  it('converges within bounds when pods become ready and go away at uneven speeds', () => {
    const pattern = fc.array(fc.boolean(), { minLength: 1, maxLength: 40 });
    fc.assert(
      fc.property(replicasArb, rollingArb, podsArb, pattern, (replicas, strategy, pods, p) => {
        simulate(replicas, strategy, pods, p);
      }),
      { numRuns: 300 },
    );
  });
});

describe('rollout plan: Recreate', () => {
  const recreate: StrategyView = { type: 'Recreate' };

  it('creates no new pod while any old pod exists, even a terminating one', () => {
    fc.assert(
      fc.property(replicasArb, podsArb, (replicas, pods) => {
        const plan = planRollout(replicas, recreate, NEW, pods);
        if (pods.some((p) => p.hash !== NEW)) assert.equal(plan.create, 0);
        const live = (h: (p: PodView) => boolean) => pods.filter((p) => h(p) && !p.terminating);
        for (const old of live((p) => p.hash !== NEW)) assert.ok(plan.terminate.includes(old.name));
      }),
      { numRuns: 500 },
    );
  });

  it('converges to exactly replicas new pods', () => {
    const pattern = fc.array(fc.boolean(), { minLength: 1, maxLength: 40 });
    fc.assert(
      fc.property(replicasArb, podsArb, pattern, (replicas, pods, p) => {
        simulate(replicas, recreate, pods, p);
      }),
      { numRuns: 300 },
    );
  });
});
