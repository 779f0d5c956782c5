import net from 'node:net';
import { normalizeAddress } from './forwarding-headers';
import { limitConnect } from './socket-pipes';
import type { Endpoint, ProxyProtocolVersion } from './types';

/**
 * The Service annotation that turns on the PROXY protocol towards its
 * endpoints: "v1" or "v2" for every port, or per port name, as in
 * "http=v1,db=v2". Ports it does not name get no PROXY header.
 */
export const PROXY_PROTOCOL_ANNOTATION = 'flotilla.io/proxy-protocol';

// The fixed first 12 bytes of every v2 header.
const V2_SIGNATURE = Buffer.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
]);
// Version 2, command PROXY.
const V2_PROXY_COMMAND = 0x21;
// Address family and transport: TCP over IPv4, TCP over IPv6.
const V2_TCP4 = 0x11;
const V2_TCP6 = 0x21;

/** The two ends of the client's connection to the balancer. */
export interface ConnectionEnds {
  sourceAddress?: string;
  sourcePort?: number;
  destinationAddress?: string;
  destinationPort?: number;
}

/**
 * The PROXY protocol version for `portName` according to the annotation
 * value, or undefined when the port gets none or the value is not one the
 * balancer knows.
 */
export function proxyProtocolFor(
  annotation: string | undefined,
  portName: string,
): ProxyProtocolVersion | undefined {
  if (annotation === undefined) return undefined;
  const value = annotation.trim();
  if (isVersion(value)) return value;
  for (const entry of value.split(',')) {
    const [name, version] = entry.split('=').map((s) => s.trim());
    if (name === portName && isVersion(version)) return version;
  }
  return undefined;
}

function isVersion(value: string | undefined): value is ProxyProtocolVersion {
  return value === 'v1' || value === 'v2';
}

/** The header naming the client's connection, for a backend to read first. */
export function proxyHeader(version: ProxyProtocolVersion, ends: ConnectionEnds): Buffer {
  const source = normalizeAddress(ends.sourceAddress);
  const destination = normalizeAddress(ends.destinationAddress);
  const family = net.isIP(source);
  const known = family !== 0 && family === net.isIP(destination);
  if (version === 'v1') {
    if (!known) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
    const proto = family === 4 ? 'TCP4' : 'TCP6';
    const ports = `${ends.sourcePort} ${ends.destinationPort}`;
    return Buffer.from(`PROXY ${proto} ${source} ${destination} ${ports}\r\n`, 'latin1');
  }
  return proxyHeaderV2(known ? family : 0, source, destination, ends);
}

function proxyHeaderV2(
  family: number,
  source: string,
  destination: string,
  ends: ConnectionEnds,
): Buffer {
  if (family === 0) {
    // LOCAL command, no addresses: the backend uses the real peer.
    return Buffer.concat([V2_SIGNATURE, Buffer.from([0x20, 0x00, 0x00, 0x00])]);
  }
  const addresses = Buffer.concat([
    addressBytes(source, family),
    addressBytes(destination, family),
    portBytes(ends.sourcePort ?? 0),
    portBytes(ends.destinationPort ?? 0),
  ]);
  const head = Buffer.from([V2_PROXY_COMMAND, family === 4 ? V2_TCP4 : V2_TCP6, 0, 0]);
  head.writeUInt16BE(addresses.length, 2);
  return Buffer.concat([V2_SIGNATURE, head, addresses]);
}

function portBytes(port: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(port);
  return b;
}

function addressBytes(address: string, family: number): Buffer {
  if (family === 4) return Buffer.from(address.split('.').map(Number));
  return ipv6Bytes(address);
}

/** The 16 bytes of an IPv6 address, expanding "::" and a dotted IPv4 tail. */
function ipv6Bytes(address: string): Buffer {
  const out = Buffer.alloc(16);
  let text = address.split('%')[0];
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (tail) {
    const [a, b, c, d] = tail[1].split('.').map(Number);
    const hex = (hi: number, lo: number): string => ((hi << 8) | lo).toString(16);
    text = text.slice(0, -tail[1].length) + `${hex(a, b)}:${hex(c, d)}`;
  }
  const [left, right] = text.split('::');
  const head = left ? left.split(':') : [];
  const rest = right !== undefined && right !== '' ? right.split(':') : [];
  const groups = [...head, ...Array(8 - head.length - rest.length).fill('0'), ...rest];
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** The ends of `client` as the PROXY header describes them. */
export function connectionEnds(client: net.Socket): ConnectionEnds {
  return {
    sourceAddress: client.remoteAddress,
    sourcePort: client.remotePort,
    destinationAddress: client.localAddress,
    destinationPort: client.localPort,
  };
}

/**
 * Opens a connection to `endpoint` whose first bytes are `header`; they are
 * queued at once, so anything written later follows them.
 */
export function connectWithHeader(
  endpoint: Endpoint,
  header: Buffer,
  connectMs: number,
): net.Socket {
  const socket = net.connect({ host: endpoint.host, port: endpoint.port, allowHalfOpen: true });
  limitConnect(socket, connectMs, (err) => socket.destroy(err));
  socket.write(header);
  return socket;
}
