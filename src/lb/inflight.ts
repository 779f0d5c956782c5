/** Ends one unit of in-flight work; calling it again does nothing. */
export type Release = () => void;

/**
 * Counts requests and connections in flight per endpoint id, so that a pod
 * can be told when the last one has finished before it is stopped.
 */
export class InflightTracker {
  private readonly counts = new Map<string, number>();
  private readonly waiters = new Map<string, Set<() => void>>();

  /** Marks one request or connection to `endpointId` as started. */
  begin(endpointId: string): Release {
    this.counts.set(endpointId, (this.counts.get(endpointId) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.end(endpointId);
    };
  }

  /** How much is in flight to `endpointId` now. */
  count(endpointId: string): number {
    return this.counts.get(endpointId) ?? 0;
  }

  /** Resolves true once nothing is in flight, or false after `timeoutMs`. */
  waitIdle(endpointId: string, timeoutMs: number): Promise<boolean> {
    if (this.count(endpointId) === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const set = this.waiters.get(endpointId) ?? new Set();
      this.waiters.set(endpointId, set);
      const done = (idle: boolean): void => {
        clearTimeout(timer);
        set.delete(wake);
        if (set.size === 0 && this.waiters.get(endpointId) === set) {
          this.waiters.delete(endpointId);
        }
        resolve(idle);
      };
      const wake = (): void => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      set.add(wake);
    });
  }

  private end(endpointId: string): void {
    const left = (this.counts.get(endpointId) ?? 1) - 1;
    if (left > 0) {
      this.counts.set(endpointId, left);
      return;
    }
    this.counts.delete(endpointId);
    for (const wake of [...(this.waiters.get(endpointId) ?? [])]) wake();
  }
}
