import type { Logger } from 'pino';
import type { EventWatch, RuntimeEvent } from './container-runtime';
import { LineSplitter, parseJsonLine } from './docker-streams';

/** Opens one engine event stream; rejects when the engine cannot be reached. */
export type EventStreamOpener = (signal: AbortSignal) => Promise<NodeJS.ReadableStream>;

/** Tuning for {@link EventFollower}; the defaults suit a local Docker socket. */
export interface ReconnectPolicy {
  initialDelayMs: number;
  maxDelayMs: number;
}

/** Retries start fast because a local engine usually comes back quickly. */
export const DEFAULT_RECONNECT: ReconnectPolicy = { initialDelayMs: 100, maxDelayMs: 3000 };

/** The wait before reconnect attempt `attempt` (0-based): doubling, capped. */
export function reconnectDelayMs(attempt: number, policy = DEFAULT_RECONNECT): number {
  const exponent = Math.min(attempt, 30);
  return Math.min(policy.initialDelayMs * 2 ** exponent, policy.maxDelayMs);
}

// Docker mixes these into Actor.Attributes next to the container's labels.
const DOCKER_ATTRIBUTES = new Set([
  'name',
  'image',
  'exitCode',
  'signal',
  'execID',
  'execDuration',
  'oldName',
]);

/** Turns one line of Docker's event stream into a container event, if it is one. */
export function toRuntimeEvent(line: string): RuntimeEvent | undefined {
  const record = parseJsonLine(line);
  if (!record || record.Type !== 'container') return undefined;

  const actor = record.Actor as { ID?: string; Attributes?: Record<string, string> } | undefined;
  const attributes = actor?.Attributes ?? {};
  const labels: Record<string, string> = {};
  for (const [key, value] of Object.entries(attributes)) {
    if (!DOCKER_ATTRIBUTES.has(key)) labels[key] = value;
  }

  const event: RuntimeEvent = {
    type: 'container',
    action: String(record.Action ?? record.status ?? ''),
    id: String(actor?.ID ?? record.id ?? ''),
    labels,
    time: eventTimeMs(record),
  };
  const exitCode = Number.parseInt(attributes.exitCode ?? '', 10);
  if (Number.isFinite(exitCode)) event.exitCode = exitCode;
  return event;
}

function eventTimeMs(record: Record<string, unknown>): number {
  if (typeof record.timeNano === 'number') return Math.floor(record.timeNano / 1e6);
  if (typeof record.time === 'number') return record.time * 1000;
  return Date.now();
}

/**
 * Keeps one engine event stream open: when it ends or fails it reports
 * `disconnected` once, retries with capped backoff and reports `reconnected`
 * only after the new stream is open, so that a caller who re-lists then
 * cannot miss an event between the list and the stream.
 */
export class EventFollower implements EventWatch {
  /**
   * Settles once the first stream is open (or the watch is closed); a caller
   * that lists containers after it cannot miss an event in between.
   */
  readonly ready: Promise<void>;

  private markReady!: () => void;
  private closed = false;
  private down = false;
  private attempt = 0;
  private abort?: AbortController;
  private stream?: NodeJS.ReadableStream;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly open: EventStreamOpener,
    private readonly onEvent: (e: RuntimeEvent) => void,
    private readonly log: Logger,
    private readonly policy: ReconnectPolicy = DEFAULT_RECONNECT,
  ) {
    this.ready = new Promise((resolve) => (this.markReady = resolve));
  }

  /** Opens the first stream; events flow once it is connected. */
  start(): this {
    void this.connect();
    return this;
  }

  /** Stops following; no event is delivered after this returns. */
  close(): void {
    this.closed = true;
    this.markReady();
    clearTimeout(this.timer);
    this.abort?.abort();
    this.destroyStream();
  }

  private async connect(): Promise<void> {
    const abort = new AbortController();
    this.abort = abort;
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.open(abort.signal);
    } catch (err) {
      this.handleLoss(err);
      return;
    }
    if (this.closed) {
      (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
      return;
    }
    this.attach(stream);
  }

  private attach(stream: NodeJS.ReadableStream): void {
    this.stream = stream;
    this.attempt = 0;
    this.markReady();
    if (this.down) {
      this.down = false;
      this.log.info('container engine event stream reconnected');
      this.deliver({ type: 'reconnected' });
    }

    const lines = new LineSplitter();
    let lost = false;
    const lose = (err?: unknown): void => {
      if (lost || this.stream !== stream) return;
      lost = true;
      this.stream = undefined;
      this.handleLoss(err ?? new Error('event stream ended'));
    };
    stream.on('data', (chunk: Buffer) => {
      for (const line of lines.push(chunk)) this.deliverLine(line);
    });
    stream.on('error', lose);
    stream.on('end', () => lose());
    stream.on('close', () => lose());
  }

  private deliverLine(line: string): void {
    const event = toRuntimeEvent(line);
    if (event) this.deliver(event);
  }

  private deliver(event: RuntimeEvent): void {
    if (this.closed) return;
    try {
      this.onEvent(event);
    } catch (err) {
      this.log.error({ err, action: event.type }, 'runtime event handler failed');
    }
  }

  private handleLoss(err: unknown): void {
    if (this.closed) return;
    const message = err instanceof Error ? err.message : String(err);
    if (!this.down) {
      this.down = true;
      this.log.warn({ err }, 'container engine event stream lost');
      this.deliver({ type: 'disconnected', error: message });
    }

    const delay = reconnectDelayMs(this.attempt++, this.policy);
    this.timer = setTimeout(() => void this.connect(), delay);
  }

  private destroyStream(): void {
    const stream = this.stream as (NodeJS.ReadableStream & { destroy?: () => void }) | undefined;
    this.stream = undefined;
    stream?.destroy?.();
  }
}
