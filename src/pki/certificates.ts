/**
 * The cluster's certificate authority: key pairs, the self-signed cluster CA, the signing
 * request a node sends when it joins (its public key and names, signed with its own key so
 * the private key never leaves the node), and the leaf certificates the CA issues for mutual
 * TLS between servers. All keys are EC P-256 and all signatures ecdsa-with-SHA256.
 * Certificates are built with the DER encoder in ./der, because Node can only parse them.
 */
import crypto from 'node:crypto';
import net from 'node:net';
import { InvalidError } from '../errors';
import * as der from './der';

/** A private key as PKCS#8 PEM and its public key as SPKI PEM. */
export interface KeyPairPem {
  keyPem: string;
  publicKeyPem: string;
}

/** The cluster CA: its certificate and its private key, both PEM. */
export interface CaPem {
  certPem: string;
  keyPem: string;
}

/**
 * What a node sends to be certified: its public key, its names, and proof that it holds the
 * private key.
 */
export interface SigningRequest {
  name: string;
  ips: string[];
  dnsNames: string[];
  publicKeyPem: string;
  /** base64 of the ECDSA signature over the canonical serialisation of the other fields. */
  signature: string;
}

const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

/** keyUsage bit numbers from RFC 5280 section 4.2.1.3. */
const KEY_USAGE = { digitalSignature: 0, keyCertSign: 5, cRLSign: 6 } as const;

const MINUTE_MS = 60_000;
/**
 * How far notBefore is set before the moment of issue. A node whose clock runs a little
 * behind the CA's would otherwise refuse a certificate issued to it (or to a peer) until its
 * clock caught up; five minutes covers a server that has not finished syncing its clock after
 * boot, and costs nothing since the key was just made. Capped at half the lifetime so that
 * short-lived certificates are not mostly spent in the past.
 */
const MAX_BACKDATE_MS = 5 * MINUTE_MS;
const MAX_NAMES = 16;
/** A P-256 SPKI PEM is about 180 characters; anything far larger is not one. */
const MAX_PUBLIC_KEY_PEM = 1024;
/** A DER ECDSA P-256 signature is at most 72 bytes, 96 characters of base64. */
const MAX_SIGNATURE_B64 = 128;
/** Domain separation: a request signature can never be mistaken for another signed message. */
const REQUEST_CONTEXT = 'flotilla-signing-request-v1';

