/**
 * `?watch=true`: a stream of `{"type", "object"}` JSON lines, one per
 * change of the watched resource, resumable from a resourceVersion (a log
 * index) as long as the change history still holds it.
 */
import type http from 'node:http';
import type { ChangeHistory, IndexedChange } from '../store/change-history';
import type { Change, Kind, StoredObject } from '../store/store';
import { failure } from './status';

/** How often a watch that allows bookmarks gets one. */
export const BOOKMARK_INTERVAL_MS = 15_000;
/** How long a watch lasts when the client names no timeoutSeconds. */
const DEFAULT_TIMEOUT_S = 1800;
/** The annotation that marks the end of the initial events of a watch list. */
export const INITIAL_EVENTS_END = 'k8s.io/initial-events-end';

/** What one watch needs to know. */
export interface WatchSpec {
  kind: Kind;
  apiVersion: string;
  history: ChangeHistory;
  /** The objects that exist now, for a watch that starts with them. */
  current: () => StoredObject[];
  /** True for objects the selectors let through. */
  matches: (object: StoredObject) => boolean;
  /** Turns an object into what the client asked for (itself, or a Table). */
  encode: (object: StoredObject) => unknown;
  query: URLSearchParams;
  bookmarkIntervalMs?: number;
}

interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: unknown;
}

/** Serves one watch on `res` until the client leaves or the timeout ends it. */
export function serveWatch(spec: WatchSpec, req: http.IncomingMessage, res: http.ServerResponse) {
  const { history, query } = spec;
  const requested = query.get('resourceVersion') ?? '';
  const initial =
    query.get('sendInitialEvents') === 'true' || requested === '' || requested === '0';
  if (!initial && !/^\d+$/.test(requested)) {
    sendStatus(res, failure(400, 'BadRequest', `invalid resourceVersion "${requested}"`));
    return;
  }
  const replay = initial ? [] : history.since(Number(requested));
  if (replay === undefined) {
    const message = `too old resource version: ${requested} (${history.floor})`;
    sendStatus(res, failure(410, 'Expired', message));
    return;
  }

  // Everything below up to the subscription runs in one tick: no commit can
  // fall between the snapshot (current objects or replayed history) and the
  // live changes, so none is lost or sent twice.
  const write = (event: WatchEvent) => res.write(`${JSON.stringify(event)}\n`);
  const visible = new Set<string>();
  const send = ({ change }: IndexedChange) => {
    if (change.kind !== spec.kind) return;
    const type = eventType(change, spec.matches(change.object), visible.has(change.name));
    if (type === 'DELETED') visible.delete(change.name);
    else if (type) visible.add(change.name);
    if (type) write({ type, object: spec.encode(change.object) });
  };
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache' });
  // A resumed watch cannot know what the client saw at its version; the
  // objects that match now stand for it.
  for (const object of spec.current().filter(spec.matches)) {
    visible.add(object.metadata.name);
    if (initial) write({ type: 'ADDED', object: spec.encode(object) });
  }
  replay.forEach(send);
  const unsubscribe = history.subscribe(send);
  const bookmarks = query.get('allowWatchBookmarks') === 'true';
  if (bookmarks && query.get('sendInitialEvents') === 'true') {
    write(bookmark(spec, history.latest, true));
  }
  const timers = startTimers(spec, res, bookmarks);
  const stop = () => {
    unsubscribe();
    for (const t of timers) clearTimeout(t);
  };
  req.on('close', stop);
  res.on('close', stop);
}

/**
 * The event a watch with selectors sends for a change, as Kubernetes does:
 * an object that starts to match is ADDED, one that stops matching is
 * DELETED, and changes the client never saw are not sent at all.
 */
function eventType(
  change: Change,
  matches: boolean,
  wasVisible: boolean,
): WatchEvent['type'] | undefined {
  if (change.type === 'DELETED') return wasVisible || matches ? 'DELETED' : undefined;
  if (matches) return wasVisible || change.type === 'ADDED' ? change.type : 'ADDED';
  return wasVisible ? 'DELETED' : undefined;
}

function startTimers(spec: WatchSpec, res: http.ServerResponse, bookmarks: boolean) {
  const timers: NodeJS.Timeout[] = [];
  const seconds = Number(spec.query.get('timeoutSeconds') ?? '') || DEFAULT_TIMEOUT_S;
  const end = setTimeout(() => res.end(), seconds * 1000);
  timers.push(end);
  if (bookmarks) {
    const every = spec.bookmarkIntervalMs ?? BOOKMARK_INTERVAL_MS;
    const tick = setInterval(() => {
      res.write(`${JSON.stringify(bookmark(spec, spec.history.latest, false))}\n`);
    }, every);
    timers.push(tick);
  }
  return timers;
}

function bookmark(spec: WatchSpec, index: number, initialEnd: boolean): WatchEvent {
  const metadata: Record<string, unknown> = { resourceVersion: String(index) };
  if (initialEnd) metadata.annotations = { [INITIAL_EVENTS_END]: 'true' };
  return { type: 'BOOKMARK', object: { kind: spec.kind, apiVersion: spec.apiVersion, metadata } };
}

// A watch from a version the history no longer has gets 410 with reason
// Expired, as from Kubernetes; clients then list again and watch from there.
function sendStatus(res: http.ServerResponse, status: ReturnType<typeof failure>): void {
  const text = JSON.stringify(status);
  res.writeHead(status.code, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}
