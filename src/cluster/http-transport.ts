/**
 * The cluster's network transport: JSON over HTTPS with mutual TLS (both
 * sides show certificates from the cluster CA) and one keep-alive undici
 * Pool per member. Raft messages to a member are batched: while one batch is
 * in flight the next ones queue, and a member that does not answer loses
 * them (Raft resends what matters). New connections use the TLS material
 * current at the time, so a renewed certificate takes effect without a
 * restart; established connections keep going.
 */
import net from 'node:net';
import type pino from 'pino';
import { Pool, buildConnector } from 'undici';
import type { TlsMaterial } from './certificates';
import { fetchPinnedCa, requestCertificate } from './certify';
import { FlotillaError, PeerUnreachableError } from '../errors';
import type { Message } from '../raft';
import type { CallPath, ClusterTransport } from './transport';
import { errorFromWire, messageToJson, type MessageBatch, type WireError } from './wire';

/** Where the cluster's endpoints live on a node's listener. */
export const CLUSTER_PREFIX = '/cluster/v1/';
/** Most messages queued for one member; older ones are dropped beyond it. */
const MAX_QUEUED = 2048;
const MESSAGE_TIMEOUT_MS = 5000;
/** Concurrent forwarded calls to one member. */
const MAX_CALLS = 64;

interface Peer {
  address: string;
  /** Raft messages only: one batch in flight at a time. */
  pool: Pool;
  /**
   * Forwarded proposals and joins, which may wait seconds for a commit; on
   * the Raft pool they would hold up the heartbeats that commit needs.
   */
  calls: Pool;
  queue: Message[];
  inFlight: boolean;
  /** Set while the member fails, so that the failure is logged once. */
  failing: boolean;
}

/** What an HttpTransport needs. */
export interface HttpTransportOptions {
  selfId: string;
  /** HOST:PORT this server listens on, sent with every batch. */
  selfAddress: string;
  logger: pino.Logger;
  /** This server's TLS material as it is now (it changes when renewed). */
  tls: () => TlsMaterial;
}

/** ClusterTransport over HTTP. */
export class HttpTransport implements ClusterTransport {
  private readonly opts: HttpTransportOptions;
  private readonly peers = new Map<string, Peer>();
  private connector?: { material: TlsMaterial; connect: buildConnector.connector };

  constructor(opts: HttpTransportOptions) {
    this.opts = opts;
  }

  async certify(
    address: string,
    caHash: string,
    body: unknown,
    timeoutMs: number,
  ): Promise<unknown> {
    const options = { timeoutMs, localAddress: this.localAddress() };
    const caPem = await fetchPinnedCa(address, caHash, options);
    return requestCertificate(address, caPem, body, options);
  }

  send(messages: Message[]): void {
    for (const m of messages) {
      const peer = this.peers.get(m.to);
      if (!peer) continue;
      peer.queue.push(m);
      if (peer.queue.length > MAX_QUEUED) peer.queue.shift();
    }
    for (const [id, peer] of this.peers) {
      if (!peer.inFlight && peer.queue.length > 0) void this.flush(id, peer);
    }
  }

  async call(to: string, path: CallPath, body: unknown, timeoutMs: number): Promise<unknown> {
    const peer = this.peers.get(to);
    if (!peer) throw new PeerUnreachableError(`no address known for member ${to}`);
    return this.post(peer.calls, peer.address, path, body, timeoutMs);
  }

  async callAddress(
    address: string,
    path: CallPath,
    body: unknown,
    timeoutMs: number,
  ): Promise<unknown> {
    const pool = this.newPool(address, 1);
    try {
      return await this.post(pool, address, path, body, timeoutMs);
    } finally {
      void pool.close();
    }
  }

