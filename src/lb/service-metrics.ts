import type { ServiceMetrics } from './types';

/** Upper bounds of the latency buckets, in milliseconds. */
export const LATENCY_BOUNDS_MS: readonly number[] = Object.freeze([
  1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
]);

/** Mutable counters for one service; `snapshot` copies them out. */
export class MetricsRecorder {
  private requests = 0;
  private errors = 0;
  private active = 0;
  private sumMs = 0;
  private readonly counts = new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0);

  /** Counts one accepted HTTP request or TCP connection. */
  countRequest(): void {
    this.requests++;
  }

  /** Counts one request or pipe that failed on the balancer's side. */
  countError(): void {
    this.errors++;
  }

  /** Tracks one open client connection; call the result when it closes. */
  openConnection(): () => void {
    this.active++;
    let closed = false;
    return () => {
      if (closed) return;
      closed = true;
      this.active--;
    };
  }

  /** Adds one finished request's duration to the histogram. */
  observeLatency(ms: number): void {
    let i = 0;
    while (i < LATENCY_BOUNDS_MS.length && ms > LATENCY_BOUNDS_MS[i]) i++;
    this.counts[i]++;
    this.sumMs += ms;
  }

  /** A copy of the counters, safe to hand out. */
  snapshot(): ServiceMetrics {
    return {
      requests: this.requests,
      errors: this.errors,
      activeConnections: this.active,
      latency: {
        boundsMs: [...LATENCY_BOUNDS_MS],
        counts: [...this.counts],
        sumMs: this.sumMs,
      },
    };
  }
}