/** A new EC P-256 key pair. */
export function generateKeyPair(): KeyPairPem {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', {
    namedCurve: 'prime256v1',
  });
  return {
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/**
 * Self-signed CA: CN=commonName, basicConstraints CA:TRUE with pathLenConstraint 0 (it signs
 * node certificates only, never another CA) critical, keyUsage keyCertSign+cRLSign critical,
 * subjectKeyIdentifier. Default lifetime 10 years.
 */
export function createCa(opts: { commonName: string; lifetimeMs?: number; now?: Date }): CaPem {
  if (typeof opts.commonName !== 'string' || opts.commonName.length === 0) {
    throw new InvalidError('must be a non-empty string', 'commonName');
  }
  if (opts.commonName.length > 64) {
    throw new InvalidError('must be at most 64 characters (the X.520 limit)', 'commonName');
  }
  const now = issueTime(opts.now);
  const lifetimeMs = opts.lifetimeMs ?? tenYearsMs(now);
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', {
    namedCurve: 'prime256v1',
  });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const name = distinguishedName(opts.commonName);
  const extensions = [
    extension(OID.basicConstraints, true, der.sequence(der.boolean(true), der.smallInteger(0))),
    extension(OID.keyUsage, true, der.namedBits([KEY_USAGE.keyCertSign, KEY_USAGE.cRLSign])),
    extension(OID.subjectKeyIdentifier, false, der.octetString(keyIdentifier(spki))),
  ];
  const certDer = buildCertificate({
    issuer: name,
    subject: name,
    spki,
    extensions,
    validity: validity(now, lifetimeMs),
    signingKey: privateKey,
  });
  return {
    certPem: toPem('CERTIFICATE', certDer),
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

/**
 * The bytes a signing request's signature covers: a JSON array in a fixed order, so the same
 * fields always give the same bytes whatever order the object's keys arrive in.
 */
function requestSigningBytes(req: Omit<SigningRequest, 'signature'>): Buffer {
  return Buffer.from(
    JSON.stringify([REQUEST_CONTEXT, req.name, req.ips, req.dnsNames, req.publicKeyPem]),
    'utf8',
  );
}

/**
 * Signs {name, ips, dnsNames, publicKeyPem} (a fixed canonical serialisation) with the node's
 * key.
 */
export function createSigningRequest(
  keyPem: string,
  subject: { name: string; ips: string[]; dnsNames: string[] },
): SigningRequest {
  let privateKey: crypto.KeyObject;
  try {
    privateKey = crypto.createPrivateKey(keyPem);
  } catch {
    throw new InvalidError('is not a PEM private key', 'keyPem');
  }
  checkP256(privateKey, 'keyPem');
  const fields = {
    name: subject.name,
    ips: [...subject.ips],
    dnsNames: [...subject.dnsNames],
    publicKeyPem: crypto
      .createPublicKey(privateKey)
      .export({ type: 'spki', format: 'pem' })
      .toString(),
  };
  // The same checks the CA makes, so a node learns about a bad name before it asks.
  checkSubject(fields);
  const signature = crypto.sign('sha256', requestSigningBytes(fields), privateKey);
  return { ...fields, signature: signature.toString('base64') };
}

/**
 * Checks shape (name 1-253 chars of [a-z0-9.-]; ips valid per net.isIP; at most 16 names
 * each; dnsNames hostname-like), that the key is EC P-256, and the proof signature. Throws
 * InvalidError naming the bad field. Returns a clean copy holding only the known fields.
 */
export function verifySigningRequest(input: unknown): SigningRequest {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new InvalidError('must be an object', 'signingRequest');
  }
  const raw = input as Record<string, unknown>;
  const name = raw.name;
  if (typeof name !== 'string') throw new InvalidError('must be a string', 'name');
  const ips = stringArray(raw.ips, 'ips');
  const dnsNames = stringArray(raw.dnsNames, 'dnsNames');
  const fields = { name, ips, dnsNames, publicKeyPem: '' };
  checkSubject(fields);

  const publicKeyPem = raw.publicKeyPem;
  if (typeof publicKeyPem !== 'string') throw new InvalidError('must be a string', 'publicKeyPem');
  if (publicKeyPem.length > MAX_PUBLIC_KEY_PEM) {
    throw new InvalidError('is too long for a P-256 public key', 'publicKeyPem');
  }
  // createPublicKey would also accept a private key and derive its public half; a request
  // carrying a private key is a leak to refuse, not to repair.
  if (!/^\s*-----BEGIN PUBLIC KEY-----/.test(publicKeyPem) || /PRIVATE KEY/.test(publicKeyPem)) {
    throw new InvalidError('must be an SPKI PEM public key (BEGIN PUBLIC KEY)', 'publicKeyPem');
  }
  let publicKey: crypto.KeyObject;
  try {
    publicKey = crypto.createPublicKey(publicKeyPem);
  } catch {
    throw new InvalidError('is not a valid PEM public key', 'publicKeyPem');
  }
  checkP256(publicKey, 'publicKeyPem');
  fields.publicKeyPem = publicKeyPem;

  const signature = raw.signature;
  if (
    typeof signature !== 'string' ||
    signature.length === 0 ||
    signature.length > MAX_SIGNATURE_B64 ||
    !/^[A-Za-z0-9+/]+={0,2}$/.test(signature)
  ) {
    throw new InvalidError('must be a base64 ECDSA signature', 'signature');
  }
  let valid = false;
  try {
    valid = crypto.verify(
      'sha256',
      requestSigningBytes(fields),
      publicKey,
      Buffer.from(signature, 'base64'),
    );
  } catch {
    valid = false;
  }
  if (!valid) {
    throw new InvalidError(
      'does not match the request (a field was changed, or the key is not the signer)',
      'signature',
    );
  }
  return { ...fields, ips: [...ips], dnsNames: [...dnsNames], signature };
}

/**
 * A leaf certificate for a node: CN=name, SAN = the DNS names and IPs, keyUsage
 * digitalSignature (critical), extKeyUsage serverAuth+clientAuth, basicConstraints CA:FALSE
 * (critical), subject and authority key identifiers, a random positive 16-byte serial, the
 * issuer copied byte for byte from the CA's subject. notBefore = now - min(5 min, lifetime/2)
 * for clock skew between servers; notAfter = now + lifetimeMs. The request is verified again
 * here, so only a request with a valid proof is ever signed.
 */
