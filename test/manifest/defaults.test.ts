import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultImagePullPolicy } from '../../src/manifest/defaults';

test('pulls a moving image tag every time and a pinned one only when missing', () => {
  assert.equal(defaultImagePullPolicy('nginx'), 'Always');
  assert.equal(defaultImagePullPolicy('nginx:latest'), 'Always');
  assert.equal(defaultImagePullPolicy('registry:5000/nginx'), 'Always');
  assert.equal(defaultImagePullPolicy('registry:5000/nginx:1.27'), 'IfNotPresent');
  assert.equal(defaultImagePullPolicy('nginx:latest@sha256:abcd'), 'IfNotPresent');
});
