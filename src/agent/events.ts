/**
 * Records Kubernetes-style events (Scheduled, Pulled, Started, Unhealthy,
 * ScalingReplicaSet, ...) through the command log. Events are buffered and
 * sent at most once per flush interval in one recordEvents command, and an
 * event that repeats within the interval is sent once with its count, so a
 * failing probe or a crash loop costs the log one entry per interval, not
 * one per occurrence.
 */
import type pino from 'pino';
import type { CommandLog } from '../store/command-log';
import type { EventRecord } from '../store/commands';

/** The object an event is about. */
export interface InvolvedObject {
  kind: string;
  name: string;
  uid?: string;
}

/** What a component reports; the recorder adds counts and times. */
export interface EventInput {
  object: InvolvedObject;
  type?: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

/** Options of an {@link EventRecorder}. */
export interface EventRecorderOptions {
  log: CommandLog;
  logger: pino.Logger;
  /** The component named as the events' source. */
  component: string;
  host?: string;
  flushIntervalMs?: number;
  /** The clock; tests replace it. */
  now?: () => number;
}

const DEFAULT_FLUSH_MS = 1000;

/** Buffers events of one component and proposes them in batches. */
export class EventRecorder {
  private readonly opts: EventRecorderOptions;
  private pending = new Map<string, EventRecord>();
  private timer?: NodeJS.Timeout;
  private flushing?: Promise<void>;
  private closed = false;

  constructor(opts: EventRecorderOptions) {
    this.opts = opts;
  }

  /** Notes one occurrence; it reaches the log with the next flush. */
  record(input: EventInput): void {
    if (this.closed) return;
    const at = new Date((this.opts.now ?? Date.now)()).toISOString();
    const type = input.type ?? 'Normal';
    const key = JSON.stringify([input.object, type, input.reason, input.message]);
    const existing = this.pending.get(key);
    if (existing) {
      existing.count += 1;
      existing.lastTimestamp = at;
    } else {
      this.pending.set(key, {
        involvedObject: { ...input.object },
        type,
        reason: input.reason,
        message: input.message,
        source: this.source(),
        count: 1,
        firstTimestamp: at,
        lastTimestamp: at,
      });
    }
    this.schedule();
  }

  /** Sends what is buffered now; resolves once it is in the log. */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.flushing;
    if (this.pending.size === 0) return;
    const events = [...this.pending.values()];
    this.pending = new Map();
    const now = new Date((this.opts.now ?? Date.now)()).toISOString();
    this.flushing = this.opts.log
      .propose({ op: 'recordEvents', events, now })
      .then(() => undefined)
      .catch((err) => this.opts.logger.warn({ err, count: events.length }, 'cannot record events'));
    await this.flushing;
  }

  /** Stops recording; what is buffered is sent first. */
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
  }

  /** Stops recording at once, dropping what is buffered (the log is closing). */
  discard(): void {
    clearTimeout(this.timer);
    this.pending.clear();
    this.closed = true;
  }

  private source(): EventRecord['source'] {
    const { component, host } = this.opts;
    return host ? { component, host } : { component };
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => void this.flush(), this.opts.flushIntervalMs ?? DEFAULT_FLUSH_MS);
    this.timer.unref();
  }
}
