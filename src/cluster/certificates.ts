/**
 * The cluster's certificate authority as the replicated state holds it, and
 * this server's own key and certificate.
 *
 * The CA is made when a cluster is founded; its certificate, its key and
 * the gossip key travel through the Raft log (a `pki` record), so that any
 * member can sign. A server's own key never leaves it: a joining server
 * sends a signing request with its token and gets a certificate back, and a
 * member renews its certificate by signing a new key with the CA from its
 * own state, well before the old one expires, without restarting anything.
 */
import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import type pino from 'pino';
import { FlotillaError } from '../errors';
import {
  caHash,
  certificateInfo,
  createCa,
  createSigningRequest,
  generateKeyPair,
  signCertificate,
  type SigningRequest,
} from '../pki';
import type { Store } from '../store/store';

/** The cluster-wide secrets written once by the founder. */
export interface ClusterPki {
  caCert: string;
  caKey: string;
  /** Signs gossip datagrams (base64 of 32 random bytes). */
  gossipKey: string;
}

/** A server's TLS material: its key, its certificate and the CA's certificate. */
export interface TlsMaterial {
  key: string;
  cert: string;
  ca: string;
}

/** Node certificates live 90 days unless FLOTILLA_CERT_LIFETIME_SECONDS says otherwise. */
const DEFAULT_LIFETIME_MS = 90 * 24 * 3600 * 1000;
/** How often a server looks at its certificate's remaining life. */
const RENEW_CHECK_MAX_MS = 60_000;

export const PKI_META_KEYS = ['ca_cert', 'ca_key', 'gossip_key'] as const;

/** New cluster secrets, made by the founder. */
export function createClusterPki(clusterId: string): ClusterPki {
  const ca = createCa({ commonName: `flotilla cluster ${clusterId}` });
  return {
    caCert: ca.certPem,
    caKey: ca.keyPem,
    gossipKey: crypto.randomBytes(32).toString('base64'),
  };
}

/** Stores the cluster secrets (applying a committed `pki` record). */
export function saveClusterPki(store: Store, pki: ClusterPki): void {
  store.setMeta('ca_cert', pki.caCert);
  store.setMeta('ca_key', pki.caKey);
  store.setMeta('gossip_key', pki.gossipKey);
}

/** The cluster secrets this server holds, if it has them yet. */
export function readClusterPki(store: Store): ClusterPki | undefined {
  const caCert = store.getMeta('ca_cert');
  const caKey = store.getMeta('ca_key');
  const gossipKey = store.getMeta('gossip_key');
  return caCert && caKey && gossipKey ? { caCert, caKey, gossipKey } : undefined;
}

/**
 * How long the certificates this server signs live. Short lifetimes are for
 * tests and drills that prove renewal works.
 */
export function certificateLifetimeMs(env = process.env): number {
  const text = env.FLOTILLA_CERT_LIFETIME_SECONDS;
  if (text === undefined || text === '') return DEFAULT_LIFETIME_MS;
  const seconds = Number(text);
  if (!Number.isFinite(seconds) || seconds < 2) {
    throw new FlotillaError(
      'Invalid',
      `expected FLOTILLA_CERT_LIFETIME_SECONDS as a number of seconds, at least 2, got "${text}"`,
      422,
    );
  }
  return seconds * 1000;
}

/** Signs a (verified) signing request with the cluster CA. */
export function issueCertificate(pki: ClusterPki, request: SigningRequest): string {
  const ca = { certPem: pki.caCert, keyPem: pki.caKey };
  return signCertificate(ca, request, { lifetimeMs: certificateLifetimeMs() });
}

/** The names a server's certificate carries. */
export interface NodeIdentity {
  name: string;
  ips: string[];
  dnsNames: string[];
}

