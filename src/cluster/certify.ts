/**
 * How a new server gets its certificate before it joins: it pins the
 * cluster's CA by the hash its join token carries, then sends its token and
 * a signing request to a member over TLS verified against that CA. Nothing
 * secret is sent to a server before it has shown a certificate chain whose
 * CA matches the pin.
 */
import crypto from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { Agent, request } from 'undici';
import { JoinRefusedError, PeerUnreachableError } from '../errors';
import { errorFromWire, type WireError } from './wire';

/** What a member answers to a certify call. */
export interface CertifyAnswer {
  clusterId: string;
  cert: string;
  caCert: string;
  gossipKey: string;
}

/**
 * Connects to `address` (HOST:PORT) without trusting it yet, and returns
 * the PEM of the certificate in its presented chain whose DER hashes to
 * `caHash`; refuses when there is none.
 */
export function fetchPinnedCa(
  address: string,
  caHash: string,
  opts: { timeoutMs: number; localAddress?: string },
): Promise<string> {
  const { host, port } = splitAddress(address);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host,
      port,
      rejectUnauthorized: false,
      ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
      // SNI carries host names only, never IP literals.
      ...(net.isIP(host) === 0 ? { servername: host } : {}),
    });
    socket.setTimeout(opts.timeoutMs, () =>
      socket.destroy(new Error(`no TLS answer within ${opts.timeoutMs} ms`)),
    );
    socket.once('secureConnect', () => {
      const pem = findInChain(socket.getPeerCertificate(true), caHash);
      socket.end();
      if (pem) return resolve(pem);
      reject(
        new JoinRefusedError(
          `the server at ${address} does not present the CA that the token pins: ` +
            'wrong cluster, or not a Flotilla server',
        ),
      );
    });
    socket.once('error', (err) =>
      reject(new PeerUnreachableError(`cannot reach ${address}: ${err.message}`, { cause: err })),
    );
  });
}

/** Sends `body` to `address`'s certify endpoint, trusting only `caPem`. */
export async function requestCertificate(
  address: string,
  caPem: string,
  body: unknown,
  opts: { timeoutMs: number; localAddress?: string },
): Promise<CertifyAnswer> {
  const dispatcher = new Agent({
    connect: { ca: caPem, rejectUnauthorized: true },
    ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
  });
  try {
    let res;
    try {
      res = await request(`https://${address}/cluster/v1/certify`, {
        method: 'POST',
        dispatcher,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        headersTimeout: opts.timeoutMs,
        bodyTimeout: opts.timeoutMs,
      });
    } catch (err) {
      const message = (err as Error).message;
      throw new PeerUnreachableError(`cannot reach ${address}: ${message}`, { cause: err });
    }
    const text = await res.body.text();
    const parsed = text ? (JSON.parse(text) as unknown) : undefined;
    if (res.statusCode === 200) return parsed as CertifyAnswer;
    const wire = (parsed as { error?: WireError } | undefined)?.error;
    if (wire) throw errorFromWire(wire);
    throw new PeerUnreachableError(`${address} answered ${res.statusCode} to certify`);
  } finally {
    void dispatcher.close();
  }
}

interface ChainLink {
  raw: Buffer;
  issuerCertificate?: ChainLink;
}

function findInChain(leaf: tls.DetailedPeerCertificate, caHash: string): string | undefined {
  const seen = new Set<ChainLink>();
  for (let c: ChainLink | undefined = leaf; c && !seen.has(c); c = c.issuerCertificate) {
    seen.add(c);
    if (!c.raw) continue;
    if (crypto.createHash('sha256').update(c.raw).digest('hex') === caHash) {
      return new crypto.X509Certificate(c.raw).toString();
    }
  }
  return undefined;
}

function splitAddress(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  return {
    host: address.slice(0, at).replace(/^\[|\]$/g, ''),
    port: Number(address.slice(at + 1)),
  };
}
