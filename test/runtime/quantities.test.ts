import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCpu, parseMemory } from '../../src/runtime/pod-effects';

test('reads memory in every Kubernetes suffix, so a 64Mi request fits a node of Ki', () => {
  assert.equal(parseMemory('64Mi'), 64 * 1024 ** 2);
  assert.equal(parseMemory('1Gi'), 1024 ** 3);
  assert.equal(parseMemory('1M'), 1e6);
  assert.equal(parseMemory('1000Ki'), 1024000);
  assert.equal(parseMemory('128974848'), 128974848);
  const node = parseMemory('24683792Ki')!;
  assert.ok(node > parseMemory('64Mi')!);
  assert.equal(parseMemory(undefined), undefined);
});

test('reads CPU in cores and millicores as billionths of a CPU', () => {
  assert.equal(parseCpu('100m'), 100e6);
  assert.equal(parseCpu('2'), 2e9);
  assert.equal(parseCpu('0.5'), 5e8);
});