/** A new key and a certificate for it, signed with the CA of `pki`. */
export function selfIssue(pki: ClusterPki, identity: NodeIdentity): TlsMaterial {
  const keys = generateKeyPair();
  const request = createSigningRequest(keys.keyPem, identity);
  return { key: keys.keyPem, cert: issueCertificate(pki, request), ca: pki.caCert };
}

/**
 * This server's key and certificate: kept in DATA_DIR/pki (the key 0600),
 * renewed in place once less than a third of its life is left. Emits
 * 'renewed' with the new material.
 */
export class NodeCertificates extends EventEmitter {
  private readonly dir: string;
  private material?: TlsMaterial;
  private timer?: NodeJS.Timeout;

  constructor(dataDir: string) {
    super();
    this.dir = path.join(dataDir, 'pki');
  }

  /** The material on disk, if any and complete. */
  load(): TlsMaterial | undefined {
    const read = (name: string) => {
      try {
        return fs.readFileSync(path.join(this.dir, name), 'utf8');
      } catch {
        return undefined;
      }
    };
    const [key, cert, ca] = [read('node.key'), read('node.crt'), read('ca.crt')];
    if (key && cert && ca) this.material = { key, cert, ca };
    return this.material;
  }

  /** The material in use; throws before any was loaded or saved. */
  current(): TlsMaterial {
    if (!this.material) throw new FlotillaError('NoCertificate', 'this server has no certificate');
    return this.material;
  }

  /** True when there is material, for the CA whose hash is `expectedCa` if given. */
  has(expectedCa?: string): boolean {
    if (!this.material) return false;
    return expectedCa === undefined || caHash(this.material.ca) === caHash(expectedCa);
  }

  /** True when the certificate is past its expiry at `now`. */
  expired(now = new Date()): boolean {
    return this.material ? certificateInfo(this.material.cert).notAfter <= now : true;
  }

  /** Writes new material (key first, 0600, each file replaced atomically) and uses it. */
  save(material: TlsMaterial): void {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeAtomically(path.join(this.dir, 'node.key'), material.key, 0o600);
    writeAtomically(path.join(this.dir, 'node.crt'), material.cert, 0o644);
    writeAtomically(path.join(this.dir, 'ca.crt'), material.ca, 0o644);
    const renewed = this.material !== undefined;
    this.material = material;
    if (renewed) this.emit('renewed', material);
  }

  /**
   * Checks the certificate's remaining life at a fraction of its lifetime
   * and renews it with `issue` (a new key each time) once less than a
   * third is left. A failed renewal is retried at the next check.
   */
  startRenewal(
    issue: (identity: NodeIdentity) => TlsMaterial,
    identity: NodeIdentity,
    logger: pino.Logger,
  ): void {
    const check = () => {
      this.timer = setTimeout(check, this.checkEveryMs());
      this.timer.unref();
      if (!this.material || !this.dueForRenewal()) return;
      try {
        const next = issue(identity);
        this.save(next);
        const info = certificateInfo(next.cert);
        logger.info({ serial: info.serialNumber, notAfter: info.notAfter }, 'certificate renewed');
      } catch (err) {
        logger.warn({ err }, 'certificate renewal failed; retrying');
      }
    };
    this.timer = setTimeout(check, this.checkEveryMs());
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  private dueForRenewal(now = Date.now()): boolean {
    const info = certificateInfo(this.current().cert);
    const life = info.notAfter.getTime() - info.notBefore.getTime();
    return info.notAfter.getTime() - now < life / 3;
  }

  private checkEveryMs(): number {
    if (!this.material) return RENEW_CHECK_MAX_MS;
    const info = certificateInfo(this.material.cert);
    const life = info.notAfter.getTime() - info.notBefore.getTime();
    return Math.max(200, Math.min(RENEW_CHECK_MAX_MS, life / 12));
  }
}

function writeAtomically(file: string, text: string, mode: number): void {
  const temp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temp, text, { mode });
  fs.chmodSync(temp, mode);
  fs.renameSync(temp, file);
}
