import type { ClientIpAffinity, Endpoint } from './types';

/** Milliseconds since some fixed point; injected so tests control time. */
export type Clock = () => number;

interface Stickiness {
  endpointId: string;
  expiresAt: number;
}

// Past this many remembered clients, expired entries are swept on insert.
const STICKY_SWEEP_SIZE = 4096;

/** The address an endpoint is reached at, used to key passive health. */
export function endpointAddress(endpoint: Endpoint): string {
  // Pods on different servers may share a bridge address: the tunnel tells them apart.
  const base = `${endpoint.host}:${endpoint.port}`;
  return endpoint.via ? `${base} via ${endpoint.via}` : base;
}

/**
 * Chooses the endpoint for each new request or connection of one service
 * port: round robin over non-terminating endpoints, sticky per client
 * address when affinity is on, skipping endpoints recently ejected for
 * refusing connections. Pure apart from the injected clock.
 */
export class EndpointPicker {
  private ready: Endpoint[] = [];
  private next = 0;
  private affinityMs = 0;
  private readonly ejectedUntil = new Map<string, number>();
  private readonly sticky = new Map<string, Stickiness>();

  constructor(
    private readonly clock: Clock,
    private readonly ejectMs: number,
  ) {}

  /** How many endpoints may get new requests. */
  get readyCount(): number {
    return this.ready.length;
  }

  /** Replaces the endpoint set; stickiness to a vanished endpoint is dropped. */
  update(endpoints: Endpoint[], affinity?: ClientIpAffinity): void {
    this.ready = endpoints.filter((e) => !e.terminating);
    this.affinityMs = affinity ? affinity.timeoutSeconds * 1000 : 0;

    const ids = new Set(this.ready.map((e) => e.id));
    for (const [client, s] of this.sticky) {
      if (this.affinityMs === 0 || !ids.has(s.endpointId)) this.sticky.delete(client);
    }
    const addresses = new Set(this.ready.map(endpointAddress));
    for (const address of this.ejectedUntil.keys()) {
      if (!addresses.has(address)) this.ejectedUntil.delete(address);
    }
  }

  /** The endpoint for a new request from `clientIp`, never `exclude`. */
  pick(clientIp: string, exclude?: Endpoint): Endpoint | undefined {
    const now = this.clock();
    const stuck = this.pickSticky(clientIp, now, exclude);
    if (stuck) return stuck;

    const endpoint = this.pickRoundRobin(now, exclude);
    if (endpoint && this.affinityMs > 0) this.stick(clientIp, endpoint, now);
    return endpoint;
  }

  /** Keeps new requests off `endpoint` for a while; true if it was not already. */
  eject(endpoint: Endpoint): boolean {
    const now = this.clock();
    const address = endpointAddress(endpoint);
    const wasEjected = this.isEjected(address, now);
    this.ejectedUntil.set(address, now + this.ejectMs);
    return !wasEjected;
  }

  private pickSticky(clientIp: string, now: number, exclude?: Endpoint): Endpoint | undefined {
    if (this.affinityMs === 0) return undefined;
    const s = this.sticky.get(clientIp);
    if (!s || s.expiresAt <= now) return undefined;

    const endpoint = this.ready.find((e) => e.id === s.endpointId);
    if (!endpoint) return undefined;
    if (exclude && endpointAddress(endpoint) === endpointAddress(exclude)) return undefined;
    if (this.isEjected(endpointAddress(endpoint), now)) return undefined;
    s.expiresAt = now + this.affinityMs;
    return endpoint;
  }

  private pickRoundRobin(now: number, exclude?: Endpoint): Endpoint | undefined {
    const n = this.ready.length;
    const skip = exclude ? endpointAddress(exclude) : undefined;
    let fallback: Endpoint | undefined;
    for (let i = 0; i < n; i++) {
      const index = (this.next + i) % n;
      const endpoint = this.ready[index];
      const address = endpointAddress(endpoint);
      if (address === skip) continue;
      if (this.isEjected(address, now)) {
        fallback ??= endpoint;
        continue;
      }
      this.next = (index + 1) % n;
      return endpoint;
    }
    // Every candidate is ejected: trying one beats refusing the client.
    return fallback;
  }

  private stick(clientIp: string, endpoint: Endpoint, now: number): void {
    if (this.sticky.size >= STICKY_SWEEP_SIZE) {
      for (const [client, s] of this.sticky) {
        if (s.expiresAt <= now) this.sticky.delete(client);
      }
    }
    this.sticky.set(clientIp, { endpointId: endpoint.id, expiresAt: now + this.affinityMs });
  }

  private isEjected(address: string, now: number): boolean {
    const until = this.ejectedUntil.get(address);
    return until !== undefined && until > now;
  }
}
