/**
 * What crosses the wire and the log in a cluster: Raft messages as JSON
 * (binary fields in base64), the records carried by `normal` log entries,
 * and errors sent back to a forwarding server with their stable code.
 */
import {
  ConflictError,
  FlotillaError,
  InvalidError,
  JoinRefusedError,
  NoQuorumError,
  PeerUnreachableError,
} from '../errors';
import type { TokenRecord } from '../auth/tokens';
import type { Entry, Message, Snapshot } from '../raft';
import type { Command } from '../store/commands';
import type { ClusterPki } from './certificates';

/** Cluster-wide settings, written once by the server that founds the cluster. */
export interface ClusterSettings {
  clusterId: string;
  /** How many voters the cluster grows to before joiners become learners. */
  maxVoters: number;
}

/**
 * What a `normal` entry carries: a desired-state command, or one of the
 * cluster's own records (a member's address, the founding settings, the
 * cluster's CA and gossip key, a token made or revoked).
 */
export type LogRecord =
  | { command: Command }
  | { peer: { id: string; address: string } }
  | { cluster: ClusterSettings }
  | { pki: ClusterPki }
  | { token: TokenRecord }
  | { revokeToken: { id: string } };

/** A batch of Raft messages from one server, with the address it listens on. */
export interface MessageBatch {
  from: string;
  address: string;
  messages: unknown[];
}

/** An error as a forwarding server receives it. */
export interface WireError {
  code: string;
  message: string;
  status: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Serialises a log record into an entry's data. */
export function encodeRecord(record: LogRecord): Uint8Array {
  return encoder.encode(JSON.stringify(record));
}

/** Reads a log record back from an entry's data. */
export function decodeRecord(data: Uint8Array): LogRecord {
  return JSON.parse(decoder.decode(data)) as LogRecord;
}

/** A message with its binary fields turned into base64 strings. */
export function messageToJson(m: Message): unknown {
  if (m.type === 'append') return { ...m, entries: m.entries.map(entryToJson) };
  if (m.type === 'snapshot') return { ...m, snapshot: snapshotToJson(m.snapshot) };
  return m;
}

/** The inverse of messageToJson. */
export function messageFromJson(value: unknown): Message {
  const m = value as Record<string, unknown>;
  if (m.type === 'append') {
    return { ...m, entries: (m.entries as unknown[]).map(entryFromJson) } as Message;
  }
  if (m.type === 'snapshot') return { ...m, snapshot: snapshotFromJson(m.snapshot) } as Message;
  return m as unknown as Message;
}

function entryToJson(e: Entry) {
  return { ...e, data: Buffer.from(e.data).toString('base64') };
}

function entryFromJson(value: unknown): Entry {
  const e = value as Entry & { data: string };
  return { ...e, data: new Uint8Array(Buffer.from(e.data, 'base64')) };
}

function snapshotToJson(s: Snapshot) {
  return { ...s, data: Buffer.from(s.data).toString('base64') };
}

function snapshotFromJson(value: unknown): Snapshot {
  const s = value as Snapshot & { data: string };
  return { ...s, data: new Uint8Array(Buffer.from(s.data, 'base64')) };
}

/** An error in the shape sent to another server. */
export function errorToWire(err: unknown): WireError {
  if (err instanceof FlotillaError) {
    return { code: err.code, message: err.message, status: err.status };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { code: 'InternalError', message: `internal error: ${message}`, status: 500 };
}

/**
 * Rebuilds an error received from another server with the same code, using
 * the specific class where callers test for one (conflicts are retried).
 */
export function errorFromWire(e: WireError): FlotillaError {
  switch (e.code) {
    case 'Conflict':
      return new ConflictError(e.message);
    case 'NoQuorum':
      return new NoQuorumError(e.message);
    case 'Invalid':
      return new InvalidError(e.message);
    case 'JoinRefused':
      return new JoinRefusedError(e.message);
    case 'PeerUnreachable':
      return new PeerUnreachableError(e.message);
    default:
      return new FlotillaError(e.code, e.message, e.status);
  }
}