  setPeer(id: string, address: string): void {
    if (id === this.opts.selfId) return;
    const known = this.peers.get(id);
    if (known?.address === address) return;
    if (known) void Promise.allSettled([known.pool.close(), known.calls.close()]);
    this.peers.set(id, {
      address,
      pool: this.newPool(address, 1),
      calls: this.newPool(address, MAX_CALLS),
      queue: [],
      inFlight: false,
      failing: false,
    });
  }

  peerAddress(id: string): string | undefined {
    return this.peers.get(id)?.address;
  }

  async close(): Promise<void> {
    const pools = [...this.peers.values()].flatMap((p) => [p.pool.destroy(), p.calls.destroy()]);
    this.peers.clear();
    await Promise.allSettled(pools);
  }

  /**
   * The listen host when it is a specific IP. Without it, connections to
   * another loopback or secondary address leave from the route's default
   * source (127.0.0.1 on lo), so a firewall rule naming this server's
   * address would not see its cluster traffic.
   */
  private localAddress(): string | undefined {
    const at = this.opts.selfAddress.lastIndexOf(':');
    const host = this.opts.selfAddress.slice(0, at).replace(/^\[|\]$/g, '');
    const unspecified = host === '0.0.0.0' || host === '::';
    return net.isIP(host) !== 0 && !unspecified ? host : undefined;
  }

  private async flush(id: string, peer: Peer): Promise<void> {
    const messages = peer.queue.splice(0);
    peer.inFlight = true;
    const batch: MessageBatch = {
      from: this.opts.selfId,
      address: this.opts.selfAddress,
      messages: messages.map(messageToJson),
    };
    try {
      const res = await peer.pool.request({
        method: 'POST',
        path: `${CLUSTER_PREFIX}raft`,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(batch),
        headersTimeout: MESSAGE_TIMEOUT_MS,
        bodyTimeout: MESSAGE_TIMEOUT_MS,
      });
      await res.body.dump();
      if (peer.failing) this.opts.logger.info({ nodeId: id }, 'cluster member reachable again');
      peer.failing = false;
    } catch (err) {
      if (!peer.failing) this.opts.logger.warn({ nodeId: id, err }, 'cluster member unreachable');
      peer.failing = true;
    } finally {
      peer.inFlight = false;
    }
    // Only what queued during a successful send goes at once; a failing
    // member gets the next batch with the next heartbeat.
    if (!peer.failing && peer.queue.length > 0 && this.peers.get(id) === peer) {
      void this.flush(id, peer);
    }
  }

  private async post(
    pool: Pool,
    address: string,
    path: CallPath,
    body: unknown,
    timeoutMs: number,
  ): Promise<unknown> {
    let res;
    try {
      res = await pool.request({
        method: 'POST',
        path: `${CLUSTER_PREFIX}${path}`,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
    } catch (err) {
      throw new PeerUnreachableError(`cannot reach ${address}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const text = await res.body.text();
    const parsed = text ? (JSON.parse(text) as unknown) : undefined;
    if (res.statusCode >= 200 && res.statusCode < 300) return parsed;
    const wire = (parsed as { error?: WireError } | undefined)?.error;
    if (wire) throw errorFromWire(wire);
    throw new FlotillaError('ClusterCallFailed', `${address} answered ${res.statusCode}`, 502);
  }

  private newPool(address: string, connections: number): Pool {
    // undici hands the local address to the connector with each connect.
    const localAddress = this.localAddress();
    return new Pool(`https://${address}`, {
      connections,
      keepAliveTimeout: 30_000,
      connect: (options, callback) => this.currentConnector()(options, callback),
      ...(localAddress ? { localAddress } : {}),
    });
  }

  /** A connector with this server's current certificate, rebuilt after a renewal. */
  private currentConnector(): buildConnector.connector {
    const material = this.opts.tls();
    if (this.connector?.material !== material) {
      const connect = buildConnector({
        timeout: 2000,
        ca: material.ca,
        cert: material.cert,
        key: material.key,
        rejectUnauthorized: true,
      });
      this.connector = { material, connect };
    }
    return this.connector.connect;
  }
}
