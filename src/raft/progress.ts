/**
 * How a leader sends to one follower: `probe` sends one append at a time
 * until it finds where the logs match, `replicate` streams entries, and
 * `snapshot` waits for an InstallSnapshot to land.
 */
export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** A leader's view of one follower's log. */
export class Progress {
  /** Highest index known to match the leader's log. Invariant: match < next; never decreases. */
  match = 0;
  /** Index of the next entry to send. */
  next: number;
  state: ProgressState = 'probe';
  /** In probe: an append is in flight, so send no other until an answer or a heartbeat. */
  probeSent = false;
  /** In snapshot: the index of the snapshot sent. */
  pendingSnapshot = 0;
  /** In snapshot: ticks since it was sent, to resend one that was lost. */
  snapshotTicks = 0;
  /** Heard from since the last check-quorum round. */
  recentActive = true;
  /**
   * The leader's tick at which it sent the newest heartbeat this follower
   * answered: the follower will not vote for another server for an election
   * timeout after it received that heartbeat, which was no earlier.
   */
  leaseFrom = -Infinity;

  constructor(next: number) {
    this.next = next;
  }

  /** True when nothing more should be sent until the follower answers. */
  isPaused(): boolean {
    if (this.state === 'probe') return this.probeSent;
    return this.state === 'snapshot';
  }

  /** Records an acknowledgement of `index`; returns whether `match` moved. */
  maybeUpdate(index: number): boolean {
    this.next = Math.max(this.next, index + 1);
    if (index <= this.match) return false;
    this.match = index;
    this.probeSent = false;
    return true;
  }

  /**
   * Backs off after the follower rejected `rejected`; `nextProbe` is where the
   * hint says to try. Returns false for a stale rejection.
   */
  maybeDecrTo(rejected: number, nextProbe: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.becomeProbe();
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, nextProbe), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** Starts probing after the last matching index. */
  becomeProbe(): void {
    this.state = 'probe';
    this.next = this.match + 1;
    this.probeSent = false;
  }

  /** Starts streaming after the last matching index. */
  becomeReplicate(): void {
    this.state = 'replicate';
    this.next = this.match + 1;
  }

  /** Waits for the snapshot at `index` to be installed. */
  becomeSnapshot(index: number): void {
    this.state = 'snapshot';
    this.pendingSnapshot = index;
    this.snapshotTicks = 0;
  }
}
