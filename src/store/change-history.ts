/**
 * A bounded, in-memory record of the store's recent changes, so that a
 * watch can resume from a resourceVersion (a log index) it saw earlier.
 */
import type { Change, Store } from './store';

/** One committed change with the log index that made it. */
export interface IndexedChange {
  index: number;
  change: Change;
}

/** The default number of changes kept. */
export const DEFAULT_HISTORY_SIZE = 5000;

/**
 * Keeps the last `size` changes. `floor` is the newest index whose changes
 * are no longer all kept: a watch may resume from any index >= floor.
 */
export class ChangeHistory {
  private readonly entries: IndexedChange[] = [];
  private readonly listeners = new Set<(c: IndexedChange) => void>();
  private readonly size: number;
  private readonly onChange: (changes: Change[], index: number) => void;
  private readonly store: Store;
  private floorIndex: number;
  private lastIndex: number;

  constructor(store: Store, size = DEFAULT_HISTORY_SIZE) {
    this.store = store;
    this.size = size;
    this.floorIndex = Number(store.getMeta('applied_index') ?? '0');
    this.lastIndex = this.floorIndex;
    this.onChange = (changes, index) => this.record(changes, index);
    store.on('change', this.onChange);
  }

  /** The oldest resourceVersion a watch can resume from. */
  get floor(): number {
    return this.floorIndex;
  }

  /** The newest index this history has heard of. */
  get latest(): number {
    return Math.max(this.lastIndex, Number(this.store.getMeta('applied_index') ?? '0'));
  }

  /** Changes after `index`, oldest first; undefined when they are no longer all kept. */
  since(index: number): IndexedChange[] | undefined {
    if (index < this.floorIndex) return undefined;
    return this.entries.filter((e) => e.index > index);
  }

  /** Calls `listener` for every change from now on; returns the unsubscribe. */
  subscribe(listener: (c: IndexedChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Stops listening to the store. */
  close(): void {
    this.store.off('change', this.onChange);
    this.listeners.clear();
  }

  private record(changes: Change[], index: number): void {
    this.lastIndex = index;
    for (const change of changes) {
      const entry = { index, change };
      this.entries.push(entry);
      for (const listener of this.listeners) listener(entry);
    }
    this.trim();
  }

  // Whole indexes are dropped: a watch resuming at an index must get every
  // change after it, never half of a command's changes.
  private trim(): void {
    while (this.entries.length > this.size) {
      const dropped = this.entries[0].index;
      while (this.entries.length > 0 && this.entries[0].index === dropped) this.entries.shift();
      this.floorIndex = dropped;
    }
  }
}
