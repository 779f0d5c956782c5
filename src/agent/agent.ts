/**
 * One Flotilla server: the state database and its command log, the
 * controllers that act while this server leads, the kubelet that runs this
 * node's pods, the balancer, and the admin API. With one server the log
 * commits locally and this server always leads.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createActor, fromPromise, type Actor } from 'xstate';
import type pino from 'pino';
import { NODE_MACHINE_VERSION, nodeMachine } from '../actors/node';
import { SnapshotStore } from '../actors/snapshots';
import { ApiServer } from '../api/server';
import { FlotillaError } from '../errors';
import { openDatabase, type Database } from '../db/open';
import { Balancer } from '../lb/balancer';
import { TunnelDialer, serveTunnel, type TunnelServer } from '../lb/tunnel';
import { findBridgeGateway, serviceEnvironment } from '../lb/cluster-ip';
import type { Service } from '../manifest/types';
import { ROLE_ANNOTATION, newUid } from '../model/names';
import { isRemovedNode } from '../store/apply-nodes';
import type { BackoffSettings } from '../actors/pod';
import type { ContainerRuntime } from '../runtime/container-runtime';
import { DockerRuntime } from '../runtime/docker-runtime';
import {
  NodeCertificates,
  createClusterPki,
  readClusterPki,
  selfIssue,
  type ClusterPki,
  type NodeIdentity,
} from '../cluster/certificates';
import { ClusterNode } from '../cluster/cluster-node';
import { peerKey, readPeers } from '../cluster/state-snapshot';
import { Membership } from '../gossip/membership';
import type { RaftCommandLog } from '../cluster/raft-command-log';
import type { CommandLog } from '../store/command-log';
import { Store, type StoredObject } from '../store/store';
import { VERSION } from '../version';
import { DeploymentControllers } from './deployments';
import { EndpointsPublisher } from './endpoints';
import { EventRecorder } from './events';
import { Kubelet } from './kubelet';
import { LocalPodAddresses } from './local-pods';
import { NodeLifecycle } from './node-lifecycle';

/** How long a stopping agent lets requests through its tunnel finish. */
const TUNNEL_DRAIN_MS = 5000;

/** Everything an agent is configured with. */
export interface AgentConfig {
  dataDir: string;
  name?: string;
  /** HOST:PORT of the node's network listener; its host is the node's address. */
  listen?: string;
  containerLabels?: Record<string, string>;
  logger: pino.Logger;
  runtime?: ContainerRuntime;
  backoff?: BackoffSettings;
  /** HOST:PORT of a member to join; without it a new data directory founds a cluster. */
  join?: string;
  /** The cluster's join token, with `join`. */
  token?: string;
  /** Founders only: voters the cluster grows to before joiners become learners. */
  maxVoters?: number;
  /** How long a node must be dead before its pods are recreated elsewhere. */
  nodeGraceMs?: number;
}

/** A running agent. */
export class Agent {
  readonly config: AgentConfig;
  readonly socketPath: string;
  private db?: Database;
  private store?: Store;
  private kubelet?: Kubelet;
  private controllers?: DeploymentControllers;
  private endpoints?: EndpointsPublisher;
  private balancer?: Balancer;
  private api?: ApiServer;
  private nodeActor?: Actor<typeof nodeMachine>;
  private cluster?: ClusterNode;
  private membership?: Membership;
  private lifecycle?: NodeLifecycle;
  private certificates?: NodeCertificates;
  private tunnels: TunnelServer[] = [];
  private balancerEvents?: EventRecorder;
  /** The gossip key handed over with this server's certificate, before the log brings it. */
  private gossipKey?: string;
  /** Set when this start founded a cluster: the token others join with. */
  joinToken?: string;

  constructor(config: AgentConfig) {
    this.config = config;
    this.socketPath = path.join(config.dataDir, 'flotilla.sock');
  }

