/**
 * The cluster certificate authority's public surface: key pairs, the cluster CA, node
 * signing requests and the certificates issued for mutual TLS between servers.
 */
export {
  caHash,
  certificateInfo,
  createCa,
  createSigningRequest,
  generateKeyPair,
  issuedBy,
  signCertificate,
  verifySigningRequest,
} from './certificates';
export type { CaPem, KeyPairPem, SigningRequest } from './certificates';
