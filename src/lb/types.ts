import type { Socket } from 'node:net';

/** One backend: a pod's address for one service port. */
export interface Endpoint {
  /** The pod name; `waitIdle` is keyed on it. */
  id: string;
  host: string;
  port: number;
  nodeName: string;
  /** Terminating endpoints get no new requests; in-flight ones finish. */
  terminating?: boolean;
  /**
   * "HOST:PORT" of the agent of the endpoint's node when that is another
   * node: `host` is then only reachable through that agent's tunnel.
   */
  via?: string;
}

/** Opens connections to endpoints on other nodes (see TunnelDialer). */
export interface TunnelPort {
  /** A socket to `host:port` through the agent at `via`, ready for the pod's protocol. */
  dial(via: string, host: string, port: number, timeoutMs: number): Promise<Socket>;
}

/** How a listener forwards: as an HTTP/1.1 reverse proxy or as byte pipes. */
export type BalancedMode = 'http' | 'tcp';

/** A PROXY protocol version sent to backends ahead of the client's bytes. */
export type ProxyProtocolVersion = 'v1' | 'v2';

/** One address the balancer listens on. */
export interface ListenAddress {
  host: string;
  port: number;
}

/** One service port: where to listen and which endpoints to forward to. */
export interface BalancedPort {
  /** The service port name, or "" for an unnamed single port. */
  name: string;
  mode: BalancedMode;
  listen: ListenAddress[];
  endpoints: Endpoint[];
  /**
   * When set, every backend connection starts with a PROXY header naming
   * the client; HTTP mode then gives each client connection backend
   * connections of its own instead of the shared keep-alive pool.
   */
  proxyProtocol?: ProxyProtocolVersion;
}

/** Session affinity keyed on the client's TCP peer address. */
export interface ClientIpAffinity {
  type: 'ClientIP';
  timeoutSeconds: number;
}

/** Everything the balancer needs to serve one Service on this node. */
export interface BalancedService {
  /** "namespace/name", e.g. "default/awesome-product". */
  key: string;
  ports: BalancedPort[];
  affinity?: ClientIpAffinity;
}

/**
 * Every time limit the balancer applies. Nothing else cuts a connection:
 * a slow upload or a long response runs as long as both sides keep it open.
 */
export interface BalancerTimeouts {
  /** A client must send a complete request head within this (slowloris). */
  headersMs: number;
  /** An idle client keep-alive connection is closed after this. */
  keepAliveMs: number;
  /** Connecting to a backend fails after this; the request may be retried. */
  connectMs: number;
  /** A pooled idle backend connection is closed after this. */
  backendIdleMs: number;
  /** A backend must start its response within this; 0 waits forever. */
  responseHeadersMs: number;
  /** A backend that refused a connection gets no requests for this long. */
  ejectMs: number;
}

/** Defaults for `BalancerTimeouts`, in milliseconds. */
export const DEFAULT_TIMEOUTS: Readonly<BalancerTimeouts> = Object.freeze({
  headersMs: 10_000,
  keepAliveMs: 60_000,
  connectMs: 5_000,
  // Below the 5 s keep-alive of common backends, so that the backend is
  // not the one closing a connection we are about to reuse.
  backendIdleMs: 4_000,
  responseHeadersMs: 0,
  ejectMs: 5_000,
});

/** Size limits the balancer applies. */
export interface BalancerLimits {
  /** Largest request head accepted from a client; larger gets 431. */
  maxHeaderBytes: number;
  /** Most connections kept open to one endpoint for one service port. */
  maxConnectionsPerEndpoint: number;
}

/** Defaults for `BalancerLimits`. */
export const DEFAULT_LIMITS: Readonly<BalancerLimits> = Object.freeze({
  maxHeaderBytes: 16 * 1024,
  maxConnectionsPerEndpoint: 128,
});

/** A listener that is open after a sync. */
export interface BoundListener {
  key: string;
  portName: string;
  mode: BalancedMode;
  host: string;
  /** The port asked for; 0 means any. */
  port: number;
  /** The port actually bound. */
  boundPort: number;
}

/** A listener that could not be opened; the next sync tries again. */
export interface ListenerFailure {
  key: string;
  portName: string;
  host: string;
  port: number;
  /** The system error code, e.g. EADDRINUSE or EACCES. */
  code: string;
  error: string;
}

/** What `Balancer.sync` did. */
export interface SyncReport {
  listeners: BoundListener[];
  failed: ListenerFailure[];
}

/** Latency histogram: `counts[i]` requests took at most `boundsMs[i]`. */
export interface LatencyHistogram {
  /** Upper bounds in milliseconds; `counts` has one more slot for the rest. */
  boundsMs: number[];
  counts: number[];
  sumMs: number;
}

/** Counters for one service, summed over its ports and listeners. */
export interface ServiceMetrics {
  /** HTTP requests and TCP connections accepted. */
  requests: number;
  /** Requests answered 502/503 by the balancer, or TCP pipes that failed. */
  errors: number;
  /** Client connections open now. */
  activeConnections: number;
  /** Time from request head to the end of the response (HTTP only). */
  latency: LatencyHistogram;
}