  /** Opens the state, restores the actors and starts serving. */
  async start(): Promise<void> {
    const { dataDir, logger } = this.config;
    if (await socketAnswers(this.socketPath)) {
      // Two agents on one database would both act, and the second would
      // take the first one's socket away.
      throw new AgentConfigError(`an agent is already running on ${dataDir}; stop it first`);
    }
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    if ((fs.statSync(dataDir).mode & 0o077) !== 0) {
      // It holds the node's key and the cluster's CA key.
      fs.chmodSync(dataDir, 0o700);
      logger.warn({ dataDir }, 'data directory was readable by others; now 0700');
    }
    const db = (this.db = openDatabase(path.join(dataDir, 'state.db')));
    const store = (this.store = new Store(db));
    const snapshots = new SnapshotStore(db);
    const identity = this.identity(store);
    const address = this.nodeAddress();
    const nodeLogger = logger.child({ nodeId: identity.nodeName });
    const log = await this.startCluster(store, identity, nodeLogger);

    const runtime = this.config.runtime ?? new DockerRuntime({ logger: nodeLogger });
    // Containers reach Services on the bridge gateway; a fake runtime has none.
    const clusterHost = this.config.runtime ? undefined : await findBridgeGateway();
    this.api?.useRuntime(runtime);
    // Pods on other servers are reached through their agent, over mutual TLS.
    const tunnel = this.config.listen
      ? new TunnelDialer({ tls: () => this.certificates!.current(), localAddress: address })
      : undefined;
    const balancer = (this.balancer = new Balancer({ logger: nodeLogger, tunnel }));
    const endpoints = (this.endpoints = new EndpointsPublisher({
      store,
      balancer,
      logger: nodeLogger.child({ component: 'endpoints' }),
      listenHost: this.balancerHost(),
      clusterHost,
      localNode: identity.nodeName,
      viaFor: (nodeName) => store.getMeta(peerKey(nodeName)),
      nodeName: identity.nodeName,
      events: (this.balancerEvents = new EventRecorder({
        log,
        logger: nodeLogger.child({ component: 'endpoints' }),
        component: 'flotilla-balancer',
        host: identity.nodeName,
      })),
    }));
    const localPods = new LocalPodAddresses(store, identity.nodeName);
    this.tunnels = this.api!.networkListeners.map((server) =>
      serveTunnel(server, {
        authorize: (host) => localPods.has(host),
        admitPeer: (member) => !isRemovedNode(store, member),
        logger: nodeLogger,
      }),
    );
    this.kubelet = new Kubelet({
      store,
      log,
      snapshots,
      runtime,
      logger: nodeLogger.child({ component: 'kubelet' }),
      clusterId: identity.clusterId,
      nodeName: identity.nodeName,
      nodeAddress: address,
      extraLabels: this.config.containerLabels,
      backoff: this.config.backoff,
      environmentFor: () =>
        clusterHost ? serviceEnvironment(store.list<Service>('Service'), clusterHost) : [],
      drain: (ctx) => this.drainEverywhere(ctx.pod.name, ctx.pod.terminationGracePeriodSeconds),
    });
    this.controllers = new DeploymentControllers({
      store,
      log,
      snapshots,
      logger: nodeLogger.child({ component: 'controller' }),
    });

    this.cluster!.onDrain = (request) =>
      this.drainHere(request.endpoint, request.index, request.timeoutMs);
    await this.startNodeActor(identity.nodeName, address, log, snapshots);
    await this.startGossip(store, log, identity.nodeName, nodeLogger);
    await endpoints.start();
    await this.kubelet.start();
    this.followLeadership(log, this.controllers);

    await this.api!.listenUnix(this.socketPath);
    nodeLogger.info(
      { socket: this.socketPath, clusterId: identity.clusterId, address, version: VERSION },
      'agent ready',
    );
  }

  /** Stops serving; containers keep running for the next start to adopt. */
  async stop(): Promise<void> {
    // Other servers' requests to this node's pods end before their tunnels do.
    await Promise.all(this.tunnels.map((t) => t.drain(TUNNEL_DRAIN_MS)));
    await this.api?.close();
    this.certificates?.stop();
    this.lifecycle?.stop();
    await this.membership?.stop();
    await this.cluster?.stop();
    this.controllers?.stop();
    this.kubelet?.stop();
    this.endpoints?.stop();
    this.balancerEvents?.discard();
    this.nodeActor?.stop();
    await this.balancer?.close();
    this.db?.close();
  }

