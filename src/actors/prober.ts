/**
 * Runs a container's startup, readiness and liveness probes while the pod
 * actor is in `running`, with Kubernetes' rules: the startup probe holds the
 * other two back until it succeeds once; readiness turns true after
 * successThreshold successes in a row and false after failureThreshold
 * failures in a row; liveness (and startup) failing failureThreshold times in
 * a row asks for the container to be restarted. How one probe is executed is
 * injected (see src/runtime/probes.ts), and so is the length of a second, so
 * tests run probes in milliseconds.
 */
import type { Container, Probe } from '../manifest/types';

/** Which probe a result belongs to. */
export type ProbeKind = 'startup' | 'readiness' | 'liveness';

/** What one execution of a probe found. */
export interface ProbeResult {
  ok: boolean;
  /** Why it failed, as `kubectl describe` shows it. */
  message?: string;
}

/** Executes one probe once; must settle within `timeoutMs`. */
export type RunProbe = (probe: Probe, timeoutMs: number) => Promise<ProbeResult>;

/** What the prober tells the pod actor. */
export type ProberEvent =
  | { type: 'PROBE_STARTED' }
  | { type: 'PROBE_READINESS'; ready: boolean }
  | { type: 'PROBE_FAILED'; probe: ProbeKind; message: string }
  | { type: 'PROBE_KILL'; probe: ProbeKind; message: string };

/** Where the prober resumes: after an agent restart the container may already have started. */
export interface ProberInput {
  container: Container;
  started: boolean;
  ready: boolean;
  ip?: string;
  containerId?: string;
}

/** Counts consecutive results of one probe and says when a threshold is crossed. */
export class ProbeTracker {
  private successes = 0;
  private failures = 0;

  constructor(
    private readonly probe: Pick<Probe, 'successThreshold' | 'failureThreshold'>,
    /** The outcome in force before any result (readiness starts false). */
    public passing: boolean,
  ) {}

  /** Records a result; returns the new outcome when it changed. */
  observe(ok: boolean): boolean | undefined {
    if (ok) {
      this.failures = 0;
      this.successes += 1;
      if (!this.passing && this.successes >= this.probe.successThreshold) return this.flip(true);
    } else {
      this.successes = 0;
      this.failures += 1;
      if (this.passing && this.failures >= this.probe.failureThreshold) return this.flip(false);
    }
    return undefined;
  }

  private flip(passing: boolean): boolean {
    this.passing = passing;
    this.successes = 0;
    this.failures = 0;
    return passing;
  }
}

/** Options of {@link startProbing}. */
export interface ProbingOptions {
  input: ProberInput;
  run: RunProbe;
  send: (event: ProberEvent) => void;
  /** Milliseconds per probe second (1000 outside tests). */
  secondMs?: number;
}

/** Starts the probe loops; returns the function that stops them. */
export function startProbing(opts: ProbingOptions): () => void {
  const loops = new ProbeLoops(opts);
  // Deferred so that no event reaches the pod actor while it is still
  // entering `running`, and so that the caller holds the stop function first.
  queueMicrotask(() => beginProbing(loops, opts));
  return () => loops.stop();
}

function beginProbing(loops: ProbeLoops, opts: ProbingOptions): void {
  const { input } = opts;
  const send = (event: ProberEvent) => {
    if (!loops.stopped) opts.send(event);
  };
  const { startupProbe } = input.container;
  if (input.started || !startupProbe) {
    if (!input.started) send({ type: 'PROBE_STARTED' });
    startSteadyProbes(loops, opts);
  } else {
    const tracker = new ProbeTracker(startupProbe, true);
    loops.run('startup', startupProbe, (result) => {
      if (result.ok) {
        send({ type: 'PROBE_STARTED' });
        startSteadyProbes(loops, opts);
        return false;
      }
      return !killOnFailure(tracker, 'startup', result, send);
    });
  }
}

function startSteadyProbes(loops: ProbeLoops, opts: ProbingOptions): void {
  const { input } = opts;
  const send = (event: ProberEvent) => {
    if (!loops.stopped) opts.send(event);
  };
  const { readinessProbe, livenessProbe } = input.container;
  if (!readinessProbe) {
    if (!input.ready) send({ type: 'PROBE_READINESS', ready: true });
  } else {
    const tracker = new ProbeTracker(readinessProbe, input.ready);
    loops.run('readiness', readinessProbe, (result) => {
      if (!result.ok) {
        send({ type: 'PROBE_FAILED', probe: 'readiness', message: messageOf(result) });
      }
      const flipped = tracker.observe(result.ok);
      if (flipped !== undefined) send({ type: 'PROBE_READINESS', ready: flipped });
      return true;
    });
  }
  if (livenessProbe) {
    const tracker = new ProbeTracker(livenessProbe, true);
    loops.run(
      'liveness',
      livenessProbe,
      (result) => !killOnFailure(tracker, 'liveness', result, send),
    );
  }
}

/** Reports a failure; true when the threshold is reached and the container must go. */
function killOnFailure(
  tracker: ProbeTracker,
  probe: ProbeKind,
  result: ProbeResult,
  send: (event: ProberEvent) => void,
): boolean {
  if (result.ok) {
    tracker.observe(true);
    return false;
  }
  const message = messageOf(result);
  send({ type: 'PROBE_FAILED', probe, message });
  if (tracker.observe(false) !== false) return false;
  send({ type: 'PROBE_KILL', probe, message });
  return true;
}

function messageOf(result: ProbeResult): string {
  return result.message ?? 'probe failed';
}

/** The timers of every probe of one container; stop() ends them all. */
class ProbeLoops {
  stopped = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly opts: ProbingOptions;

  constructor(opts: ProbingOptions) {
    this.opts = opts;
  }

  /** Runs `probe` every period until `onResult` returns false or stop(). */
  run(kind: ProbeKind, probe: Probe, onResult: (r: ProbeResult) => boolean): void {
    const second = this.opts.secondMs ?? 1000;
    const loop = async () => {
      await this.wait(probe.initialDelaySeconds * second);
      while (!this.stopped) {
        const result = await this.execute(probe, probe.timeoutSeconds * second);
        if (this.stopped || !onResult(result)) return;
        await this.wait(probe.periodSeconds * second);
      }
    };
    void loop();
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private async execute(probe: Probe, timeoutMs: number): Promise<ProbeResult> {
    try {
      return await this.opts.run(probe, timeoutMs);
    } catch (err) {
      return { ok: false, message: err instanceof Error ? err.message : String(err) };
    }
  }

  private wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        resolve();
      }, ms);
      this.timers.add(timer);
    });
  }
}
