/**
 * Turns gossip messages into datagrams and back: a 32-byte HMAC-SHA256 tag
 * over the JSON body, then the body. A datagram that is too large, carries
 * a wrong tag, or does not have a message's shape is refused: whoever lacks
 * the cluster secret cannot declare members dead.
 */
import crypto from 'node:crypto';
import type { GossipMessage, MemberState, Update } from './types';

/** Largest datagram sent or accepted, in bytes. */
export const MAX_DATAGRAM_BYTES = 8192;

const TAG_BYTES = 32;
const STATES: ReadonlySet<MemberState> = new Set(['alive', 'suspect', 'dead']);
const TYPES = new Set(['ping', 'pingReq', 'ack', 'join', 'sync']);

/** Signs and serializes `message`; undefined when it would exceed the bound. */
export function encodeMessage(message: GossipMessage, secret: Buffer): Buffer | undefined {
  const body = Buffer.from(JSON.stringify(message));
  if (body.length + TAG_BYTES > MAX_DATAGRAM_BYTES) return undefined;
  return Buffer.concat([tagOf(body, secret), body]);
}

/** The message in `datagram`, or undefined when it is not authentic and well formed. */
export function decodeMessage(datagram: Buffer, secret: Buffer): GossipMessage | undefined {
  if (datagram.length <= TAG_BYTES || datagram.length > MAX_DATAGRAM_BYTES) return undefined;
  const tag = datagram.subarray(0, TAG_BYTES);
  const body = datagram.subarray(TAG_BYTES);
  if (!crypto.timingSafeEqual(tag, tagOf(body, secret))) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  return isMessage(parsed) ? parsed : undefined;
}

function tagOf(body: Buffer, secret: Buffer): Buffer {
  return crypto.createHmac('sha256', secret).update(body).digest();
}

function isMessage(value: unknown): value is GossipMessage {
  if (!isRecord(value) || !TYPES.has(value.t as string)) return false;
  if (typeof value.from !== 'string' || !Array.isArray(value.u) || !value.u.every(isUpdate)) {
    return false;
  }
  if (value.t === 'join' || value.t === 'sync') return true;
  if (!isSeq(value.seq)) return false;
  if (value.t === 'ack') return true;
  if (typeof value.target !== 'string') return false;
  return value.t === 'ping' || typeof value.targetAddress === 'string';
}

function isUpdate(value: unknown): value is Update {
  return (
    isRecord(value) &&
    typeof value.n === 'string' &&
    typeof value.a === 'string' &&
    isSeq(value.i) &&
    STATES.has(value.s as MemberState) &&
    (value.f === undefined || typeof value.f === 'string')
  );
}

function isSeq(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