  /**
   * Founds, joins or resumes the cluster, with the admin API already
   * listening on --listen: the cluster's endpoints share that listener, and
   * a joining server must be reachable before it asks to be added.
   */
  private async startCluster(
    store: Store,
    identity: { clusterId: string; nodeName: string },
    nodeLogger: pino.Logger,
  ): Promise<RaftCommandLog> {
    const { listen, join, token, maxVoters } = this.config;
    const port = listen ? splitHostPort(listen).port : 0;
    const certificates = (this.certificates = new NodeCertificates(this.config.dataDir));
    certificates.load();
    const cluster = (this.cluster = new ClusterNode({
      store,
      nodeId: identity.nodeName,
      address: listen ? `${this.nodeAddress()}:${port}` : '',
      logger: nodeLogger.child({ component: 'raft' }),
      tls: () => certificates.current(),
    }));
    this.api = new ApiServer({
      store,
      log: cluster.log,
      logger: nodeLogger.child({ component: 'api' }),
      decorateNode: (node) => withRole(node, cluster.roleOf(node.metadata.name)),
      metrics: () => this.balancer?.metrics() ?? {},
      nodeName: identity.nodeName,
      nodeAddress: this.nodeAddress(),
    });
    cluster.mount(this.api);
    const founding = cluster.isFresh() && !join ? createClusterPki(identity.clusterId) : undefined;
    const names = this.certificateNames(identity.nodeName);
    if (listen) {
      try {
        await this.ensureCertificate(cluster, certificates, founding, names);
      } catch (err) {
        await cluster.stop();
        throw err;
      }
      await this.api.listenTcp(
        splitHostPort(listen).host || '0.0.0.0',
        port,
        certificates.current(),
      );
      certificates.on('renewed', (material) => this.api?.updateTls(material));
    }

    const started = await cluster
      .start({ clusterId: identity.clusterId, join, token, maxVoters, pki: founding })
      .catch(async (err: unknown) => {
        // A refused join must end the process: release what keeps it alive.
        await this.api?.close();
        await cluster.stop();
        throw err;
      });
    if (started.clusterId !== identity.clusterId) {
      store.setMeta('cluster_id', started.clusterId);
      identity.clusterId = started.clusterId;
    }
    if (listen) {
      const issue = (names: NodeIdentity) => {
        const pki = readClusterPki(store);
        if (!pki) throw new AgentConfigError('the cluster CA has not reached this server yet');
        // A removed server must not keep itself a member by renewing.
        if (isRemovedNode(store, names.name)) {
          throw new AgentConfigError('this server was removed from the cluster');
        }
        return selfIssue(pki, names);
      };
      certificates.startRenewal(issue, names, nodeLogger.child({ component: 'pki' }));
    }
    this.joinToken = started.newToken;
    return cluster.log;
  }

  /**
   * Makes sure this server has a certificate before it listens: a founder
   * signs its own with the new CA; a joiner gets one with its join token; a
   * member keeps its own, or signs a new one with the CA in its state when
   * it lost or outlived it (a long stop), or certifies again with --token.
   */
  private async ensureCertificate(
    cluster: ClusterNode,
    certificates: NodeCertificates,
    founding: ClusterPki | undefined,
    names: NodeIdentity,
  ): Promise<void> {
    const { join, token } = this.config;
    if (founding) return certificates.save(selfIssue(founding, names));
    const pki = cluster.isFresh() ? undefined : readClusterPki(this.store!);
    const usable = certificates.has(pki?.caCert) && !certificates.expired();
    if (usable && !cluster.isFresh()) return;
    if (pki) return certificates.save(selfIssue(pki, names));
    if (join && token) {
      const got = await cluster.certify(join, token, names);
      this.gossipKey = got.gossipKey;
      return certificates.save(got.material);
    }
    throw new AgentConfigError(
      `${this.config.dataDir} has no usable certificate and no cluster CA: ` +
        'start it with --join ADDRESS --token TOKEN',
    );
  }

  /** The names this server's certificate carries: its node name, host name and addresses. */
  private certificateNames(nodeName: string): NodeIdentity {
    const listenHost = this.config.listen ? splitHostPort(this.config.listen).host : '';
    const ips = new Set<string>();
    const names = new Set<string>([nodeName]);
    // --listen may name the host rather than give its address.
    if (net.isIP(this.nodeAddress()) !== 0) ips.add(this.nodeAddress());
    else names.add(this.nodeAddress().toLowerCase());
    if (listenHost === '' || listenHost === '0.0.0.0' || listenHost === '::') {
      for (const list of Object.values(os.networkInterfaces())) {
        for (const a of list ?? []) if (!a.address.startsWith('fe80')) ips.add(a.address);
      }
    }
    const host = os.hostname().toLowerCase();
    if (/^[a-z0-9.-]+$/.test(host)) names.add(host);
    return { name: nodeName, ips: [...ips].slice(0, 16), dnsNames: [...names].slice(0, 16) };
  }