export function signCertificate(
  ca: CaPem,
  request: SigningRequest,
  opts: { lifetimeMs: number; now?: Date },
): string {
  const req = verifySigningRequest(request);
  const now = issueTime(opts.now);
  const caCert = parseCertificate(ca.certPem, 'ca.certPem');
  if (!caCert.ca) throw new InvalidError('is not a CA certificate', 'ca.certPem');
  let caKey: crypto.KeyObject;
  try {
    caKey = crypto.createPrivateKey(ca.keyPem);
  } catch {
    throw new InvalidError('is not a PEM private key', 'ca.keyPem');
  }
  checkP256(caKey, 'ca.keyPem');
  if (!caCert.checkPrivateKey(caKey)) {
    throw new InvalidError('does not belong to the CA certificate', 'ca.keyPem');
  }
  const caParts = certificateParts(caCert.raw);
  const caKeyId =
    caParts.subjectKeyId ?? keyIdentifier(caCert.publicKey.export({ type: 'spki', format: 'der' }));

  const spki = crypto.createPublicKey(req.publicKeyPem).export({ type: 'spki', format: 'der' });
  const altNames = [
    ...req.dnsNames.map((d) => der.contextImplicit(2, Buffer.from(d, 'latin1'))),
    ...req.ips.map((ip) => der.contextImplicit(7, ipToBytes(ip))),
  ];
  const extensions = [
    extension(OID.basicConstraints, true, der.sequence()),
    extension(OID.keyUsage, true, der.namedBits([KEY_USAGE.digitalSignature])),
    extension(
      OID.extKeyUsage,
      false,
      der.sequence(der.oid(OID.serverAuth), der.oid(OID.clientAuth)),
    ),
    // A SAN extension may not be empty; with no names the certificate is known by its CN.
    ...(altNames.length > 0
      ? [extension(OID.subjectAltName, false, der.sequence(...altNames))]
      : []),
    extension(OID.subjectKeyIdentifier, false, der.octetString(keyIdentifier(spki))),
    extension(OID.authorityKeyIdentifier, false, der.sequence(der.contextImplicit(0, caKeyId))),
  ];
  const certDer = buildCertificate({
    issuer: caParts.subject,
    subject: distinguishedName(req.name),
    spki,
    extensions,
    // A leaf never outlives its CA: it would stop verifying then anyway.
    validity: validity(now, Math.min(opts.lifetimeMs, caLifeLeftMs(caCert, now))),
    signingKey: caKey,
  });
  return toPem('CERTIFICATE', certDer);
}

/** sha256 hex of the certificate's DER: what join tokens pin. */
export function caHash(certPem: string): string {
  const cert = parseCertificate(certPem, 'certPem');
  return crypto.createHash('sha256').update(cert.raw).digest('hex');
}

/**
 * Parsed facts about a certificate. IPv6 addresses come back in their short form (RFC 5952),
 * whatever form the request used; the serial number is upper-case hex as Node prints it.
 */
export function certificateInfo(certPem: string): {
  commonName: string;
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  ips: string[];
  dnsNames: string[];
} {
  const cert = parseCertificate(certPem, 'certPem');
  const cnLine = cert.subject.split('\n').find((line) => line.startsWith('CN='));
  const ips: string[] = [];
  const dnsNames: string[] = [];
  // Names we issue are plain [a-z0-9.-] and IP literals, so Node never quotes them and a
  // comma-space split is exact.
  for (const entry of (cert.subjectAltName ?? '').split(', ')) {
    if (entry.startsWith('DNS:')) dnsNames.push(entry.slice(4));
    else if (entry.startsWith('IP Address:')) ips.push(formatIp(ipToBytes(entry.slice(11))));
  }
  return {
    commonName: cnLine ? cnLine.slice(3) : '',
    serialNumber: cert.serialNumber,
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    ips,
    dnsNames,
  };
}

/**
 * True when `certPem` was signed by `caPem`'s key (and names it as issuer) and both are
 * within their validity at `now`. Unparseable input is simply not issued by the CA.
 */
export function issuedBy(certPem: string, caPem: string, now: Date = new Date()): boolean {
  let cert: crypto.X509Certificate;
  let ca: crypto.X509Certificate;
  try {
    cert = new crypto.X509Certificate(certPem);
    ca = new crypto.X509Certificate(caPem);
  } catch {
    return false;
  }
  const at = now.getTime();
  const within = (c: crypto.X509Certificate): boolean =>
    new Date(c.validFrom).getTime() <= at && at <= new Date(c.validTo).getTime();
  return ca.ca && cert.checkIssued(ca) && cert.verify(ca.publicKey) && within(cert) && within(ca);
}

// ---------------------------------------------------------------------------------------------

interface CertificateInput {
  issuer: Buffer;
  subject: Buffer;
  spki: Buffer;
  extensions: Buffer[];
  validity: Buffer;
  signingKey: crypto.KeyObject;
}

