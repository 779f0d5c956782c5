import { BlockList, isIP } from 'node:net';
import { InvalidError } from '../errors';

// RFC 9110 7.6.1: meaningful for one connection only, never forwarded.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

// Replaced by the balancer's own values unless a trusted proxy sent them.
const FORWARDED = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host']);

/** Response header values as node and undici hand them over. */
export type HeaderRecord = Record<string, string | string[] | undefined>;

/** What the balancer knows about the client side of one request. */
export interface ClientSide {
  /** The TCP peer address, normalised. */
  peer: string;
  /** Whether the peer is a trusted proxy whose X-Forwarded-* are kept. */
  trusted: boolean;
  /** The protocol the client spoke to the balancer. */
  proto: 'http' | 'https';
}

/** Strips the IPv4-mapped prefix so "::ffff:10.0.0.1" and "10.0.0.1" match. */
export function normalizeAddress(address: string | undefined): string {
  if (!address) return '';
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4
    ? address.slice(7)
    : address;
}

/** The client side of a connection whose TCP peer is `remoteAddress`. */
export function describeClient(
  trusted: TrustedProxies,
  remoteAddress: string | undefined,
): ClientSide {
  const peer = normalizeAddress(remoteAddress);
  return { peer, trusted: trusted.has(peer), proto: 'http' };
}

/** A set of addresses and CIDR ranges whose X-Forwarded-For is believed. */
export class TrustedProxies {
  private readonly list = new BlockList();
  private readonly empty: boolean;

  /** Throws InvalidError for an entry that is not an address or CIDR. */
  constructor(entries: string[] = []) {
    entries.forEach((entry, i) => this.add(entry, `trustedProxies[${i}]`));
    this.empty = entries.length === 0;
  }

  /** True if `address` (a TCP peer) is one of the trusted proxies. */
  has(address: string): boolean {
    if (this.empty) return false;
    const family = isIP(address);
    if (family === 0) return false;
    return this.list.check(address, family === 4 ? 'ipv4' : 'ipv6');
  }

  private add(entry: string, field: string): void {
    const [address, bits, extra] = entry.trim().split('/');
    const family = isIP(address);
    const prefix = bits === undefined ? undefined : Number(bits);
    const max = family === 4 ? 32 : 128;
    const badPrefix =
      prefix !== undefined && (!Number.isInteger(prefix) || prefix < 0 || prefix > max);
    if (family === 0 || badPrefix || extra !== undefined) {
      throw new InvalidError(`expected an IP address or CIDR, got "${entry}"`, field);
    }
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (prefix === undefined) this.list.addAddress(address, type);
    else this.list.addSubnet(address, prefix, type);
  }
}

/** Header names listed in Connection, which are hop-by-hop too. */
function connectionTokens(value: string | undefined): Set<string> {
  const tokens = new Set<string>();
  for (const token of (value ?? '').split(',')) {
    const name = token.trim().toLowerCase();
    if (name) tokens.add(name);
  }
  return tokens;
}

function isHopByHop(name: string, named: Set<string>): boolean {
  return HOP_BY_HOP.has(name) || named.has(name);
}

/**
 * The headers to send to a backend, as a flat [name, value, ...] list:
 * hop-by-hop headers and Expect dropped (the balancer answers 100-continue
 * itself), X-Forwarded-For/-Proto/-Host set, or extended when the client is
 * a trusted proxy. `upgrade` keeps the Upgrade handshake for tunnels.
 */
export function buildRequestHeaders(
  rawHeaders: string[],
  client: ClientSide,
  upgrade?: string,
): string[] {
  const named = connectionTokens(findRaw(rawHeaders, 'connection'));
  const out: string[] = [];
  const prior = new Map<string, string[]>();
  let host: string | undefined;

  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i].toLowerCase();
    const value = rawHeaders[i + 1];
    if (name === 'host') host ??= value;
    if (FORWARDED.has(name)) prior.set(name, [...(prior.get(name) ?? []), value]);
    else if (!isHopByHop(name, named) && name !== 'expect') out.push(rawHeaders[i], value);
  }

  out.push(...forwardedHeaders(client, prior, host));
  if (upgrade !== undefined) out.push('connection', 'upgrade', 'upgrade', upgrade);
  return out;
}

function forwardedHeaders(
  client: ClientSide,
  prior: Map<string, string[]>,
  host: string | undefined,
): string[] {
  const kept = (name: string): string | undefined =>
    client.trusted ? prior.get(name)?.join(', ') : undefined;

  const chain = kept('x-forwarded-for');
  const out = ['x-forwarded-for', chain ? `${chain}, ${client.peer}` : client.peer];
  out.push('x-forwarded-proto', kept('x-forwarded-proto') ?? client.proto);
  const forwardedHost = kept('x-forwarded-host') ?? host;
  if (forwardedHost !== undefined) out.push('x-forwarded-host', forwardedHost);
  return out;
}

/** A backend's response headers without hop-by-hop ones. */
export function buildResponseHeaders(headers: HeaderRecord): HeaderRecord {
  const connection = headers['connection'];
  const named = connectionTokens(Array.isArray(connection) ? connection.join(',') : connection);
  const out: HeaderRecord = {};
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (value !== undefined && !isHopByHop(lower, named)) out[lower] = value;
  }
  return out;
}

function findRaw(rawHeaders: string[], name: string): string | undefined {
  const values: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i].toLowerCase() === name) values.push(rawHeaders[i + 1]);
  }
  return values.length > 0 ? values.join(',') : undefined;
}
