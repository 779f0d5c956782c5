/**
 * A real mutual-TLS handshake over 127.0.0.1 with certificates from the cluster CA: both
 * sides require and check the other's certificate, the client checks the server's SAN IP
 * with Node's default hostname check, and certificates from another CA or out of date are
 * refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import {
  createCa,
  createSigningRequest,
  generateKeyPair,
  signCertificate,
  type CaPem,
} from '../../src/pki';

const DAY = 24 * 3600_000;

interface Identity {
  key: string;
  cert: string;
}

function issue(ca: CaPem, name: string, opts: { now?: Date; lifetimeMs?: number } = {}): Identity {
  const keys = generateKeyPair();
  const req = createSigningRequest(keys.keyPem, {
    name,
    ips: ['127.0.0.1'],
    dnsNames: [name],
  });
  const cert = signCertificate(ca, req, { lifetimeMs: opts.lifetimeMs ?? DAY, now: opts.now });
  return { key: keys.keyPem, cert };
}

interface Outcome {
  /**
   * What the server saw: the client authorised (or, when the server was told not to reject,
   * why not), or the error that ended the connection before the server's callback.
   */
  server: { authorized: boolean; peerCn?: string; why?: string } | { error: string };
  /** What the client saw. */
  client: { authorized: boolean; peerCn?: string; echoed?: string } | { error: string };
}

/**
 * One connection from `client` to a server with `server`'s certificate; both trust
 * `trustedCa` only. Resolves once both ends have reached a verdict.
 */
async function handshake(
  trustedCa: CaPem,
  server: Identity,
  client: Identity,
  serverRejects = true,
): Promise<Outcome> {
  let serverVerdict!: (v: Outcome['server']) => void;
  const serverSide = new Promise<Outcome['server']>((resolve) => (serverVerdict = resolve));
  const srv = tls.createServer(
    {
      key: server.key,
      cert: server.cert,
      ca: [trustedCa.certPem],
      requestCert: true,
      rejectUnauthorized: serverRejects,
    },
    (socket) => {
      const peer = socket.getPeerCertificate();
      serverVerdict({
        authorized: socket.authorized,
        peerCn: peer.subject ? String(peer.subject.CN) : undefined,
        ...(socket.authorizationError ? { why: String(socket.authorizationError) } : {}),
      });
      socket.end('hello');
    },
  );
  srv.on('tlsClientError', (err: NodeJS.ErrnoException) => {
    serverVerdict({ error: err.code ?? err.message });
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as AddressInfo;

  const clientSide = new Promise<Outcome['client']>((resolve) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      key: client.key,
      cert: client.cert,
      ca: [trustedCa.certPem],
      rejectUnauthorized: true,
      // No servername and no checkServerIdentity: Node's default check matches the IP SAN.
    });
    let echoed = '';
    let verdict: { authorized: boolean; peerCn?: string } | undefined;
    socket.on('secureConnect', () => {
      verdict = {
        authorized: socket.authorized,
        peerCn: String(socket.getPeerCertificate().subject?.CN),
      };
    });
    socket.on('data', (d: Buffer) => (echoed += d.toString()));
    // With TLS 1.3 the client finishes its half of the handshake before the server has
    // judged the client's certificate, so a refusal arrives as an error or an early close.
    socket.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    socket.on('close', () => {
      if (verdict && echoed === 'hello') resolve({ ...verdict, echoed });
      else resolve({ error: 'closed before the server answered' });
    });
  });
  try {
    const [s, c] = await Promise.all([
      Promise.race([
        serverSide,
        // A client that gives up first never reaches the server's callbacks.
        clientSide.then(
          () => new Promise<Outcome['server']>((r) => setTimeout(() => r({ error: 'none' }), 500)),
        ),
      ]),
      clientSide,
    ]);
    return { server: s, client: c };
  } finally {
    await new Promise<void>((resolve) => srv.close(() => resolve()));
  }
}

test('mutual TLS between two nodes of the same CA: both sides authorised', async () => {
  const ca = createCa({ commonName: 'flotilla cluster CA' });
  const outcome = await handshake(ca, issue(ca, 'server1'), issue(ca, 'client1'));
  assert.deepEqual(outcome.server, { authorized: true, peerCn: 'client1' });
  assert.deepEqual(outcome.client, { authorized: true, peerCn: 'server1', echoed: 'hello' });
});

test('a client certificate from a second CA is refused by the server', async () => {
  const ca = createCa({ commonName: 'flotilla cluster CA' });
  const otherCa = createCa({ commonName: 'flotilla cluster CA' }); // same name, other key
  const outcome = await handshake(ca, issue(ca, 'server1'), issue(otherCa, 'intruder'));
  assert.ok('error' in outcome.server, `server accepted: ${JSON.stringify(outcome.server)}`);
  assert.ok('error' in outcome.client, `client was served: ${JSON.stringify(outcome.client)}`);
  const why = await handshake(ca, issue(ca, 'server1'), issue(otherCa, 'intruder'), false);
  assert.equal((why.server as { why?: string }).why, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
});

test('a server certificate from a second CA is refused by the client', async () => {
  const ca = createCa({ commonName: 'flotilla cluster CA' });
  const otherCa = createCa({ commonName: 'flotilla cluster CA' });
  const outcome = await handshake(ca, issue(otherCa, 'impostor'), issue(ca, 'client1'));
  assert.ok('error' in outcome.client);
  assert.match((outcome.client as { error: string }).error, /SIGNATURE|ISSUER|VERIFY/);
});

test('an expired leaf is refused, as a client and as a server', async () => {
  const ca = createCa({ commonName: 'flotilla cluster CA', now: new Date(Date.now() - 30 * DAY) });
  const longAgo = new Date(Date.now() - 2 * DAY);
  const expired = issue(ca, 'old', { now: longAgo, lifetimeMs: DAY });

  const asClient = await handshake(ca, issue(ca, 'server1'), expired);
  assert.ok('error' in asClient.server, `server accepted: ${JSON.stringify(asClient.server)}`);
  assert.ok('error' in asClient.client);
  // Node's server drops the refused connection without saying why; a server that does not
  // reject shows the reason is the date.
  const why = await handshake(ca, issue(ca, 'server1'), expired, false);
  assert.deepEqual(why.server, { authorized: false, peerCn: 'old', why: 'CERT_HAS_EXPIRED' });

  const asServer = await handshake(ca, expired, issue(ca, 'client1'));
  assert.deepEqual(asServer.client, { error: 'CERT_HAS_EXPIRED' });

  // The same pair of identities, freshly issued, works: it is the dates that were refused.
  const fresh = await handshake(ca, issue(ca, 'server1'), issue(ca, 'old'));
  assert.deepEqual(fresh.server, { authorized: true, peerCn: 'old' });
});

test('the client checks the server certificate names the address it dialled', async () => {
  const ca = createCa({ commonName: 'flotilla cluster CA' });
  const keys = generateKeyPair();
  // A server certificate for another address only.
  const req = createSigningRequest(keys.keyPem, {
    name: 'server1',
    ips: ['10.9.9.9'],
    dnsNames: ['server1'],
  });
  const wrongIp = { key: keys.keyPem, cert: signCertificate(ca, req, { lifetimeMs: DAY }) };
  const outcome = await handshake(ca, wrongIp, issue(ca, 'client1'));
  assert.deepEqual(outcome.client, { error: 'ERR_TLS_CERT_ALTNAME_INVALID' });
});