/** Assembles TBSCertificate, signs it, and wraps both in a Certificate (RFC 5280 4.1). */
function buildCertificate(input: CertificateInput): Buffer {
  const algorithm = der.sequence(der.oid(OID.ecdsaWithSha256));
  const tbs = der.sequence(
    der.contextExplicit(0, der.smallInteger(2)), // v3
    der.integer(randomSerial()),
    algorithm,
    input.issuer,
    input.validity,
    input.subject,
    input.spki,
    der.contextExplicit(3, der.sequence(...input.extensions)),
  );
  const signature = crypto.sign('sha256', tbs, input.signingKey);
  return der.sequence(tbs, algorithm, der.bitString(signature));
}

/**
 * 16 random bytes with the top bit cleared (so the INTEGER stays positive and exactly 16
 * bytes long, no pad needed) and the next bit set (so it is never zero or shortened).
 */
function randomSerial(): Buffer {
  const serial = crypto.randomBytes(16);
  serial[0] = (serial[0] & 0x7f) | 0x40;
  return serial;
}

function distinguishedName(commonName: string): Buffer {
  return der.sequence(der.set(der.sequence(der.oid(OID.commonName), der.utf8String(commonName))));
}

/** An Extension; DER leaves out `critical` when it is FALSE, the default. */
function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return der.sequence(
    der.oid(id),
    ...(critical ? [der.boolean(true)] : []),
    der.octetString(value),
  );
}

/** RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits (not of the whole SPKI). */
function keyIdentifier(spki: Buffer): Buffer {
  const outer = der.readElement(spki);
  const [, bits] = der.readChildren(spki, outer);
  if (!bits || bits.tag !== der.Tag.BIT_STRING) throw new RangeError('malformed SPKI');
  // Skip the unused-bits byte that starts a BIT STRING's contents.
  const keyBits = spki.subarray(bits.contentStart + 1, bits.end);
  return crypto.createHash('sha1').update(keyBits).digest();
}

/**
 * The subject Name's exact bytes and the subjectKeyIdentifier, if any, read from a
 * certificate's DER. The issuer of a leaf must match the CA's subject byte for byte for
 * path building, so it is copied rather than re-encoded.
 */
function certificateParts(certDer: Buffer): { subject: Buffer; subjectKeyId?: Buffer } {
  const certificate = der.readElement(certDer);
  const [tbsElement] = der.readChildren(certDer, certificate);
  const fields = der.readChildren(certDer, tbsElement);
  // With the optional [0] version present, subject is the sixth field; without, the fifth.
  const base = fields[0]?.tag === (der.Tag.CONTEXT | der.Tag.CONSTRUCTED | 0) ? 1 : 0;
  const subjectElement = fields[base + 4];
  if (!subjectElement) throw new InvalidError('is not a complete certificate', 'ca.certPem');
  const subject = certDer.subarray(subjectElement.start, subjectElement.end);

  const ski = der.oid(OID.subjectKeyIdentifier);
  const extsWrapper = fields.find((f) => f.tag === (der.Tag.CONTEXT | der.Tag.CONSTRUCTED | 3));
  if (!extsWrapper) return { subject };
  const [extsSeq] = der.readChildren(certDer, extsWrapper);
  for (const ext of der.readChildren(certDer, extsSeq)) {
    const parts = der.readChildren(certDer, ext);
    const idBytes = certDer.subarray(parts[0].start, parts[0].end);
    if (!idBytes.equals(ski)) continue;
    const value = parts[parts.length - 1]; // OCTET STRING wrapping an OCTET STRING
    const inner = der.readElement(certDer, value.contentStart);
    return { subject, subjectKeyId: certDer.subarray(inner.contentStart, inner.end) };
  }
  return { subject };
}

/** Milliseconds until the CA certificate expires (at least 1, so that errors stay about the CA). */
function caLifeLeftMs(caCert: crypto.X509Certificate, now: Date): number {
  return Math.max(1, new Date(caCert.validTo).getTime() - now.getTime());
}

function validity(now: Date, lifetimeMs: number): Buffer {
  if (typeof lifetimeMs !== 'number' || !Number.isFinite(lifetimeMs) || lifetimeMs <= 0) {
    throw new InvalidError('must be a positive number of milliseconds', 'lifetimeMs');
  }
  const backdate = Math.min(MAX_BACKDATE_MS, lifetimeMs / 2);
  const notBefore = new Date(now.getTime() - backdate);
  const notAfter = new Date(now.getTime() + lifetimeMs);
  if (notAfter.getUTCFullYear() > 9999 || Number.isNaN(notAfter.getTime())) {
    throw new InvalidError('ends after the year 9999', 'lifetimeMs');
  }
  return der.sequence(der.x509Time(notBefore), der.x509Time(notAfter));
}

