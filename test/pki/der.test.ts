/**
 * Tests for the DER encoder: the length and INTEGER encodings checked as properties against
 * an independent decoder, and the fixed encodings of the other types against known bytes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as der from '../../src/pki/der';

/** Decodes a length the long way, independently of the encoder: [value, octets used]. */
function decodeLength(bytes: Buffer): [number, number] {
  if (bytes[0] < 0x80) return [bytes[0], 1];
  const count = bytes[0] & 0x7f;
  let value = 0;
  for (let i = 1; i <= count; i++) value = value * 256 + bytes[i];
  return [value, 1 + count];
}

test('length encoding is DER: short form below 128, minimal long form above', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 70000 }), (n) => {
      const enc = der.encodeLength(n);
      const [value, used] = decodeLength(enc);
      assert.equal(value, n);
      assert.equal(used, enc.length);
      if (n < 128) {
        assert.equal(enc.length, 1);
      } else {
        assert.ok(enc[0] > 0x80, 'long form with at least one length octet');
        assert.notEqual(enc[1], 0, 'no leading zero octet');
        const minimal = n < 0x100 ? 1 : n < 0x10000 ? 2 : 3;
        assert.equal(enc.length, 1 + minimal);
      }
    }),
    { numRuns: 2000 },
  );
  // The boundaries, explicitly.
  assert.deepEqual([...der.encodeLength(127)], [0x7f]);
  assert.deepEqual([...der.encodeLength(128)], [0x81, 0x80]);
  assert.deepEqual([...der.encodeLength(255)], [0x81, 0xff]);
  assert.deepEqual([...der.encodeLength(256)], [0x82, 0x01, 0x00]);
  assert.deepEqual([...der.encodeLength(70000)], [0x83, 0x01, 0x11, 0x70]);
});

test('tlv round-trips through readElement for contents of any length', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 70000 }), (n) => {
      const enc = der.tlv(der.Tag.OCTET_STRING, Buffer.alloc(n, 0xab));
      const el = der.readElement(enc);
      assert.equal(el.tag, der.Tag.OCTET_STRING);
      assert.equal(el.end, enc.length);
      assert.equal(el.end - el.contentStart, n);
    }),
    { numRuns: 300 },
  );
});

test('INTEGER from bytes: minimal, positive, 0x00 pad when the top bit is set', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 40 }), (bytes) => {
      const enc = der.integer(bytes);
      assert.equal(enc[0], der.Tag.INTEGER);
      const el = der.readElement(enc);
      assert.equal(el.end, enc.length);
      const content = enc.subarray(el.contentStart);
      assert.ok(content.length >= 1);
      assert.equal(content[0] & 0x80, 0, 'never reads as negative');
      if (content.length > 1) {
        // DER: a leading 0x00 only when the next byte has its top bit set.
        assert.ok(!(content[0] === 0x00 && (content[1] & 0x80) === 0), 'no redundant 0x00');
      }
      const expected = BigInt('0x0' + Buffer.from(bytes).toString('hex'));
      assert.equal(BigInt('0x' + content.toString('hex')), expected);
    }),
    { numRuns: 2000 },
  );
  assert.deepEqual([...der.integer(Buffer.from([0x80]))], [0x02, 0x02, 0x00, 0x80]);
  assert.deepEqual([...der.integer(Buffer.from([0x7f]))], [0x02, 0x01, 0x7f]);
  assert.deepEqual([...der.integer(Buffer.from([0x00, 0x00, 0xff]))], [0x02, 0x02, 0x00, 0xff]);
  assert.deepEqual([...der.integer(Buffer.alloc(0))], [0x02, 0x01, 0x00]);
  assert.deepEqual([...der.smallInteger(2)], [0x02, 0x01, 0x02]);
  assert.deepEqual([...der.smallInteger(0)], [0x02, 0x01, 0x00]);
});

test('OIDs, strings, booleans and bit strings encode to their known bytes', () => {
  assert.equal(der.oid('1.2.840.10045.4.3.2').toString('hex'), '06082a8648ce3d040302');
  assert.equal(der.oid('2.5.29.17').toString('hex'), '0603551d11');
  assert.equal(der.oid('1.3.6.1.5.5.7.3.1').toString('hex'), '06082b06010505070301');
  assert.equal(der.oid('2.999.3').toString('hex'), '0603883703');
  assert.throws(() => der.oid('1.40'), RangeError);
  assert.throws(() => der.oid('1'), RangeError);
  assert.equal(der.boolean(true).toString('hex'), '0101ff');
  assert.equal(der.boolean(false).toString('hex'), '010100');
  assert.equal(der.utf8String('né').toString('hex'), '0c036ec3a9');
  assert.equal(der.printableString('AB 1').toString('hex'), '130441422031');
  assert.throws(() => der.printableString('a@b'), RangeError);
  assert.equal(der.octetString(Buffer.from([1, 2])).toString('hex'), '04020102');
  assert.equal(der.bitString(Buffer.from([0xa0]), 5).toString('hex'), '030205a0');
  // keyUsage: keyCertSign (5) + cRLSign (6) is the well-known 03 02 01 06.
  assert.equal(der.namedBits([5, 6]).toString('hex'), '03020106');
  // digitalSignature alone: 03 02 07 80.
  assert.equal(der.namedBits([0]).toString('hex'), '03020780');
  assert.equal(der.namedBits([0, 8]).toString('hex'), '0303078080');
  assert.equal(der.contextExplicit(0, der.smallInteger(2)).toString('hex'), 'a003020102');
  assert.equal(der.contextImplicit(2, Buffer.from('a')).toString('hex'), '820161');
  assert.equal(der.sequence().toString('hex'), '3000');
});

test('SET OF sorts its elements by encoding', () => {
  const a = der.smallInteger(1);
  const b = der.smallInteger(2);
  assert.deepEqual(der.set(b, a), der.set(a, b));
  assert.equal(der.set(b, a).toString('hex'), '3106020101020102');
});

test('times follow RFC 5280: UTCTime through 2049, GeneralizedTime from 2050', () => {
  const t2049 = new Date(Date.UTC(2049, 11, 31, 23, 59, 59, 999));
  const t2050 = new Date(Date.UTC(2050, 0, 1, 0, 0, 0));
  const t1950 = new Date(Date.UTC(1950, 0, 1, 0, 0, 0));
  const t1949 = new Date(Date.UTC(1949, 11, 31, 23, 59, 59));
  assert.equal(der.x509Time(t2049).toString('latin1'), '\x17\x0d491231235959Z');
  assert.equal(der.x509Time(t2050).toString('latin1'), '\x18\x0f20500101000000Z');
  assert.equal(der.x509Time(t1950).toString('latin1'), '\x17\x0d500101000000Z');
  assert.equal(der.x509Time(t1949).toString('latin1'), '\x18\x0f19491231235959Z');
  assert.equal(
    der.x509Time(new Date(Date.UTC(2026, 1, 3, 4, 5, 6))).toString('latin1'),
    '\x17\x0d260203040506Z',
  );
  assert.throws(() => der.utcTime(t2050), RangeError);
  assert.throws(() => der.x509Time(new Date(NaN)), RangeError);
});

test('readElement refuses what DER forbids', () => {
  assert.throws(() => der.readElement(Buffer.from([0x04, 0x81, 0x05, 1, 2, 3, 4, 5])), /minimal/);
  assert.throws(() => der.readElement(Buffer.from([0x04, 0x80])), /length form/);
  assert.throws(() => der.readElement(Buffer.from([0x04, 0x05, 1])), /past the end/);
});
