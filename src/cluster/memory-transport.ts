/**
 * An in-memory network for whole-cluster tests in one process: messages and
 * calls are delivered on later turns of the event loop (never re-entrantly),
 * and a test can cut a member off to simulate a crash or a partition.
 */
import { PeerUnreachableError } from '../errors';
import type { Message } from '../raft';
import type { CallPath, ClusterEndpoint, ClusterTransport } from './transport';

/** Connects the memory transports of one test cluster. */
export class MemoryNetwork {
  private readonly endpoints = new Map<string, ClusterEndpoint>();
  /** Members that neither send nor receive. */
  private readonly cut = new Set<string>();

  /** A transport for the member `id`, which listens at address `id`. */
  transport(id: string): MemoryTransport {
    return new MemoryTransport(this, id);
  }

  /** Registers the member answering at `id`. */
  attach(id: string, endpoint: ClusterEndpoint): void {
    this.endpoints.set(id, endpoint);
  }

  /** Cuts `id` off from everyone, or reconnects it. */
  setCut(id: string, cut: boolean): void {
    if (cut) this.cut.add(id);
    else this.cut.delete(id);
  }

  /** Delivers messages later unless either side is cut off. */
  deliver(from: string, messages: Message[]): void {
    for (const m of messages) {
      setImmediate(() => {
        const to = this.endpoints.get(m.to);
        if (!to || this.cut.has(from) || this.cut.has(m.to)) return;
        to.receive(from, from, [m]);
      });
    }
  }

  /** Serves a call on `to`, failing like a refused connection when cut off. */
  async call(from: string, to: string, path: CallPath, body: unknown): Promise<unknown> {
    await new Promise((resolve) => setImmediate(resolve));
    const endpoint = this.endpoints.get(to);
    if (!endpoint || this.cut.has(from) || this.cut.has(to)) {
      throw new PeerUnreachableError(`cannot reach ${to}`);
    }
    return endpoint.serve(path, JSON.parse(JSON.stringify(body)));
  }
}

/** One member's view of a MemoryNetwork; addresses are member ids. */
export class MemoryTransport implements ClusterTransport {
  private readonly network: MemoryNetwork;
  private readonly self: string;

  constructor(network: MemoryNetwork, self: string) {
    this.network = network;
    this.self = self;
  }

  send(messages: Message[]): void {
    this.network.deliver(this.self, messages);
  }

  call(to: string, path: CallPath, body: unknown): Promise<unknown> {
    return this.network.call(this.self, to, path, body);
  }

  callAddress(address: string, path: CallPath, body: unknown): Promise<unknown> {
    return this.network.call(this.self, address, path, body);
  }

  /** The memory network has no TLS: the callee checks the token's CA hash. */
  certify(address: string, _caHash: string, body: unknown): Promise<unknown> {
    return this.network.call(this.self, address, 'certify', body);
  }

  setPeer(): void {}

  peerAddress(id: string): string {
    return id;
  }

  async close(): Promise<void> {}
}
