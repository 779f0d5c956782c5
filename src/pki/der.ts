/**
 * A minimal ASN.1 DER encoder, with just enough of a reader to walk a certificate's outer
 * structure. Node can parse X.509 certificates but not create them, and the cluster CA needs
 * to issue its own, so this covers exactly the types an X.509 v3 certificate with our
 * extensions uses. Every function returns the complete encoding (tag, length, contents), so
 * encodings compose by concatenation.
 */

/** Universal tags, plus the class/constructed bits used to build context tags. */
export const Tag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
  CONTEXT: 0x80,
  CONSTRUCTED: 0x20,
} as const;

/** The DER length octets: short form below 128, otherwise the minimal long form. */
export function encodeLength(length: number): Buffer {
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new RangeError(`DER length must be a non-negative integer, got ${length}`);
  }
  if (length < 0x80) return Buffer.from([length]);
  const octets: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) octets.unshift(rest % 256);
  return Buffer.from([0x80 | octets.length, ...octets]);
}

/** One element: a tag byte (all our tags fit in one), the length, the contents. */
export function tlv(tag: number, contents: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([tag]), encodeLength(contents.length), contents]);
}

export function sequence(...items: Uint8Array[]): Buffer {
  return tlv(Tag.SEQUENCE, Buffer.concat(items));
}

/** A SET OF: DER orders the elements by their encodings. */
export function set(...items: Uint8Array[]): Buffer {
  const sorted = items.map((i) => Buffer.from(i)).sort(Buffer.compare);
  return tlv(Tag.SET, Buffer.concat(sorted));
}

/**
 * A non-negative INTEGER from its big-endian magnitude. Redundant leading zeros are dropped
 * (DER wants the shortest form) and a 0x00 is put back when the top bit is set, since the
 * encoding is two's complement and the value would otherwise read as negative.
 */
export function integer(magnitude: Uint8Array): Buffer {
  let start = 0;
  while (start < magnitude.length && magnitude[start] === 0) start++;
  const digits = Buffer.from(magnitude.subarray(start));
  if (digits.length === 0) return tlv(Tag.INTEGER, Buffer.from([0]));
  if (digits[0] & 0x80) return tlv(Tag.INTEGER, Buffer.concat([Buffer.from([0]), digits]));
  return tlv(Tag.INTEGER, digits);
}

/** A small non-negative INTEGER, such as a version number or a path length. */
export function smallInteger(value: number): Buffer {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`expected a non-negative integer, got ${value}`);
  }
  const octets: number[] = [];
  for (let rest = value; rest > 0; rest = Math.floor(rest / 256)) octets.unshift(rest % 256);
  return integer(Buffer.from(octets));
}

/** An OBJECT IDENTIFIER from its dotted form: the first two arcs share one subidentifier. */
export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map((a) => {
    if (!/^(0|[1-9][0-9]*)$/.test(a)) throw new RangeError(`bad OID "${dotted}"`);
    return BigInt(a);
  });
  if (arcs.length < 2 || arcs[0] > 2n || (arcs[0] < 2n && arcs[1] > 39n)) {
    throw new RangeError(`bad OID "${dotted}"`);
  }
  const subids = [arcs[0] * 40n + arcs[1], ...arcs.slice(2)];
  const out: number[] = [];
  for (const subid of subids) {
    // Base 128, most significant group first, the high bit set on all but the last group.
    const groups = [Number(subid & 0x7fn)];
    for (let rest = subid >> 7n; rest > 0n; rest >>= 7n) {
      groups.unshift(Number(rest & 0x7fn) | 0x80);
    }
    out.push(...groups);
  }
  return tlv(Tag.OID, Buffer.from(out));
}

export function utf8String(text: string): Buffer {
  return tlv(Tag.UTF8_STRING, Buffer.from(text, 'utf8'));
}