function issueTime(now: Date | undefined): Date {
  const at = now ?? new Date();
  if (!(at instanceof Date) || Number.isNaN(at.getTime())) {
    throw new InvalidError('must be a valid Date', 'now');
  }
  return at;
}

/** Ten calendar years from `now`, as a number of milliseconds. */
function tenYearsMs(now: Date): number {
  const later = new Date(now.getTime());
  later.setUTCFullYear(later.getUTCFullYear() + 10);
  return later.getTime() - now.getTime();
}

function toPem(label: string, body: Buffer): string {
  const lines = body.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

function parseCertificate(pem: string, field: string): crypto.X509Certificate {
  try {
    return new crypto.X509Certificate(pem);
  } catch {
    throw new InvalidError('is not a PEM certificate', field);
  }
}

function checkP256(key: crypto.KeyObject, field: string): void {
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    const kind =
      key.asymmetricKeyType === 'ec'
        ? `EC ${key.asymmetricKeyDetails?.namedCurve ?? 'unknown curve'}`
        : (key.asymmetricKeyType ?? 'unknown');
    throw new InvalidError(`must be an EC P-256 key, got ${kind}`, field);
  }
}

function stringArray(value: unknown, field: string): string[] {
  if (!Array.isArray(value)) throw new InvalidError('must be an array of strings', field);
  if (value.length > MAX_NAMES) throw new InvalidError(`must hold at most ${MAX_NAMES}`, field);
  value.forEach((v, i) => {
    if (typeof v !== 'string') throw new InvalidError('must be a string', `${field}[${i}]`);
  });
  return [...(value as string[])];
}

const NAME_PATTERN = /^[a-z0-9.-]{1,253}$/;
const LABEL_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** The subject checks shared by createSigningRequest and verifySigningRequest. */
function checkSubject(s: { name: string; ips: string[]; dnsNames: string[] }): void {
  if (typeof s.name !== 'string' || !NAME_PATTERN.test(s.name)) {
    throw new InvalidError('must be 1-253 characters of a-z, 0-9, "." and "-"', 'name');
  }
  stringArray(s.ips, 'ips');
  stringArray(s.dnsNames, 'dnsNames');
  s.ips.forEach((ip, i) => {
    // A zone (fe80::1%eth0) means nothing to another host and has no place in a certificate.
    if (net.isIP(ip) === 0 || ip.includes('%')) {
      throw new InvalidError(`"${ip}" is not an IP address`, `ips[${i}]`);
    }
    if (s.ips.indexOf(ip) !== i) throw new InvalidError(`"${ip}" is listed twice`, `ips[${i}]`);
  });
  s.dnsNames.forEach((d, i) => {
    const labels = d.split('.');
    if (d.length > 253 || !labels.every((l) => LABEL_PATTERN.test(l))) {
      throw new InvalidError(
        `"${d}" is not a lower-case host name (labels of a-z, 0-9 and inner "-")`,
        `dnsNames[${i}]`,
      );
    }
    if (s.dnsNames.indexOf(d) !== i) {
      throw new InvalidError(`"${d}" is listed twice`, `dnsNames[${i}]`);
    }
  });
}

/** The 4 or 16 bytes of an IP address already known to be valid (net.isIP). */
export function ipToBytes(ip: string): Buffer {
  if (net.isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  if (!net.isIPv6(ip)) throw new RangeError(`"${ip}" is not an IP address`);
  let text = ip.split('%')[0];
  // A trailing dotted quad (::ffff:1.2.3.4) stands for the last two groups.
  const quad = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (quad) {
    const b = quad[1].split('.').map(Number);
    text =
      text.slice(0, quad.index) +
      `${((b[0] << 8) | b[1]).toString(16)}:` +
      ((b[2] << 8) | b[3]).toString(16);
  }
  const [head, tail] = text.split('::');
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail === undefined ? [] : tail ? tail.split(':') : [];
  const missing = 8 - headGroups.length - tailGroups.length;
  const zeros = Array<string>(tail === undefined ? 0 : missing).fill('0');
  const groups = [...headGroups, ...zeros, ...tailGroups];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** An address in its usual text form; IPv6 per RFC 5952 (longest zero run as "::"). */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length !== 16) {
    throw new RangeError(`an IP address has 4 or 16 bytes, not ${bytes.length}`);
  }
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i] << 8) | bytes[i + 1]);
  let bestStart = -1;
  let bestLength = 1; // a single zero group is not shortened
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}
