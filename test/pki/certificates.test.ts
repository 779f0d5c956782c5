/**
 * Tests for the cluster CA primitives: the certificates parse and verify with Node and with
 * openssl, carry the extensions and validity asked for, and signing requests are checked
 * field by field and never carry the private key.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  caHash,
  certificateInfo,
  createCa,
  createSigningRequest,
  generateKeyPair,
  issuedBy,
  signCertificate,
  verifySigningRequest,
  type SigningRequest,
} from '../../src/pki';
import { InvalidError } from '../../src/errors';
import { formatIp, ipToBytes } from '../../src/pki/certificates';

const HOUR = 3600_000;
const DAY = 24 * HOUR;
const OPENSSL = '/usr/bin/openssl';

function leafFor(
  ca: { certPem: string; keyPem: string },
  name: string,
  opts: { lifetimeMs?: number; now?: Date; ips?: string[]; dnsNames?: string[] } = {},
) {
  const keys = generateKeyPair();
  const req = createSigningRequest(keys.keyPem, {
    name,
    ips: opts.ips ?? ['127.0.0.1', '::1'],
    dnsNames: opts.dnsNames ?? [name, 'localhost'],
  });
  const certPem = signCertificate(ca, req, {
    lifetimeMs: opts.lifetimeMs ?? 30 * DAY,
    now: opts.now,
  });
  return { certPem, keyPem: keys.keyPem, publicKeyPem: keys.publicKeyPem };
}

/** Node prints times to the second; our certificates hold whole seconds. */
function floorSeconds(ms: number): number {
  return Math.floor(ms / 1000) * 1000;
}

