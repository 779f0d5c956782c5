import type { RuntimeEvent } from '../../src/runtime/container-runtime';

interface Waiter {
  match: (e: RuntimeEvent) => boolean;
  resolve: (e: RuntimeEvent) => void;
}

/** Collects runtime events and lets a test wait for one without sleeping. */
export class EventRecorder {
  readonly events: RuntimeEvent[] = [];
  private waiters: Waiter[] = [];

  /** The callback to hand to watchEvents. */
  readonly onEvent = (event: RuntimeEvent): void => {
    this.events.push(event);
    const due = this.waiters.filter((w) => w.match(event));
    this.waiters = this.waiters.filter((w) => !w.match(event));
    due.forEach((w) => w.resolve(event));
  };

  /** Resolves with the first recorded or future event that matches; rejects after timeoutMs. */
  waitFor(match: (e: RuntimeEvent) => boolean, timeoutMs = 10_000): Promise<RuntimeEvent> {
    const seen = this.events.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        const actions = this.events.map(describe).join(', ');
        reject(new Error(`no matching runtime event within ${timeoutMs} ms; saw: ${actions}`));
      }, timeoutMs);
      const waiter: Waiter = {
        match,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
      };
      this.waiters.push(waiter);
    });
  }

  /** Resolves with the container event `action` for container `id`. */
  waitForAction(id: string, action: string, timeoutMs?: number): Promise<RuntimeEvent> {
    return this.waitFor(
      (e) => e.type === 'container' && e.id === id && e.action === action,
      timeoutMs,
    );
  }

  /** The actions seen for one container, in order. */
  actionsOf(id: string): string[] {
    return this.events.flatMap((e) => (e.type === 'container' && e.id === id ? [e.action] : []));
  }
}

function describe(e: RuntimeEvent): string {
  return e.type === 'container' ? `${e.action}:${e.id.slice(0, 12)}` : e.type;
}