  /**
   * Fencing: the controllers act only while this server leads with a valid
   * lease, and stop as soon as the lease lapses (within an election timeout).
   */
  private followLeadership(log: RaftCommandLog, controllers: DeploymentControllers): void {
    const follow = (leading: boolean) => (leading ? controllers.start() : controllers.stop());
    log.on('leading', follow);
    follow(log.isLeader());
  }

  /**
   * Before a pod's container gets SIGTERM, every node's balancer must stop
   * picking it and finish what it sent there: this node's and, through the
   * cluster, every other Ready member's. Members marked NotReady are skipped.
   */
  private async drainEverywhere(podName: string, graceSeconds: number): Promise<void> {
    const store = this.store!;
    const pod = store.get('Pod', podName);
    const index = Number(pod?.metadata.resourceVersion ?? 0);
    const timeoutMs = graceSeconds * 1000;
    const notReady = (name: string) => {
      const node = store.get<{ status?: { conditions?: { type: string; status: string }[] } }>(
        'Node',
        name,
      );
      return (
        node?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'False') ?? false
      );
    };
    await Promise.all([
      this.drainHere(podName, index, timeoutMs),
      this.cluster?.drainPeers({ endpoint: podName, index, timeoutMs }, notReady),
    ]);
  }

  /**
   * Waits until this node has applied `index`, its balancer has seen it,
   * and `endpoint` is idle.
   */
  private async drainHere(endpoint: string, index: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const applied = () => Number(this.store?.getMeta('applied_index') ?? 0);
    while (applied() < index && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await this.endpoints?.flush();
    await this.balancer?.waitIdle(endpoint, Math.max(0, deadline - Date.now()));
  }

  /**
   * Gossip tells every node within seconds that a member is gone; the
   * leader's NodeLifecycle then marks it NotReady (every balancer drops its
   * pods) and, after the grace period, removes its pods so that they are
   * recreated elsewhere. Gossip shares the --listen port number over UDP
   * and signs its datagrams with the cluster's gossip key.
   */
  private async startGossip(
    store: Store,
    log: RaftCommandLog,
    nodeName: string,
    logger: pino.Logger,
  ) {
    const secret = this.gossipKey ?? store.getMeta('gossip_key');
    if (!this.config.listen || !secret) {
      logger.warn('gossip is off: it needs --listen and the cluster gossip key');
      return;
    }
    const address = this.nodeAddress();
    const { port } = splitHostPort(this.config.listen);
    const membership = (this.membership = new Membership({
      name: nodeName,
      host: address,
      port,
      secret,
      logger: logger.child({ component: 'gossip' }),
    }));
    await membership.start();
    const self = `${address}:${port}`;
    const seeds = [...readPeers(store).values(), ...(this.config.join ? [this.config.join] : [])];
    membership.join(seeds.filter((a) => a !== self));

    const lifecycle = (this.lifecycle = new NodeLifecycle({
      store,
      log,
      logger: logger.child({ component: 'lifecycle' }),
      graceMs: this.config.nodeGraceMs,
    }));
    membership.on('dead', (e: { name: string }) => lifecycle.memberDead(e.name));
    membership.on('alive', (e: { name: string }) => lifecycle.memberAlive(e.name));
    const follow = (leading: boolean) => {
      if (!leading) return lifecycle.stop();
      lifecycle.start();
      // A new leader catches up on deaths it did not see as leader.
      lifecycle.syncMembers(membership.members(), nodeName);
    };
    log.on('leading', follow);
    follow(log.isLeader());
  }

  /** Cluster id and node name, fixed when the data directory is first used. */
  private identity(store: Store): { clusterId: string; nodeName: string } {
    let clusterId = store.getMeta('cluster_id');
    let nodeName = store.getMeta('node_name');
    const wanted = this.config.name;
    if (nodeName && wanted && wanted !== nodeName) {
      throw new AgentConfigError(
        `${this.config.dataDir} belongs to node "${nodeName}"; start it with --name ${nodeName} ` +
          'or use another --data-dir',
      );
    }
    if (!clusterId || !nodeName) {
      clusterId = clusterId ?? newUid();
      nodeName = nodeName ?? wanted ?? os.hostname().toLowerCase();
      store.db.transaction(() => {
        store.setMeta('cluster_id', clusterId as string);
        store.setMeta('node_name', nodeName as string);
      })();
    }
    return { clusterId, nodeName };
  }

  private nodeAddress(): string {
    const host = this.config.listen ? splitHostPort(this.config.listen).host : '';
    return host && host !== '0.0.0.0' ? host : '127.0.0.1';
  }

  private balancerHost(): string {
    return this.config.listen ? splitHostPort(this.config.listen).host || '0.0.0.0' : '0.0.0.0';
  }

  private async startNodeActor(
    name: string,
    address: string,
    log: CommandLog,
    snapshots: SnapshotStore,
  ): Promise<void> {
    const machine = nodeMachine.provide({
      actors: {
        register: fromPromise(
          async ({ input }: { input: { name: string; ready: boolean; reason?: string } }) => {
            await log.propose({
              op: 'registerNode',
              node: selfNode(input.name, address, input.ready, input.reason),
              uid: newUid(),
              now: new Date().toISOString(),
            });
          },
        ),
      },
    });
    const id = `node/${name}`;
    const snapshot = snapshots.load(id, 'node', NODE_MACHINE_VERSION);
    const actor = createActor(machine, {
      input: { name },
      ...(snapshot ? { snapshot: snapshot as never } : {}),
    });
    actor.subscribe(() =>
      snapshots.save(id, 'node', NODE_MACHINE_VERSION, actor.getPersistedSnapshot()),
    );
    actor.start();
    // After a restart the node registers again: capacity or address may differ.
    if (actor.getSnapshot().matches('ready')) actor.send({ type: 'REFRESH' });
    this.nodeActor = actor;
    await new Promise<void>((resolve) => {
      const sub = actor.subscribe((s) => {
        if (s.matches('ready')) {
          sub.unsubscribe();
          resolve();
        }
      });
      if (actor.getSnapshot().matches('ready')) resolve();
    });
  }
}

