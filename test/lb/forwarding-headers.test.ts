import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  buildRequestHeaders,
  buildResponseHeaders,
  normalizeAddress,
  TrustedProxies,
} from '../../src/lb/forwarding-headers';

function toMap(flat: string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (let i = 0; i < flat.length; i += 2) {
    (out[flat[i].toLowerCase()] ??= []).push(flat[i + 1]);
  }
  return out;
}

const untrusted = { peer: '192.0.2.7', trusted: false, proto: 'http' as const };
const trusted = { peer: '10.0.0.9', trusted: true, proto: 'http' as const };

describe('buildRequestHeaders', () => {
  test('replaces a client-supplied X-Forwarded-For with the TCP peer', () => {
    const raw = ['Host', 'shop.example', 'X-Forwarded-For', '6.6.6.6'];
    raw.push('X-Forwarded-Proto', 'https');
    const h = toMap(buildRequestHeaders(raw, untrusted));
    assert.deepEqual(h['x-forwarded-for'], ['192.0.2.7']);
    assert.deepEqual(h['x-forwarded-proto'], ['http']);
    assert.deepEqual(h['x-forwarded-host'], ['shop.example']);
  });

  test('appends the peer to X-Forwarded-For from a trusted proxy', () => {
    const raw = ['Host', 'h', 'X-Forwarded-For', '1.2.3.4', 'x-forwarded-for', '5.6.7.8'];
    raw.push('X-Forwarded-Proto', 'https', 'X-Forwarded-Host', 'outer.example');
    const h = toMap(buildRequestHeaders(raw, trusted));
    assert.deepEqual(h['x-forwarded-for'], ['1.2.3.4, 5.6.7.8, 10.0.0.9']);
    assert.deepEqual(h['x-forwarded-proto'], ['https']);
    assert.deepEqual(h['x-forwarded-host'], ['outer.example']);
  });

  test('drops hop-by-hop headers and those named in Connection', () => {
    const raw = ['Host', 'h', 'Connection', 'keep-alive, X-Secret', 'Keep-Alive', 'timeout=5'];
    raw.push('X-Secret', 's', 'TE', 'trailers', 'Transfer-Encoding', 'chunked');
    raw.push('Expect', '100-continue');
    raw.push('Upgrade', 'websocket', 'Proxy-Connection', 'x', 'Accept', '*/*');
    const h = toMap(buildRequestHeaders(raw, untrusted));
    assert.deepEqual(Object.keys(h).sort(), [
      'accept',
      'host',
      'x-forwarded-for',
      'x-forwarded-host',
      'x-forwarded-proto',
    ]);
  });

  test('keeps the upgrade handshake when tunnelling', () => {
    const raw = ['Host', 'h', 'Connection', 'Upgrade', 'Upgrade', 'websocket'];
    const h = toMap(buildRequestHeaders(raw, untrusted, 'websocket'));
    assert.deepEqual(h.connection, ['upgrade']);
    assert.deepEqual(h.upgrade, ['websocket']);
  });
});

describe('buildResponseHeaders', () => {
  test('removes hop-by-hop headers and keeps repeated ones', () => {
    const out = buildResponseHeaders({
      connection: 'close, x-hop',
      'x-hop': '1',
      'keep-alive': 'timeout=5',
      'transfer-encoding': 'chunked',
      'set-cookie': ['a=1', 'b=2'],
      'content-type': 'text/plain',
    });
    assert.deepEqual(out, { 'set-cookie': ['a=1', 'b=2'], 'content-type': 'text/plain' });
  });
});

describe('TrustedProxies', () => {
  test('matches single addresses and CIDR ranges of both families', () => {
    const t = new TrustedProxies(['10.0.0.0/8', '192.0.2.1', 'fd00::/8']);
    assert.equal(t.has('10.20.30.40'), true);
    assert.equal(t.has('192.0.2.1'), true);
    assert.equal(t.has('192.0.2.2'), false);
    assert.equal(t.has('fd12::1'), true);
    assert.equal(t.has('not-an-ip'), false);
  });

  test('rejects an entry that is not an address or CIDR', () => {
    assert.throws(() => new TrustedProxies(['10.0.0.0/33']), { code: 'Invalid' });
    assert.throws(() => new TrustedProxies(['proxy.local']), { code: 'Invalid' });
  });

  test('treats an IPv4-mapped IPv6 peer as its IPv4 address', () => {
    assert.equal(normalizeAddress('::ffff:127.0.0.1'), '127.0.0.1');
    assert.equal(normalizeAddress('::1'), '::1');
  });
});