/** PrintableString allows only a small ASCII subset; anything else is a programming error. */
export function printableString(text: string): Buffer {
  if (!/^[A-Za-z0-9 '()+,\-./:=?]*$/.test(text)) {
    throw new RangeError(`"${text}" is not a PrintableString`);
  }
  return tlv(Tag.PRINTABLE_STRING, Buffer.from(text, 'latin1'));
}

export function ia5String(text: string): Buffer {
  if (!/^[\x00-\x7f]*$/.test(text)) throw new RangeError(`"${text}" is not an IA5String`);
  return tlv(Tag.IA5_STRING, Buffer.from(text, 'latin1'));
}

/** A BIT STRING of whole bytes, or with `unusedBits` (0-7) padding bits at the end. */
export function bitString(bytes: Uint8Array, unusedBits = 0): Buffer {
  if (!Number.isInteger(unusedBits) || unusedBits < 0 || unusedBits > 7) {
    throw new RangeError(`unused bits must be 0-7, got ${unusedBits}`);
  }
  if (bytes.length === 0 && unusedBits !== 0) throw new RangeError('empty BIT STRING with padding');
  return tlv(Tag.BIT_STRING, Buffer.concat([Buffer.from([unusedBits]), bytes]));
}

/**
 * A named-bit BIT STRING (such as keyUsage) from the numbers of the bits that are set, bit 0
 * being the most significant bit of the first byte. DER drops trailing zero bits, so the
 * string ends at the last bit set.
 */
export function namedBits(bits: number[]): Buffer {
  if (bits.length === 0) return bitString(Buffer.alloc(0));
  const last = Math.max(...bits);
  const bytes = Buffer.alloc(Math.floor(last / 8) + 1);
  for (const bit of bits) bytes[Math.floor(bit / 8)] |= 0x80 >> (bit % 8);
  return bitString(bytes, 7 - (last % 8));
}

export function octetString(bytes: Uint8Array): Buffer {
  return tlv(Tag.OCTET_STRING, bytes);
}

/** DER encodes TRUE as 0xff, never another non-zero byte. */
export function boolean(value: boolean): Buffer {
  return tlv(Tag.BOOLEAN, Buffer.from([value ? 0xff : 0x00]));
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

function timeDigits(date: Date): string {
  return (
    pad(date.getUTCMonth() + 1, 2) +
    pad(date.getUTCDate(), 2) +
    pad(date.getUTCHours(), 2) +
    pad(date.getUTCMinutes(), 2) +
    pad(date.getUTCSeconds(), 2)
  );
}

function checkDate(date: Date): void {
  if (Number.isNaN(date.getTime())) throw new RangeError('invalid date');
}

/** UTCTime YYMMDDHHMMSSZ, for years 1950-2049 only (the two digits are read that way). */
export function utcTime(date: Date): Buffer {
  checkDate(date);
  const year = date.getUTCFullYear();
  if (year < 1950 || year > 2049) throw new RangeError(`UTCTime cannot hold the year ${year}`);
  return tlv(Tag.UTC_TIME, Buffer.from(`${pad(year % 100, 2)}${timeDigits(date)}Z`, 'latin1'));
}

/** GeneralizedTime YYYYMMDDHHMMSSZ: whole seconds, as RFC 5280 requires. */
export function generalizedTime(date: Date): Buffer {
  checkDate(date);
  const year = date.getUTCFullYear();
  if (year < 0 || year > 9999) throw new RangeError(`GeneralizedTime cannot hold the year ${year}`);
  return tlv(Tag.GENERALIZED_TIME, Buffer.from(`${pad(year, 4)}${timeDigits(date)}Z`, 'latin1'));
}

/**
 * A certificate validity time the way RFC 5280 section 4.1.2.5 says: UTCTime through 2049,
 * GeneralizedTime from 2050 on (and before 1950). Milliseconds are dropped.
 */
export function x509Time(date: Date): Buffer {
  checkDate(date);
  const year = date.getUTCFullYear();
  return year >= 1950 && year <= 2049 ? utcTime(date) : generalizedTime(date);
}

/** [n] EXPLICIT: the whole inner encoding wrapped in a constructed context tag. */
export function contextExplicit(n: number, inner: Uint8Array): Buffer {
  if (n < 0 || n > 30) throw new RangeError(`context tag ${n} does not fit in one byte`);
  return tlv(Tag.CONTEXT | Tag.CONSTRUCTED | n, inner);
}

/**
 * [n] IMPLICIT: the contents keep their bytes and the tag is replaced. `constructed` must be
 * true when the underlying type is (a SEQUENCE, say), false for strings and integers.
 */
export function contextImplicit(n: number, contents: Uint8Array, constructed = false): Buffer {
  if (n < 0 || n > 30) throw new RangeError(`context tag ${n} does not fit in one byte`);
  return tlv(Tag.CONTEXT | (constructed ? Tag.CONSTRUCTED : 0) | n, contents);
}

/** One element found by `readElement`: offsets are into the buffer it was read from. */
export interface Element {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the first content byte. */
  contentStart: number;
  /** Offset just past the last content byte. */
  end: number;
}

/**
 * Reads the element at `offset`. Only what DER produces is accepted: one-byte tags and
 * definite, minimal lengths; anything else throws, since a certificate we walk should be DER.
 */
export function readElement(buf: Uint8Array, offset = 0): Element {
  if (offset + 2 > buf.length) throw new RangeError('DER: truncated element');
  const tag = buf[offset];
  if ((tag & 0x1f) === 0x1f) throw new RangeError('DER: multi-byte tags are not supported');
  let length = buf[offset + 1];
  let contentStart = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4) throw new RangeError('DER: unsupported length form');
    if (contentStart + count > buf.length) throw new RangeError('DER: truncated length');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + buf[contentStart + i];
    if (length < 0x80 || buf[contentStart] === 0) throw new RangeError('DER: non-minimal length');
    contentStart += count;
  }
  const end = contentStart + length;
  if (end > buf.length) throw new RangeError('DER: element runs past the end of its buffer');
  return { tag, start: offset, contentStart, end };
}

/** The elements directly inside a constructed element. */
export function readChildren(buf: Uint8Array, parent: Element): Element[] {
  const children: Element[] = [];
  for (let at = parent.contentStart; at < parent.end;) {
    const child = readElement(buf, at);
    if (child.end > parent.end) throw new RangeError('DER: child runs past its parent');
    children.push(child);
    at = child.end;
  }
  return children;
}