/** Returned for a configuration that cannot work (a data dir of another node). */
export class AgentConfigError extends FlotillaError {
  constructor(message: string) {
    super('AgentConfigInvalid', message, 400);
  }
}

function selfNode(name: string, address: string, ready: boolean, reason?: string) {
  const cpus = String(os.cpus().length);
  const memory = `${Math.floor(os.totalmem() / 1024)}Ki`;
  return {
    metadata: {
      name,
      labels: {
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': process.platform,
        'kubernetes.io/arch': process.arch === 'x64' ? 'amd64' : process.arch,
      },
      uid: '',
      resourceVersion: '',
      creationTimestamp: '',
    },
    status: {
      conditions: [
        {
          type: 'Ready',
          status: ready ? ('True' as const) : ('False' as const),
          reason: ready ? 'FlotillaReady' : 'NodeStatusUnknown',
          message: ready ? 'flotilla agent is ready' : (reason ?? 'node stopped reporting'),
        },
      ],
      addresses: [
        { type: 'InternalIP', address },
        { type: 'Hostname', address: name },
      ],
      capacity: { cpu: cpus, memory, pods: '110' },
      allocatable: { cpu: cpus, memory, pods: '110' },
      nodeInfo: {
        kubeletVersion: `v${VERSION}`,
        containerRuntimeVersion: 'docker',
        osImage: os.type(),
      },
    },
  };
}

function withRole(node: StoredObject, role: string): StoredObject {
  const metadata = node.metadata as StoredObject['metadata'] & {
    annotations?: Record<string, string>;
  };
  return {
    ...node,
    metadata: {
      ...metadata,
      annotations: { ...(metadata.annotations ?? {}), [ROLE_ANNOTATION]: role },
    },
  };
}

/** True when something accepts connections on the unix socket at `file`. */
function socketAnswers(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    if (!fs.existsSync(file)) return resolve(false);
    const socket = net.connect(file);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Splits "host:port" or "[v6]:port". */
export function splitHostPort(text: string): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(text);
  if (!m) return { host: text, port: 0 };
  return { host: m[1], port: Number(m[2]) };
}
