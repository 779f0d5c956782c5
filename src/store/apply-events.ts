/**
 * Applies recordEvents commands. Events go through the log like every other
 * change, so they are kept small and few: an event that repeats (same
 * object, type, reason and message) only bumps its count, each object keeps
 * its newest MAX_EVENTS_PER_OBJECT events, and events older than
 * EVENT_TTL_MS are dropped. Deterministic: names, uids and pruning derive
 * from the command alone.
 */
import { contentHash } from '../model/canonical';
import type { EventRecord, RecordEventsCommand } from './commands';
import type { Store, StoredObject } from './store';

/** Events kept per involved object; older ones are pruned first. */
export const MAX_EVENTS_PER_OBJECT = 30;
/** Events kept in all; the least recently seen go first. */
export const MAX_EVENTS = 2000;
/** How long an event is kept after it was last seen (Kubernetes keeps one hour). */
export const EVENT_TTL_MS = 60 * 60 * 1000;

/** A stored event, in the Kubernetes v1 Event shape. */
export interface StoredEvent extends StoredObject {
  involvedObject: EventRecord['involvedObject'];
  type: EventRecord['type'];
  reason: string;
  message: string;
  source: EventRecord['source'];
  count: number;
  firstTimestamp: string;
  lastTimestamp: string;
}

/** Merges the command's events into the Event table, then prunes it. */
export function recordEvents(store: Store, index: number, cmd: RecordEventsCommand): void {
  for (const record of cmd.events) putEvent(store, index, record);
  pruneEvents(store, index, Date.parse(cmd.now));
}

/** The name an event gets; repeats of the same event get the same name. */
export function eventName(record: EventRecord): string {
  const { involvedObject: o, type, reason, message } = record;
  const identity = { kind: o.kind, name: o.name, uid: o.uid ?? '', type, reason, message };
  const key = contentHash(identity, 16);
  return `${o.name}.${key}`;
}

function putEvent(store: Store, index: number, record: EventRecord): void {
  const name = eventName(record);
  const existing = store.get<StoredEvent>('Event', name);
  if (existing) {
    existing.count += record.count;
    if (record.lastTimestamp > existing.lastTimestamp) {
      existing.lastTimestamp = record.lastTimestamp;
    }
    store.put('Event', existing, index);
    return;
  }
  const event: StoredEvent = {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: {
      name,
      namespace: 'default',
      uid: contentHash({ event: name }, 32),
      resourceVersion: '',
      creationTimestamp: record.firstTimestamp,
    },
    involvedObject: {
      ...record.involvedObject,
      namespace: 'default',
    } as EventRecord['involvedObject'],
    type: record.type,
    reason: record.reason,
    message: record.message,
    source: { ...record.source },
    count: record.count,
    firstTimestamp: record.firstTimestamp,
    lastTimestamp: record.lastTimestamp,
  };
  store.put('Event', event, index);
}

function pruneEvents(store: Store, index: number, now: number): void {
  const events = store.list<StoredEvent>('Event');
  // Newest first, ties broken by name so that every server prunes alike.
  events.sort(
    (a, b) =>
      b.lastTimestamp.localeCompare(a.lastTimestamp) ||
      a.metadata.name.localeCompare(b.metadata.name),
  );
  const perObject = new Map<string, number>();
  events.forEach((e, i) => {
    const key = `${e.involvedObject.kind}/${e.involvedObject.name}`;
    const seen = (perObject.get(key) ?? 0) + 1;
    perObject.set(key, seen);
    const expired = now - Date.parse(e.lastTimestamp) > EVENT_TTL_MS;
    const surplus = seen > MAX_EVENTS_PER_OBJECT || i >= MAX_EVENTS;
    if (expired || surplus) store.remove('Event', e, index);
  });
}
