import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  checkDns1035Label,
  checkDnsLabel,
  checkDnsSubdomain,
  checkImageReference,
  checkLabelValue,
  checkPortName,
  checkQualifiedName,
  parseImageReference,
} from '../../src/manifest/syntax';

function valid(check: (value: string) => string | undefined, values: string[]): void {
  for (const value of values) assert.equal(check(value), undefined, `${value} should be valid`);
}

function invalid(check: (value: string) => string | undefined, values: string[]): void {
  for (const value of values) {
    assert.match(check(value) ?? '', /^expected /, `${value} should be invalid`);
  }
}

test('checks DNS labels, DNS-1035 labels and subdomains', () => {
  valid(checkDnsLabel, ['a', 'web-1', '1st', 'a'.repeat(63)]);
  invalid(checkDnsLabel, ['', 'Web', '-a', 'a-', 'a.b', 'a_b', 'a'.repeat(64)]);
  valid(checkDns1035Label, ['web', 'a1']);
  invalid(checkDns1035Label, ['1st', 'a.b']);
  valid(checkDnsSubdomain, ['a.b.c', 'shop-1.web', `${'a'.repeat(63)}.${'b'.repeat(63)}`]);
  invalid(checkDnsSubdomain, ['a..b', '.a', 'a.', 'A.b', 'x'.repeat(254)]);
});

test('checks label keys and values', () => {
  valid(checkQualifiedName, ['app', 'app.kubernetes.io/name', 'A_b.c-D', 'example.com/x']);
  invalid(checkQualifiedName, ['', '/app', 'a/b/c', 'Example.com/x', '_app', 'a'.repeat(64)]);
  valid(checkLabelValue, ['', 'web', 'v1.2_3-x']);
  invalid(checkLabelValue, ['-web', 'web ', 'a/b', 'a'.repeat(64)]);
});

test('checks IANA service names used as port names', () => {
  valid(checkPortName, ['http', 'http-alt', 'h2c', 'a'.repeat(15)]);
  invalid(checkPortName, ['', '8080', 'HTTP', 'http--alt', '-http', 'http-', 'a'.repeat(16)]);
});

test('checks image references', () => {
  valid(checkImageReference, [
    'nginx',
    'nginx:1.27',
    'library/nginx:1.27-alpine',
    'registry.example.com:5000/team/app:v2',
    'localhost/app',
    '[::1]:5000/app:dev',
    `app@sha256:${'a'.repeat(64)}`,
    `ghcr.io/org/app:v1@sha256:${'b'.repeat(64)}`,
  ]);
  invalid(checkImageReference, [
    '',
    ' nginx',
    'Nginx',
    'nginx:',
    'nginx:-bad',
    'a b',
    'app@sha256:12',
  ]);
});

test('splits tag and digest, ignoring a registry port', () => {
  const none = { tag: undefined, digest: undefined };
  assert.deepEqual(parseImageReference('nginx'), none);
  assert.deepEqual(parseImageReference('localhost:5000/app'), none);
  assert.deepEqual(parseImageReference('localhost:5000/app:v1'), { tag: 'v1', digest: undefined });
  assert.deepEqual(parseImageReference('app:v1@sha256:abc'), { tag: 'v1', digest: 'sha256:abc' });
});
