/**
 * The container addresses of the pods placed on this node, which is what
 * other servers' balancers may reach through this node's tunnel: nothing
 * else on this host or its networks. Kept as a set, rebuilt lazily after
 * pods change, because every tunnel connection asks.
 */
import type { Pod } from '../model/types';
import type { Change, Store } from '../store/store';

export class LocalPodAddresses {
  private readonly store: Store;
  private readonly nodeName: string;
  private addresses?: Set<string>;

  constructor(store: Store, nodeName: string) {
    this.store = store;
    this.nodeName = nodeName;
    store.on('change', (changes: Change[]) => {
      if (changes.some((c) => c.kind === 'Pod')) this.addresses = undefined;
    });
  }

  /** True when `ip` is the address of a pod that runs on this node. */
  has(ip: string): boolean {
    if (!this.addresses) {
      this.addresses = new Set();
      for (const pod of this.store.list<Pod>('Pod')) {
        if (pod.spec.nodeName === this.nodeName && pod.status?.podIP) {
          this.addresses.add(pod.status.podIP);
        }
      }
    }
    return this.addresses.has(ip);
  }
}
