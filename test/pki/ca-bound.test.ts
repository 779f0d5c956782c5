import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  certificateInfo,
  createCa,
  createSigningRequest,
  generateKeyPair,
  signCertificate,
} from '../../src/pki';

test('a leaf asked to outlive its CA ends when the CA ends', () => {
  const now = new Date('2030-01-01T00:00:00Z');
  const ca = createCa({ commonName: 'short CA', lifetimeMs: 3600_000, now });
  const keys = generateKeyPair();
  const request = createSigningRequest(keys.keyPem, { name: 'n1', ips: [], dnsNames: ['n1'] });
  const leaf = signCertificate(ca, request, { lifetimeMs: 365 * 24 * 3600_000, now });
  assert.equal(
    certificateInfo(leaf).notAfter.getTime(),
    certificateInfo(ca.certPem).notAfter.getTime(),
  );
});
