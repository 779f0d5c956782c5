import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { coalesceAppends } from '../../src/cluster/coalesce';
import type { AppendRequest, Entry, Message } from '../../src/raft';

function entry(index: number, term = 2): Entry {
  return { index, term, type: 'normal', data: new Uint8Array([index]) };
}

/** The append the core sends for the entries `from..to` (inclusive). */
function append(to: string, from: number, last: number, commit: number, term = 2): AppendRequest {
  const entries = [];
  for (let i = from; i <= last; i++) entries.push(entry(i, term));
  return {
    type: 'append', from: 'a', to, term,
    prevIndex: from - 1, prevTerm: term, entries, commit,
  };
}

const indices = (m: Message) => (m.type === 'append' ? m.entries.map((e) => e.index) : []);

describe('coalesceAppends', () => {
  test('appends that continue each other to one member become one append', () => {
    const out = coalesceAppends([
      append('b', 5, 5, 4), append('c', 5, 5, 4),
      append('b', 6, 6, 4), append('c', 6, 6, 5),
      append('b', 7, 6, 6),
    ]);
    assert.equal(out.length, 2);
    assert.deepEqual(out.map((m) => m.to), ['b', 'c']);
    assert.deepEqual(indices(out[0]), [5, 6]);
    assert.deepEqual(indices(out[1]), [5, 6]);
    assert.equal((out[0] as AppendRequest).prevIndex, 4);
    assert.equal((out[0] as AppendRequest).commit, 6, 'the newest commit index is carried');
    assert.equal((out[1] as AppendRequest).commit, 5);
  });

  test('an append after another message to the same member is not joined across it', () => {
    const heartbeat: Message = {
      type: 'heartbeat', from: 'a', to: 'b', term: 2, commit: 4, context: '', sentAt: 1,
    };
    const out = coalesceAppends([append('b', 5, 5, 4), heartbeat, append('b', 6, 6, 4)]);
    assert.deepEqual(out.map((m) => m.type), ['append', 'heartbeat', 'append']);
  });

  test('appends with a gap or of another term stay apart', () => {
    const gap = coalesceAppends([append('b', 5, 5, 4), append('b', 7, 7, 4)]);
    assert.equal(gap.length, 2);
    const terms = coalesceAppends([append('b', 5, 5, 4, 2), append('b', 6, 6, 4, 3)]);
    assert.equal(terms.length, 2);
  });
});
