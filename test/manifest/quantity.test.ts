import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCpuMillis, parseMemoryBytes, parseQuantity } from '../../src/manifest/quantity';

test('reads CPU quantities as millicores', () => {
  assert.equal(parseCpuMillis('500m'), 500);
  assert.equal(parseCpuMillis('1'), 1000);
  assert.equal(parseCpuMillis('0.1'), 100);
  assert.equal(parseCpuMillis('1.5'), 1500);
  assert.equal(parseCpuMillis('2e-3'), 2);
  assert.equal(parseCpuMillis('0'), 0);
});

test('rounds a CPU quantity finer than a millicore up', () => {
  assert.equal(parseCpuMillis('100u'), 1);
  assert.equal(parseCpuMillis('1n'), 1);
});

test('reads memory quantities with binary and decimal suffixes as bytes', () => {
  assert.equal(parseMemoryBytes('128Mi'), 128 * 1024 * 1024);
  assert.equal(parseMemoryBytes('1G'), 1e9);
  assert.equal(parseMemoryBytes('1Gi'), 2 ** 30);
  assert.equal(parseMemoryBytes('64k'), 64000);
  assert.equal(parseMemoryBytes('1e3'), 1000);
  assert.equal(parseMemoryBytes('.5Ki'), 512);
  assert.equal(parseMemoryBytes('1E'), 1e18);
});

test('refuses malformed and negative quantities', () => {
  for (const bad of ['', '-1', '1 Gi', '1gi', '1KiB', 'one', '1.2.3', '0x10', 'm', '1e']) {
    assert.equal(parseQuantity(bad), undefined, bad);
  }
});