test('the CA and a leaf parse with X509Certificate and the leaf verifies against the CA', () => {
  const now = new Date(Date.UTC(2030, 5, 1, 12, 0, 0, 500));
  const ca = createCa({ commonName: 'flotilla cluster CA', now });
  const leaf = leafFor(ca, 'web1', {
    now,
    lifetimeMs: 7 * DAY,
    ips: ['10.0.0.5', '::1', '127.0.0.1'],
  });
  const caX = new crypto.X509Certificate(ca.certPem);
  const leafX = new crypto.X509Certificate(leaf.certPem);

  assert.equal(caX.ca, true);
  assert.equal(leafX.ca, false);
  assert.equal(caX.subject, 'CN=flotilla cluster CA');
  assert.equal(caX.issuer, 'CN=flotilla cluster CA');
  assert.equal(caX.verify(caX.publicKey), true, 'the CA is self-signed');
  assert.equal(leafX.subject, 'CN=web1');
  assert.equal(leafX.issuer, caX.subject);
  assert.equal(leafX.verify(caX.publicKey), true);
  assert.equal(leafX.checkIssued(caX), true);
  assert.equal(leafX.checkPrivateKey(crypto.createPrivateKey(leaf.keyPem)), true);

  // The issuer bytes equal the CA's subject bytes: find them in both DER encodings.
  const cn = Buffer.from('flotilla cluster CA');
  const subjectDer = Buffer.concat([Buffer.from([0x0c, cn.length]), cn]);
  assert.ok(leafX.raw.includes(subjectDer));

  assert.equal(
    leafX.subjectAltName,
    'DNS:web1, DNS:localhost, IP Address:10.0.0.5, IP Address:0:0:0:0:0:0:0:1, ' +
      'IP Address:127.0.0.1',
  );
  assert.equal(leafX.checkIP('10.0.0.5'), '10.0.0.5');
  assert.equal(leafX.checkIP('127.0.0.1'), '127.0.0.1');
  assert.equal(leafX.checkIP('::1'), '::1');
  assert.equal(leafX.checkIP('10.0.0.6'), undefined);
  assert.equal(leafX.checkHost('web1'), 'web1');
  assert.equal(leafX.checkHost('web2'), undefined);
  // Node's keyUsage is the extKeyUsage list.
  assert.deepEqual(leafX.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
});

test('validity: backdated for clock skew, notAfter = now + lifetime, UTC and Generalized', () => {
  // A CA from 2045 that ends in 2060: notBefore is a UTCTime, notAfter a
  // GeneralizedTime, and Node reads both.
  const now = new Date(Date.UTC(2045, 2, 10, 8, 30, 15, 250));
  const lifetimeMs = Date.UTC(2060, 0, 2, 3, 4, 5) - now.getTime();
  const ca = createCa({ commonName: 'ca', now, lifetimeMs });
  const caInfo = certificateInfo(ca.certPem);
  assert.equal(caInfo.notBefore.getTime(), floorSeconds(now.getTime() - 5 * 60_000));
  assert.equal(caInfo.notAfter.getTime(), floorSeconds(now.getTime() + lifetimeMs));
  assert.equal(caInfo.notAfter.getUTCFullYear(), 2060);
  const caDer = new crypto.X509Certificate(ca.certPem).raw;
  assert.ok(caDer.includes(Buffer.from('\x17\x0d450310082515Z', 'latin1')), 'UTCTime notBefore');
  assert.ok(caDer.includes(Buffer.from('\x18\x0f20600102030405Z', 'latin1')), 'Generalized');

  // A leaf signed by it: both dates stay within the CA's and verify.
  const leaf = leafFor(ca, 'n1', { now, lifetimeMs: 90 * DAY });
  const info = certificateInfo(leaf.certPem);
  assert.equal(info.notBefore.getTime(), floorSeconds(now.getTime() - 5 * 60_000));
  assert.equal(info.notAfter.getTime(), floorSeconds(now.getTime() + 90 * DAY));
  assert.equal(issuedBy(leaf.certPem, ca.certPem, now), true);

  // A short-lived certificate is backdated by half its lifetime, not five minutes.
  const brief = leafFor(ca, 'n2', { now, lifetimeMs: 60_000 });
  assert.equal(
    certificateInfo(brief.certPem).notBefore.getTime(),
    floorSeconds(now.getTime() - 30_000),
  );

  // The default CA lifetime is ten calendar years.
  const tenYears = certificateInfo(createCa({ commonName: 'ca', now }).certPem);
  assert.equal(tenYears.notAfter.toISOString(), '2055-03-10T08:30:15.000Z');
});

test('certificateInfo reports name, serial and SANs; serials are random 16-byte positives', () => {
  const ca = createCa({ commonName: 'ca' });
  const leaf = leafFor(ca, 'db-2.example', {
    ips: ['192.168.1.7', '2001:db8:0:0:0:0:0:1'],
    dnsNames: ['db-2.example', 'db.internal'],
  });
  const info = certificateInfo(leaf.certPem);
  assert.equal(info.commonName, 'db-2.example');
  assert.deepEqual(info.ips, ['192.168.1.7', '2001:db8::1']);
  assert.deepEqual(info.dnsNames, ['db-2.example', 'db.internal']);
  assert.match(info.serialNumber, /^[0-9A-F]{32}$/);
  assert.ok(parseInt(info.serialNumber[0], 16) >= 4 && parseInt(info.serialNumber[0], 16) < 8);
  const other = certificateInfo(leafFor(ca, 'db-2.example').certPem);
  assert.notEqual(other.serialNumber, info.serialNumber);
  assert.equal(certificateInfo(ca.certPem).commonName, 'ca');
  assert.deepEqual(certificateInfo(ca.certPem).ips, []);
});

test('caHash is the sha256 of the DER and differs between CAs', () => {
  const ca = createCa({ commonName: 'ca' });
  const derBytes = new crypto.X509Certificate(ca.certPem).raw;
  assert.equal(caHash(ca.certPem), crypto.createHash('sha256').update(derBytes).digest('hex'));
  assert.match(caHash(ca.certPem), /^[0-9a-f]{64}$/);
  assert.notEqual(caHash(createCa({ commonName: 'ca' }).certPem), caHash(ca.certPem));
  assert.throws(() => caHash('nope'), InvalidError);
});

test('issuedBy: the right CA within validity only', () => {
  const now = new Date();
  const ca = createCa({ commonName: 'ca' });
  const otherCa = createCa({ commonName: 'ca' }); // same name, different key
  const leaf = leafFor(ca, 'n1', { lifetimeMs: DAY });
  assert.equal(issuedBy(leaf.certPem, ca.certPem), true);
  assert.equal(issuedBy(leaf.certPem, otherCa.certPem), false);
  assert.equal(issuedBy(leaf.certPem, ca.certPem, new Date(now.getTime() + 2 * DAY)), false);
  assert.equal(issuedBy(leaf.certPem, ca.certPem, new Date(now.getTime() - HOUR)), false);
  assert.equal(issuedBy('garbage', ca.certPem), false);
  // A leaf is not a CA, even for a certificate it would "verify".
  assert.equal(issuedBy(leaf.certPem, leaf.certPem), false);
});

test('signCertificate refuses a CA key that does not match, and a bad lifetime', () => {
  const ca = createCa({ commonName: 'ca' });
  const keys = generateKeyPair();
  const req = createSigningRequest(keys.keyPem, { name: 'n1', ips: [], dnsNames: [] });
  assert.throws(
    () => signCertificate({ certPem: ca.certPem, keyPem: keys.keyPem }, req, { lifetimeMs: DAY }),
    (e: unknown) => e instanceof InvalidError && /^ca\.keyPem: /.test(e.message),
  );
  assert.throws(
    () => signCertificate(ca, req, { lifetimeMs: 0 }),
    (e: unknown) => e instanceof InvalidError && /^lifetimeMs: /.test(e.message),
  );
  const leaf = leafFor(ca, 'n1', { lifetimeMs: DAY });
  assert.throws(
    () => signCertificate({ certPem: leaf.certPem, keyPem: leaf.keyPem }, req, { lifetimeMs: DAY }),
    /ca\.certPem: is not a CA/,
  );
  // No names at all: no (empty, hence invalid) SAN extension, and it still parses.
  const bare = new crypto.X509Certificate(signCertificate(ca, req, { lifetimeMs: DAY }));
  assert.equal(bare.subjectAltName, undefined);
});

test('a CA made by openssl can sign too (the fixture CA), keeping its key identifier', () => {
  const dir = path.join(__dirname, '../../../test/fixtures/pki');
  const ca = {
    certPem: fs.readFileSync(path.join(dir, 'ca.crt'), 'utf8'),
    keyPem: fs.readFileSync(path.join(dir, 'ca.key'), 'utf8'),
  };
  const leaf = leafFor(ca, 'n1', { lifetimeMs: DAY });
  assert.equal(issuedBy(leaf.certPem, ca.certPem), true);
  assert.equal(issuedBy(fs.readFileSync(path.join(dir, 'node-a.crt'), 'utf8'), ca.certPem), true);
  if (fs.existsSync(OPENSSL)) {
    const text = opensslText(leaf.certPem);
    const caText = opensslText(ca.certPem);
    const ski = /Subject Key Identifier:\s*\n\s*([0-9A-F:]+)/.exec(caText)?.[1];
    assert.ok(ski);
    assert.match(text, new RegExp(`Authority Key Identifier:\\s*\\n\\s*(keyid:)?${ski}`));
  }
});

function opensslText(pem: string): string {
  return execFileSync(OPENSSL, ['x509', '-noout', '-text'], { input: pem, encoding: 'utf8' });
}

test('openssl verifies the leaf against the CA and shows the extensions', (t) => {
  if (!fs.existsSync(OPENSSL)) {
    t.skip(`${OPENSSL} is missing, so there is no second implementation to check against`);
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-pki-'));
  try {
    const ca = createCa({ commonName: 'flotilla cluster CA' });
    const leaf = leafFor(ca, 'web1', { ips: ['127.0.0.1', '10.1.2.3'], dnsNames: ['web1'] });
    fs.writeFileSync(path.join(dir, 'ca.pem'), ca.certPem);
    fs.writeFileSync(path.join(dir, 'leaf.pem'), leaf.certPem);
    const verify = (...extra: string[]) =>
      execFileSync(OPENSSL, ['verify', ...extra, '-CAfile', 'ca.pem', 'leaf.pem'], {
        cwd: dir,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      }).trim();
    assert.equal(verify(), 'leaf.pem: OK');
    // Strict mode also checks RFC 5280 details (key identifiers, critical flags, encodings).
    assert.equal(verify('-x509_strict'), 'leaf.pem: OK');
    assert.equal(verify('-x509_strict', '-purpose', 'sslserver'), 'leaf.pem: OK');
    assert.equal(verify('-x509_strict', '-purpose', 'sslclient'), 'leaf.pem: OK');

    const caText = opensslText(ca.certPem);
    assert.match(caText, /Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    assert.match(caText, /Key Usage: critical\s+Certificate Sign, CRL Sign/);
    assert.match(caText, /Subject Key Identifier:/);
    assert.match(caText, /Signature Algorithm: ecdsa-with-SHA256/);
    assert.match(caText, /Version: 3 \(0x2\)/);

    const text = opensslText(leaf.certPem);
    assert.match(text, /Issuer: CN ?= ?flotilla cluster CA/);
    assert.match(text, /Subject: CN ?= ?web1/);
    assert.match(text, /Basic Constraints: critical\s+CA:FALSE/);
    assert.match(text, /Key Usage: critical\s+Digital Signature\n/);
    assert.match(
      text,
      /Extended Key Usage:\s+TLS Web Server Authentication, TLS Web Client Authentication/,
    );
    assert.match(
      text,
      /Subject Alternative Name:\s+DNS:web1, IP Address:127\.0\.0\.1, IP Address:10\.1\.2\.3/,
    );
    assert.match(text, /Authority Key Identifier:/);
    assert.match(text, /ASN1 OID: prime256v1/);

    // And a leaf from another CA does not verify.
    const stranger = leafFor(createCa({ commonName: 'flotilla cluster CA' }), 'web1');
    fs.writeFileSync(path.join(dir, 'leaf.pem'), stranger.certPem);
    assert.throws(() => verify(), /verification failed|unable to get|signature failure/i);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a signing request verifies, and never carries the private key', () => {
  const keys = generateKeyPair();
  assert.match(keys.keyPem, /^-----BEGIN PRIVATE KEY-----/);
  assert.match(keys.publicKeyPem, /^-----BEGIN PUBLIC KEY-----/);
  const req = createSigningRequest(keys.keyPem, {
    name: 'web1',
    ips: ['10.0.0.5'],
    dnsNames: ['web1.local'],
  });
  assert.deepEqual(Object.keys(req).sort(), [
    'dnsNames',
    'ips',
    'name',
    'publicKeyPem',
    'signature',
  ]);
  assert.equal(req.publicKeyPem, keys.publicKeyPem);
  const json = JSON.stringify(req);
  assert.ok(!json.includes('PRIVATE'));
  // Neither the PEM body nor the raw private scalar appears, in any encoding.
  const keyBody = keys.keyPem.split('\n').slice(1, -2).join('');
  assert.ok(!json.includes(keyBody.slice(0, 40)));
  const jwk = crypto.createPrivateKey(keys.keyPem).export({ format: 'jwk' });
  const d = Buffer.from(jwk.d as string, 'base64url');
  assert.ok(!json.includes(jwk.d as string));
  assert.ok(!json.includes(d.toString('base64')));
  assert.ok(!json.includes(d.toString('hex')));

  // A request that went through JSON (as over the wire) still verifies, and the clean copy
  // drops anything extra.
  const wire = JSON.parse(JSON.stringify({ ...req, extra: 'x' })) as unknown;
  const clean = verifySigningRequest(wire);
  assert.deepEqual(clean, req);
  assert.ok(!('extra' in clean));
  // Key order on the wire does not matter.
  const reordered = JSON.parse(
    JSON.stringify({
      signature: req.signature,
      publicKeyPem: req.publicKeyPem,
      dnsNames: req.dnsNames,
      ips: req.ips,
      name: req.name,
    }),
  ) as unknown;
  assert.deepEqual(verifySigningRequest(reordered), req);
});

/** Asserts `fn` throws an InvalidError whose message starts with `field: `. */
function refuses(fn: () => unknown, field: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof InvalidError, `expected InvalidError, got ${String(e)}`);
    assert.equal(e.code, 'Invalid');
    assert.ok(
      e.message.startsWith(`${field}: `),
      `expected the error to name ${field}: ${e.message}`,
    );
    assert.ok(!e.message.includes('\n'), 'one line');
    return true;
  });
}

test('verifySigningRequest refuses tampering, wrong keys and bad names, naming the field', () => {
  const keys = generateKeyPair();
  const req = createSigningRequest(keys.keyPem, {
    name: 'web1',
    ips: ['10.0.0.5'],
    dnsNames: ['web1.local'],
  });
  const withField = (patch: Partial<Record<keyof SigningRequest, unknown>>) => ({
    ...req,
    ...patch,
  });

  // Tampered fields: the shape is fine but the signature no longer matches.
  refuses(() => verifySigningRequest(withField({ name: 'web2' })), 'signature');
  refuses(() => verifySigningRequest(withField({ ips: ['10.0.0.6'] })), 'signature');
  refuses(() => verifySigningRequest(withField({ ips: ['10.0.0.5', '10.0.0.6'] })), 'signature');
  refuses(() => verifySigningRequest(withField({ dnsNames: ['evil.local'] })), 'signature');
  // Someone else's key with this node's signature.
  refuses(
    () => verifySigningRequest(withField({ publicKeyPem: generateKeyPair().publicKeyPem })),
    'signature',
  );
  const sig = Buffer.from(req.signature, 'base64');
  sig[sig.length - 1] ^= 1;
  const flipped = sig.toString('base64');
  refuses(() => verifySigningRequest(withField({ signature: flipped })), 'signature');
  refuses(() => verifySigningRequest(withField({ signature: 'not base64!' })), 'signature');
  refuses(() => verifySigningRequest(withField({ signature: undefined })), 'signature');

  // Keys that are not EC P-256.
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const rsaPem = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  refuses(() => verifySigningRequest(withField({ publicKeyPem: rsaPem })), 'publicKeyPem');
  const p384 = crypto.generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
  const p384Pem = p384.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  refuses(() => verifySigningRequest(withField({ publicKeyPem: p384Pem })), 'publicKeyPem');
  // A private key where the public key should be: refused, not quietly turned into its public half.
  refuses(() => verifySigningRequest(withField({ publicKeyPem: keys.keyPem })), 'publicKeyPem');
  refuses(() => verifySigningRequest(withField({ publicKeyPem: 'x' })), 'publicKeyPem');
  // RSA on the node side is refused before anything is signed.
  const rsaKeyPem = rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  refuses(() => createSigningRequest(rsaKeyPem, { name: 'a', ips: [], dnsNames: [] }), 'keyPem');

  // Bad IPs.
  refuses(() => verifySigningRequest(withField({ ips: ['10.0.0.256'] })), 'ips[0]');
  refuses(() => verifySigningRequest(withField({ ips: ['10.0.0.5', 'localhost'] })), 'ips[1]');
  refuses(() => verifySigningRequest(withField({ ips: ['fe80::1%eth0'] })), 'ips[0]');
  refuses(() => verifySigningRequest(withField({ ips: ['10.0.0.5', '10.0.0.5'] })), 'ips[1]');
  refuses(() => verifySigningRequest(withField({ ips: [5] })), 'ips[0]');
  refuses(() => verifySigningRequest(withField({ ips: '10.0.0.5' })), 'ips');
  const many = Array.from({ length: 17 }, (_, i) => `10.0.0.${i + 1}`);
  refuses(() => verifySigningRequest(withField({ ips: many })), 'ips');

  // Bad names.
  refuses(() => verifySigningRequest(withField({ name: 'Web1' })), 'name');
  refuses(() => verifySigningRequest(withField({ name: '' })), 'name');
  refuses(() => verifySigningRequest(withField({ name: 'a'.repeat(254) })), 'name');
  refuses(() => verifySigningRequest(withField({ name: 'web_1' })), 'name');
  refuses(() => verifySigningRequest(withField({ name: 42 })), 'name');
  refuses(() => verifySigningRequest(withField({ dnsNames: ['-web.local'] })), 'dnsNames[0]');
  refuses(() => verifySigningRequest(withField({ dnsNames: ['web..local'] })), 'dnsNames[0]');
  refuses(() => verifySigningRequest(withField({ dnsNames: ['ok', '*.local'] })), 'dnsNames[1]');
  refuses(
    () => verifySigningRequest(withField({ dnsNames: ['a'.repeat(64) + '.local'] })),
    'dnsNames[0]',
  );
  refuses(
    () => verifySigningRequest(withField({ dnsNames: many.map((_, i) => `n${i}`) })),
    'dnsNames',
  );
  refuses(
    () => createSigningRequest(keys.keyPem, { name: 'UPPER', ips: [], dnsNames: [] }),
    'name',
  );

  // Not an object at all.
  for (const input of [null, undefined, 'a string', 42, [req]]) {
    refuses(() => verifySigningRequest(input), 'signingRequest');
  }

  // signCertificate checks the request too: a tampered one is never signed.
  const ca = createCa({ commonName: 'ca' });
  refuses(() => signCertificate(ca, { ...req, name: 'web2' }, { lifetimeMs: DAY }), 'signature');
});

test('timing: a key pair and a leaf signature', (t) => {
  const ca = createCa({ commonName: 'ca' });
  const rounds = 50;
  let start = process.hrtime.bigint();
  const pairs = Array.from({ length: rounds }, () => generateKeyPair());
  const keyMs = Number(process.hrtime.bigint() - start) / 1e6 / rounds;
  const reqs = pairs.map((k) =>
    createSigningRequest(k.keyPem, { name: 'n1', ips: ['127.0.0.1'], dnsNames: ['n1'] }),
  );
  start = process.hrtime.bigint();
  for (const req of reqs) signCertificate(ca, req, { lifetimeMs: DAY });
  const signMs = Number(process.hrtime.bigint() - start) / 1e6 / rounds;
  start = process.hrtime.bigint();
  for (let i = 0; i < 10; i++) createCa({ commonName: 'ca' });
  const caMs = Number(process.hrtime.bigint() - start) / 1e6 / 10;
  t.diagnostic(`generateKeyPair: ${keyMs.toFixed(3)} ms each (mean of ${rounds})`);
  t.diagnostic(`signCertificate (verifies the request, then signs): ${signMs.toFixed(3)} ms each`);
  t.diagnostic(`createCa: ${caMs.toFixed(3)} ms each (mean of 10)`);
});

test('IP addresses go into the SAN as their 4 or 16 bytes and come back in short form', () => {
  const cases: [string, string, string][] = [
    ['10.0.0.5', '0a000005', '10.0.0.5'],
    ['::1', '00000000000000000000000000000001', '::1'],
    ['1::', '00010000000000000000000000000000', '1::'],
    ['2001:db8:0:0:1:0:0:1', '20010db8000000000001000000000001', '2001:db8::1:0:0:1'],
    ['::ffff:1.2.3.4', '00000000000000000000ffff01020304', '::ffff:102:304'],
    ['1:2:3:4:5:6:7:8', '00010002000300040005000600070008', '1:2:3:4:5:6:7:8'],
  ];
  for (const [ip, hex, short] of cases) {
    assert.equal(ipToBytes(ip).toString('hex'), hex, ip);
    assert.equal(formatIp(ipToBytes(ip)), short, ip);
  }
});
