/**
 * Placement: which node each unplaced pod goes to. Pure. Filters nodes that
 * can take the pod (schedulable, Ready, matching its nodeSelector, with room
 * for its requests), then prefers the node with the fewest pods of the same
 * Deployment, then the fewest pods overall, then the name, so that replicas
 * spread evenly and the choice is deterministic.
 */

/** What placement knows about a node. */
export interface NodeView {
  name: string;
  labels: Record<string, string>;
  ready: boolean;
  unschedulable: boolean;
  /** Allocatable CPU in millicores and memory in bytes. */
  cpuMilli: number;
  memoryBytes: number;
}

/** What placement knows about a pod, placed or not. */
export interface PodRequest {
  name: string;
  uid: string;
  /** Pods of one Deployment are spread apart. */
  group: string;
  nodeName?: string;
  cpuMilli: number;
  memoryBytes: number;
  nodeSelector?: Record<string, string>;
}

/** One decision: a node, or why there is none. */
export type Placement =
  | { name: string; uid: string; nodeName: string }
  | { name: string; uid: string; unschedulable: string };

interface Load {
  pods: number;
  cpuMilli: number;
  memoryBytes: number;
  byGroup: Map<string, number>;
}

/** Places every pod of `pending` on `nodes`, given the pods already placed. */
export function placePods(nodes: NodeView[], placed: PodRequest[], pending: PodRequest[]): Placement[] {
  const load = new Map<string, Load>();
  for (const node of nodes) load.set(node.name, { pods: 0, cpuMilli: 0, memoryBytes: 0, byGroup: new Map() });
  for (const pod of placed) if (pod.nodeName) addLoad(load.get(pod.nodeName), pod);

  return pending.map((pod) => {
    const { fits, reasons } = feasibleNodes(nodes, load, pod);
    if (fits.length === 0) {
      return { name: pod.name, uid: pod.uid, unschedulable: describeReasons(nodes.length, reasons) };
    }
    const best = fits.sort((a, b) => compareNodes(load, pod.group, a, b))[0];
    addLoad(load.get(best.name), pod);
    return { name: pod.name, uid: pod.uid, nodeName: best.name };
  });
}

function addLoad(load: Load | undefined, pod: PodRequest): void {
  if (!load) return;
  load.pods += 1;
  load.cpuMilli += pod.cpuMilli;
  load.memoryBytes += pod.memoryBytes;
  load.byGroup.set(pod.group, (load.byGroup.get(pod.group) ?? 0) + 1);
}

function feasibleNodes(nodes: NodeView[], load: Map<string, Load>, pod: PodRequest) {
  const reasons = new Map<string, number>();
  const fits: NodeView[] = [];
  const count = (reason: string) => reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
  for (const node of nodes) {
    const used = load.get(node.name) as Load;
    if (!node.ready) count('node(s) were not ready');
    else if (node.unschedulable) count('node(s) were unschedulable');
    else if (!selectorMatches(pod.nodeSelector, node.labels)) count("node(s) didn't match Pod's node affinity/selector");
    else if (used.cpuMilli + pod.cpuMilli > node.cpuMilli) count('Insufficient cpu');
    else if (used.memoryBytes + pod.memoryBytes > node.memoryBytes) count('Insufficient memory');
    else fits.push(node);
  }
  return { fits, reasons };
}

function selectorMatches(selector: Record<string, string> | undefined, labels: Record<string, string>) {
  return Object.entries(selector ?? {}).every(([k, v]) => labels[k] === v);
}

function compareNodes(load: Map<string, Load>, group: string, a: NodeView, b: NodeView): number {
  const la = load.get(a.name) as Load;
  const lb = load.get(b.name) as Load;
  const ga = la.byGroup.get(group) ?? 0;
  const gb = lb.byGroup.get(group) ?? 0;
  if (ga !== gb) return ga - gb;
  if (la.pods !== lb.pods) return la.pods - lb.pods;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** Kubernetes' wording: "0/3 nodes are available: 2 Insufficient cpu, ...". */
function describeReasons(total: number, reasons: Map<string, number>): string {
  const parts = [...reasons.entries()].map(([reason, n]) => `${n} ${reason}`);
  return `0/${total} nodes are available${parts.length ? ': ' + parts.join(', ') : ''}.`;
}
