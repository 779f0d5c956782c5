/**
 * The SWIM core on a real network: one UDP socket on the node's listen
 * host and the same port number as its HTTP listener (UDP and TCP ports
 * are separate), signed datagrams, and a timer that drives the core with
 * the monotonic clock. Peers' clocks are never read.
 */
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type pino from 'pino';
import { GossipConfigError } from '../errors';
import { decodeMessage, encodeMessage } from './codec';
import { SwimNode, type SwimConfig } from './swim';
import type { MemberInfo, MembershipEvent, Output } from './types';

/** Options of a {@link Membership}. */
export interface MembershipOptions {
  /** This node's name, unique in the cluster. */
  name: string;
  /** Address to bind and to advertise (a specific one, not 0.0.0.0). */
  host: string;
  /** UDP port; 0 picks a free one (tests). */
  port: number;
  /** The cluster secret; datagrams are signed and checked with it. */
  secret: string | Buffer;
  logger?: pino.Logger;
  /** Protocol tuning (probe interval, suspicion timeouts, ...). */
  swim?: Partial<Omit<SwimConfig, 'name' | 'address'>>;
  /** How often the core's timers are advanced. */
  tickMs?: number;
}

/** Events a {@link Membership} emits; each carries the member's name and address. */
export interface MembershipEvents {
  alive: [MembershipEvent];
  suspect: [MembershipEvent];
  dead: [MembershipEvent];
}

/** Gossip membership and failure detection of one node over UDP. */
export class Membership extends EventEmitter<MembershipEvents> {
  private readonly opts: MembershipOptions;
  private readonly secret: Buffer;
  private socket?: dgram.Socket;
  private core?: SwimNode;
  private timer?: NodeJS.Timeout;
  /** Datagrams refused: bad signature, too large, or malformed. */
  dropped = 0;

  constructor(opts: MembershipOptions) {
    super();
    if (!opts.secret || opts.secret.length === 0) {
      throw new GossipConfigError('gossip needs the cluster secret to sign its messages');
    }
    if (!opts.host || opts.host === '0.0.0.0' || opts.host === '::') {
      const got = `got "${opts.host}"`;
      throw new GossipConfigError(`gossip needs a specific address to advertise, ${got}`);
    }
    this.opts = opts;
    this.secret = gossipKey(opts.secret);
  }

  /** Binds the socket and starts probing. */
  async start(): Promise<void> {
    const { host, port } = this.opts;
    const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.on('error', (err) => this.opts.logger?.warn({ err }, 'gossip socket error'));
    socket.on('message', (data, rinfo) => {
      this.onDatagram(data, joinHostPort(rinfo.address, rinfo.port));
    });
    this.socket = socket;
    const address = joinHostPort(host, socket.address().port);
    this.core = new SwimNode({ ...this.opts.swim, name: this.opts.name, address });
    // Ticking from setImmediate lets datagrams that arrived during a stall
    // of this process (GC, a slow disk) be read before any probe times out.
    const tick = () => setImmediate(() => this.run(this.core?.tick(performance.now())));
    this.timer = setInterval(tick, this.opts.tickMs ?? 50);
    this.timer.unref();
  }

  /** Contacts the seeds ("host:port"), and again whenever no member is alive. */
  join(seeds: string[]): void {
    const addresses = seeds.map((seed) => {
      const { host, port } = splitHostPort(seed);
      return joinHostPort(host, port);
    });
    this.run(this.requireCore().join(addresses));
  }

  /** Every known member, this node first. */
  members(): MemberInfo[] {
    return this.core?.members() ?? [];
  }

  /** "host:port" this node gossips on. */
  address(): string {
    return this.requireCore().self().address;
  }

  /** Stops probing and closes the socket, silently: peers will find this node dead. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const socket = this.socket;
    this.socket = undefined;
    this.core = undefined;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  private onDatagram(data: Buffer, from: string): void {
    const message = decodeMessage(data, this.secret);
    if (!message) {
      this.dropped += 1;
      this.opts.logger?.debug({ from, bytes: data.length }, 'dropped gossip datagram');
      return;
    }
    this.run(this.core?.receive(from, message, performance.now()));
  }

  private run(output: Output | undefined): void {
    if (!output || !this.socket) return;
    for (const { to, message } of output.messages) {
      const datagram = encodeMessage(message, this.secret);
      if (!datagram) {
        const fields = { to, type: message.t };
        this.opts.logger?.warn(fields, 'gossip message too large; not sent');
        continue;
      }
      const { host, port } = splitHostPort(to);
      this.socket.send(datagram, port, host, (err) => {
        if (err) this.opts.logger?.debug({ err, to }, 'gossip send failed');
      });
    }
    for (const event of output.events) {
      const fields = { nodeId: event.name, address: event.address, state: event.type };
      this.opts.logger?.info(fields, 'member state changed');
      this.emit(event.type, event);
    }
  }

  private requireCore(): SwimNode {
    if (!this.core) throw new GossipConfigError('membership is not started');
    return this.core;
  }
}

/**
 * The HMAC key, derived from the cluster secret with a label of its own so
 * that a gossip tag is never valid anywhere else the secret is used.
 */
export function gossipKey(secret: string | Buffer): Buffer {
  return crypto.createHash('sha256').update('flotilla gossip v1\0').update(secret).digest();
}

/** "host:port", with brackets around an IPv6 host. */
export function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Splits "host:port" or "[v6]:port". */
export function splitHostPort(text: string): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(text);
  if (!m) throw new GossipConfigError(`expected HOST:PORT, got "${text}"`);
  return { host: m[1], port: Number(m[2]) };
}
