/**
 * Fewer, larger Raft messages. The core sends one append per proposal, so
 * proposals that arrive together would cost one message, one step and one
 * answer each; joined, they cost one of each per member.
 */
import type { AppendRequest, Message } from '../raft';

/** Most entries one joined append may carry. */
const MAX_JOINED_ENTRIES = 512;

/**
 * Joins each append to the append sent just before it to the same member
 * when the second continues the first (same term, its prevIndex is the
 * first's last index). A follower that steps the joined message ends in the
 * same state as after stepping both; the order of every member's messages
 * is kept.
 */
export function coalesceAppends(messages: Message[]): Message[] {
  const out: Message[] = [];
  const lastTo = new Map<string, number>();
  for (const m of messages) {
    const at = lastTo.get(m.to);
    const prev = at === undefined ? undefined : out[at];
    if (m.type === 'append' && prev?.type === 'append' && continues(prev, m)) {
      out[at!] = { ...prev, entries: [...prev.entries, ...m.entries], commit: m.commit };
      continue;
    }
    lastTo.set(m.to, out.length);
    out.push(m);
  }
  return out;
}

function continues(first: AppendRequest, next: AppendRequest): boolean {
  const lastIndex = first.prevIndex + first.entries.length;
  const lastTerm = first.entries.at(-1)?.term ?? first.prevTerm;
  return (
    next.term === first.term &&
    next.prevIndex === lastIndex &&
    next.prevTerm === lastTerm &&
    next.commit >= first.commit &&
    first.entries.length + next.entries.length <= MAX_JOINED_ENTRIES
  );
}
