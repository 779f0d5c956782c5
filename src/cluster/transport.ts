/**
 * How cluster members reach each other. The Raft shell only sends messages
 * and makes calls through this interface; the HTTP transport is the real
 * one and the memory network runs whole clusters inside one test process.
 */
import type { Message } from '../raft';

/** The calls a server makes to another (usually the leader). */
export type CallPath = 'propose' | 'join' | 'drain' | 'certify';

/** What a server offers to the transport: incoming messages and calls. */
export interface ClusterEndpoint {
  /** Feeds Raft messages received from `from`, who listens on `address`. */
  receive(from: string, address: string, messages: Message[]): void;
  /** Serves a call; rejects with a FlotillaError that travels back by code. */
  serve(path: CallPath, body: unknown): Promise<unknown>;
}

/** Sends Raft messages (losing some is fine) and makes calls to members. */
export interface ClusterTransport {
  /** Queues messages for their recipients; never blocks and never throws. */
  send(messages: Message[]): void;
  /** Calls `path` on the member `to`; rejects with the callee's error or a transport error. */
  call(to: string, path: CallPath, body: unknown, timeoutMs: number): Promise<unknown>;
  /** Calls `path` on a server known only by address (a join's first contact). */
  callAddress(address: string, path: CallPath, body: unknown, timeoutMs: number): Promise<unknown>;
  /**
   * Sends a joining server's certify call to `address`, trusting the
   * server only once it shows the CA whose certificate hashes to `caHash`.
   */
  certify(address: string, caHash: string, body: unknown, timeoutMs: number): Promise<unknown>;
  /** Records where the member `id` listens. */
  setPeer(id: string, address: string): void;
  /** The address of `id`, when known. */
  peerAddress(id: string): string | undefined;
  /** Releases connections. */
  close(): Promise<void>;
}
