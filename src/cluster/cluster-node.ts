/**
 * One server's membership in the cluster: it founds a cluster (with its CA
 * and first join token) or joins one (certify with a token, then join),
 * serves the cluster's HTTP endpoints (Raft messages, forwarded proposals,
 * certify, joins, drains) to callers holding a cluster certificate, and
 * reports each member's role. The replicated log itself is the
 * RaftCommandLog; the token routes are in token-routes.ts.
 */
import type http from 'node:http';
import type tls from 'node:tls';
import type pino from 'pino';
import {
  ConflictError,
  FlotillaError,
  InvalidError,
  JoinRefusedError,
  NodeRemovedError,
  NoQuorumError,
  NotFoundError,
} from '../errors';
import type { ApiServer } from '../api/server';
import type { MembershipChange, Message } from '../raft';
import type { Node } from '../model/types';
import { isRemovedNode } from '../store/apply-nodes';
import type { Store } from '../store/store';
import { peerCommonName } from '../auth/access';
import { checkToken, tokenRecord } from '../auth/tokens';
import { newToken, parseToken } from '../auth/token-format';
import { caHash, createSigningRequest, generateKeyPair, verifySigningRequest } from '../pki';
import {
  createClusterPki,
  issueCertificate,
  readClusterPki,
  type ClusterPki,
  type NodeIdentity,
  type TlsMaterial,
} from './certificates';
import type { CertifyAnswer } from './certify';
import { readJson, sendJson, statusBody } from './http-json';
import { TOKENS_PATH, serveTokens } from './token-routes';
import { CLUSTER_PREFIX, HttpTransport } from './http-transport';
import { RaftCommandLog, type RaftTiming } from './raft-command-log';
import { peerKey } from './state-snapshot';
import type { CallPath, ClusterEndpoint, ClusterTransport } from './transport';
import { planVoterChange, type MemberHealth } from './voter-plan';
import { errorToWire, messageFromJson, type MessageBatch } from './wire';

/** Voters a new cluster grows to unless --voters says otherwise. */
export const DEFAULT_MAX_VOTERS = 3;
/** The admin route prefix of `POST .../nodes/NAME/remove`. */
export const NODES_PATH = '/apis/flotilla.io/v1/nodes/';
/** How long a voter stays dead before a Ready non-voter takes its place. */
export const DEFAULT_PROMOTE_AFTER_MS = 30_000;
const MAX_BODY_BYTES = 64 * 1024 * 1024;
const FOUNDING_TOKEN_TTL_MS = 24 * 3600 * 1000;
/** A certify call (token and signing request) comes from anyone: keep what it may cost small. */
const MAX_CERTIFY_BYTES = 16 * 1024;
const MEMBERSHIP_CHECK_MS = 500;
const REMOVAL_WAIT_MS = 10_000;
const JOIN_PATIENCE_MS = 60_000;

/** A member's role as `get nodes` shows it. */
export type MemberRole = 'leader' | 'voter' | 'non-voter';

/** What a ClusterNode needs. */
export interface ClusterNodeOptions {
  store: Store;
  nodeId: string;
  /** HOST:PORT other members reach this one at; '' for a server without a listener. */
  address: string;
  logger: pino.Logger;
  /** Defaults to HTTPS with `tls`; tests pass a memory transport. */
  transport?: ClusterTransport;
  /** This server's TLS material (needed by the default transport). */
  tls?: () => TlsMaterial;
  timing?: Partial<RaftTiming>;
  /** How long a voter stays dead before it is replaced (default 30 s). */
  promoteAfterMs?: number;
}

/** An endpoint that is going away, and the log index that says so. */
export interface DrainRequest {
  /** The endpoint id: the pod's name. */
  endpoint: string;
  /** The caller's resourceVersion of the pod; the callee waits to have applied it. */
  index: number;
  timeoutMs: number;
}

/** How to start: found a cluster, or join the member at `join`. */
export interface ClusterStart {
  clusterId: string;
  join?: string;
  /** A join token; used to certify first unless `certify` already ran. */
  token?: string;
  /** Founders only: the cluster secrets made before listening (default: new ones). */
  pki?: ClusterPki;
  /** Founders only: how many voters the cluster grows to (3 to 5). */
  maxVoters?: number;
}

/** What starting found out. */
export interface ClusterStarted {
  /** The cluster's id: the founder's, or the one the joined cluster answered. */
  clusterId: string;
  /** Set when this server founded the cluster just now: print it once. */
  newToken?: string;
}

interface JoinRequest {
  name: string;
  address: string;
  /** True when the joiner holds no Raft state (new, or its data was wiped). */
  fresh?: boolean;
}

/** What a joining server sends to get its certificate. */
interface CertifyRequest {
  token: string;
  /** HOST:PORT the server will listen on. */
  address: string;
  request: unknown;
}

/** One server's membership; the endpoint other members talk to. */
export class ClusterNode implements ClusterEndpoint {
  readonly log: RaftCommandLog;
  private readonly opts: ClusterNodeOptions;
  private readonly transport: ClusterTransport;
  private membershipTimer?: NodeJS.Timeout;
  private changingMembership = false;
  private removed = false;
  private certified = false;

  constructor(opts: ClusterNodeOptions) {
    this.opts = opts;
    this.transport = opts.transport ?? this.httpTransport();
    this.log = new RaftCommandLog({
      store: opts.store,
      nodeId: opts.nodeId,
      transport: this.transport,
      logger: opts.logger,
      timing: opts.timing,
    });
  }

  private httpTransport(): HttpTransport {
    const { tls } = this.opts;
    if (!tls) throw new FlotillaError('NoCertificate', 'the HTTPS transport needs TLS material');
    return new HttpTransport({
      selfId: this.opts.nodeId,
      selfAddress: this.opts.address,
      logger: this.opts.logger,
      tls,
    });
  }

  /** True when this server holds no Raft state yet. */
  isFresh(): boolean {
    return this.log.isEmpty();
  }

  /**
   * Gets this server a certificate from the cluster at `address` with a join
   * token: pins the CA the token names, sends a signing request for a new
   * key, and keeps the gossip key it is given. Refused tokens end in
   * JoinRefusedError; an unreachable cluster is retried for a minute.
   */
  async certify(
    address: string,
    token: string,
    identity: NodeIdentity,
  ): Promise<{ material: TlsMaterial; gossipKey: string }> {
    const parts = parseToken(token, '--token');
    const keys = generateKeyPair();
    const request = createSigningRequest(keys.keyPem, identity);
    const body = { token, address: this.opts.address, request };
    const deadline = Date.now() + JOIN_PATIENCE_MS;
    let warned = false;
    for (;;) {
      try {
        const answer = (await this.transport.certify(
          address,
          parts.caHash,
          body,
          15_000,
        )) as CertifyAnswer;
        this.certified = true;
        this.opts.logger.info({ join: address }, 'certificate received from the cluster');
        const material = { key: keys.keyPem, cert: answer.cert, ca: answer.caCert };
        return { material, gossipKey: answer.gossipKey };
      } catch (err) {
        if (err instanceof JoinRefusedError || Date.now() > deadline) throw err;
        if (!warned) this.opts.logger.warn({ err, join: address }, 'cannot certify yet; retrying');
        warned = true;
      }
      await sleep(1000);
    }
  }

  /** Founds, joins or resumes, then starts the log. */
  async start(how: ClusterStart): Promise<ClusterStarted> {
    const fresh = this.log.isEmpty();
    if (fresh && how.join && !this.certified) {
      await this.certify(how.join, how.token ?? '', {
        name: this.opts.nodeId,
        ips: [],
        dnsNames: [this.opts.nodeId],
      });
    }
    return this.startLog(how, fresh);
  }

  private async startLog(how: ClusterStart, fresh: boolean): Promise<ClusterStarted> {
    if (fresh && how.join) this.log.prepareToJoin();
    else if (fresh) this.log.bootstrap();
    this.log.start();
    if (!fresh) this.refuseIfRemoved();
    this.membershipTimer = setInterval(() => void this.keepVoters(), MEMBERSHIP_CHECK_MS);
    this.membershipTimer.unref();

    if (fresh && !how.join) return this.found(how);
    if (fresh && how.join) return this.join(how.join);
    if (how.join) void this.rejoinQuietly(how.join);
    void this.recordOwnAddress().catch((err) =>
      this.opts.logger.warn({ err }, 'cannot record this member address yet'),
    );
    return { clusterId: this.opts.store.getMeta('cluster_id') ?? how.clusterId };
  }

  /** Stops the log and closes connections. */
  async stop(): Promise<void> {
    clearInterval(this.membershipTimer);
    this.log.stop();
    await this.transport.close();
  }

  /** Serves the cluster endpoints, the token routes and node removal on `api`'s listeners. */
  mount(api: ApiServer): void {
    // The cluster endpoints check the caller's certificate themselves.
    api.mount(CLUSTER_PREFIX, (req, res) => void this.handleHttp(req, res), { ownAuth: true });
    api.mount(TOKENS_PATH, (req, res) => void serveTokens(req, res, this.opts.store, this.log));
    api.mount(NODES_PATH, (req, res) => void this.handleNodeRemove(req, res));
  }

  /**
   * Removes the member `name` from the cluster: its Node object, its pods
   * (recreated elsewhere) and its address go at once, in one command; the
   * leader then takes it out of the Raft configuration (see keepVoters),
   * which this waits for. A server refuses to remove itself: it would stop
   * receiving the log before it could confirm the outcome, and the caller
   * would be left reading a store that no longer changes.
   */
  async removeMember(name: string): Promise<{ configured: boolean }> {
    if (name === this.opts.nodeId) {
      throw new ConflictError(
        `node "${name}" is the server you are talking to; run node remove on another member`,
      );
    }
    const { config } = this.log.status();
    const known =
      config.voters.includes(name) ||
      config.learners.includes(name) ||
      this.opts.store.get('Node', name) !== undefined;
    if (!known) throw new NotFoundError('nodes', name);
    await this.log.propose({ op: 'removeNode', name });
    return { configured: await this.waitUntilGone(name) };
  }

  private async waitUntilGone(name: string): Promise<boolean> {
    const deadline = Date.now() + REMOVAL_WAIT_MS;
    while (Date.now() < deadline) {
      const { config } = this.log.status();
      if (!config.voters.includes(name) && !config.learners.includes(name)) return true;
      await sleep(this.log.timing.tickMs);
    }
    return false;
  }

  /**
   * On the leader, every MEMBERSHIP_CHECK_MS: makes the next change
   * planVoterChange asks for, one at a time (Raft allows one pending).
   */
  private async keepVoters(): Promise<void> {
    if (this.changingMembership || !this.log.isLeader()) return;
    const { config } = this.log.status();
    const store = this.opts.store;
    const change = planVoterChange({
      self: this.opts.nodeId,
      voters: config.voters,
      learners: config.learners,
      maxVoters: Number(store.getMeta('max_voters') ?? DEFAULT_MAX_VOTERS),
      removed: (id) => isRemovedNode(store, id),
      health: (id) => this.healthOf(id),
      promoteAfterMs: this.opts.promoteAfterMs ?? DEFAULT_PROMOTE_AFTER_MS,
    });
    if (!change) return;
    this.changingMembership = true;
    try {
      await this.log.changeMembership(change);
      this.opts.logger.info({ nodeId: change.nodeId, change: change.type }, 'membership changed');
    } catch (err) {
      this.opts.logger.warn({ err, change }, 'membership change failed; will retry');
    } finally {
      this.changingMembership = false;
    }
  }

  private healthOf(id: string): MemberHealth | undefined {
    const node = this.opts.store.get<Node>('Node', id);
    const ready = node?.status.conditions.find((c) => c.type === 'Ready');
    if (!ready) return undefined;
    if (ready.status === 'True') return { ready: true };
    const since = Date.parse(ready.lastTransitionTime ?? '');
    return { ready: false, deadForMs: Number.isNaN(since) ? undefined : Date.now() - since };
  }

  /**
   * A server whose own removal reached it (or whose tombstone it holds)
   * must not act on its old state: it stops with a message saying how to
   * come back.
   */
  private refuseIfRemoved(): void {
    const { config } = this.log.status();
    const id = this.opts.nodeId;
    const members = [...config.voters, ...config.learners];
    const dropped = members.length > 0 && !members.includes(id);
    if (dropped || isRemovedNode(this.opts.store, id)) {
      this.log.stop();
      throw new NodeRemovedError(id);
    }
  }

  /**
   * Set by the agent: waits until this server's balancer no longer picks the
   * endpoint and its requests to it have finished.
   */
  onDrain?: (request: DrainRequest) => Promise<void>;

  /**
   * Asks every other member to drain an endpoint (see onDrain) and resolves
   * when all have answered or failed: a member that cannot be reached sends
   * the endpoint nothing anyway.
   */
  async drainPeers(request: DrainRequest, skip: (id: string) => boolean): Promise<void> {
    const { config } = this.log.status();
    const peers = [...config.voters, ...config.learners].filter(
      (id) => id !== this.opts.nodeId && !skip(id),
    );
    const calls = peers.map((id) =>
      this.transport.call(id, 'drain', request, request.timeoutMs + 1000).catch((err) => {
        this.opts.logger.debug({ err, nodeId: id }, 'peer did not confirm a drain');
      }),
    );
    await Promise.all(calls);
  }

  /**
   * True once this server learnt, when it rejoined, that it had been removed
   * while it was down; its log is stopped so it neither campaigns nor serves
   * stale state.
   */
  wasRemoved(): boolean {
    return this.removed;
  }

  private markRemoved(): void {
    this.removed = true;
    clearInterval(this.membershipTimer);
    this.log.stop();
  }

  /** The role of the member `name` as this server knows it. */
  roleOf(name: string): MemberRole {
    const { leaderId, config } = this.log.status();
    if (name === leaderId) return 'leader';
    return config.voters.includes(name) ? 'voter' : 'non-voter';
  }

  // ---- ClusterEndpoint ------------------------------------------------------

  receive(from: string, address: string, messages: Message[]): void {
    this.log.receive(from, address, messages);
  }

  serve(path: CallPath, body: unknown): Promise<unknown> {
    if (path === 'certify') return this.serveCertify(body as CertifyRequest);
    if (path === 'join') return this.serveJoin(body as JoinRequest);
    if (path === 'drain') return this.serveDrain(body as DrainRequest);
    return this.log.serve(path, body);
  }

  private async serveDrain(request: DrainRequest): Promise<unknown> {
    const valid =
      typeof request?.endpoint === 'string' &&
      Number.isFinite(request.index) &&
      Number.isFinite(request.timeoutMs);
    if (!valid) throw new InvalidError('expected {endpoint, index, timeoutMs}');
    await this.onDrain?.({ ...request, timeoutMs: Math.min(request.timeoutMs, 300_000) });
    return { drained: request.endpoint };
  }

  // ---- founding and joining -------------------------------------------------

  /**
   * Writes the founding records: the settings, the cluster secrets (made
   * before listening, so the listener already has a certificate from this
   * CA) and a first join token valid for a day, printed once.
   */
  private async found(how: ClusterStart): Promise<ClusterStarted> {
    const maxVoters = how.maxVoters ?? DEFAULT_MAX_VOTERS;
    const pki = how.pki ?? createClusterPki(how.clusterId);
    await this.log.submit({ cluster: { clusterId: how.clusterId, maxVoters } });
    await this.log.submit({ pki });
    const token = newToken(caHash(pki.caCert));
    // Like every join token it expires: it admits servers, and with them the CA key.
    const record = tokenRecord(token.id, token.secret, 'join', {
      now: new Date(),
      ttlMs: FOUNDING_TOKEN_TTL_MS,
      description: 'made when the cluster was founded',
    });
    await this.log.submit({ token: record });
    await this.recordOwnAddress();
    this.opts.logger.info({ maxVoters }, 'cluster founded');
    return { clusterId: how.clusterId, newToken: token.text };
  }

  /** Asks the member at `address` to add this server; retries until it answers. */
  private async join(address: string): Promise<ClusterStarted> {
    const request: JoinRequest = {
      name: this.opts.nodeId,
      address: this.opts.address,
      fresh: true,
    };
    const deadline = Date.now() + JOIN_PATIENCE_MS;
    let warned = false;
    for (;;) {
      try {
        const answer = (await this.transport.callAddress(address, 'join', request, 15_000)) as {
          clusterId: string;
        };
        this.opts.logger.info({ join: address }, 'joined the cluster');
        return { clusterId: answer.clusterId };
      } catch (err) {
        if (err instanceof JoinRefusedError || Date.now() > deadline) throw err;
        if (!warned) {
          this.opts.logger.warn({ err, join: address }, 'join not answered yet; retrying');
        }
        warned = true;
      }
      await sleep(1000);
    }
  }

  /** A restarted member says where it listens now; failures only warn. */
  private async rejoinQuietly(address: string): Promise<void> {
    const request: JoinRequest = { name: this.opts.nodeId, address: this.opts.address };
    try {
      await this.transport.callAddress(address, 'join', request, 15_000);
    } catch (err) {
      // The error travels back by code, not as the same class.
      if (err instanceof FlotillaError && err.code === 'NodeRemoved') {
        this.opts.logger.error({ err }, 'this server was removed from the cluster');
        this.markRemoved();
      } else {
        this.opts.logger.warn({ err, join: address }, 'rejoin not confirmed');
      }
    }
  }

  private async recordOwnAddress(): Promise<void> {
    const { address, nodeId, store } = this.opts;
    if (!address || store.getMeta(peerKey(nodeId)) === address) return;
    await this.log.submit({ peer: { id: nodeId, address } });
  }

  /**
   * On the leader: check the token, record the joiner's address, then add it
   * as a voter while the cluster has fewer than its maximum, else as a
   * learner. A member that rejoins (same name) is only re-addressed, unless
   * its data was wiped: the leader's record of what it holds is then wrong
   * (Raft assumes a member never forgets), so it is removed and added anew.
   */
  private async serveJoin(request: JoinRequest): Promise<unknown> {
    const { leaderId } = this.log.status();
    if (leaderId === '') throw new NoQuorumError('no quorum: no leader to accept the join');
    if (leaderId !== this.opts.nodeId) {
      return this.transport.call(leaderId, 'join', request, 15_000);
    }
    if (isRemovedNode(this.opts.store, request.name)) {
      if (!request.fresh) throw new NodeRemovedError(request.name);
      await this.log.propose({ op: 'admitNode', name: request.name });
    }
    this.refuseNameInUse(request);
    await this.log.submit({ peer: { id: request.name, address: request.address } });
    const answer = { clusterId: this.opts.store.getMeta('cluster_id') };
    let { config } = this.log.status();
    if (config.voters.includes(request.name) || config.learners.includes(request.name)) {
      if (!request.fresh) return answer;
      await this.changeWithRetry({ type: 'remove', nodeId: request.name });
      this.opts.logger.info({ nodeId: request.name }, 'wiped member removed before re-adding');
      config = this.log.status().config;
    }
    const maxVoters = Number(this.opts.store.getMeta('max_voters') ?? DEFAULT_MAX_VOTERS);
    const type = config.voters.length < maxVoters ? 'addVoter' : 'addLearner';
    await this.changeWithRetry({ type, nodeId: request.name });
    this.opts.logger.info({ nodeId: request.name, change: type }, 'member added');
    return answer;
  }

  /**
   * A fresh server asking to join under the name of a member that is alive
   * at another address is a second machine with the same name (cloned hosts
   * share a host name), not that member wiped: taking the name would cut the
   * live member out of the cluster.
   */
  private refuseNameInUse(request: JoinRequest): void {
    if (!request.fresh) return;
    const { store, nodeId } = this.opts;
    const known = store.getMeta(peerKey(request.name));
    if (!known || known === request.address) return;
    const node = store.get<{ status?: { conditions?: { type: string; status: string }[] } }>(
      'Node',
      request.name,
    );
    const ready = node?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
    if (request.name === nodeId || ready) {
      throw new JoinRefusedError(
        `join refused: a member named "${request.name}" is alive at ${known}; ` +
          'start this server with another --name',
      );
    }
  }

  private async changeWithRetry(change: MembershipChange) {
    const deadline = Date.now() + this.log.timing.proposeTimeoutMs;
    for (;;) {
      try {
        return await this.log.changeMembership(change);
      } catch (err) {
        if (!(err instanceof ConflictError) || Date.now() > deadline) throw err;
      }
      await sleep(this.log.timing.tickMs);
    }
  }

  /**
   * On the leader (where revocations are surely known): checks the join
   * token and the signing request and answers with a certificate, the CA
   * and the gossip key. Every refusal is logged with the reason, which the
   * caller only learns vaguely.
   */
  private async serveCertify(body: CertifyRequest): Promise<unknown> {
    const { leaderId } = this.log.status();
    if (leaderId === '') throw new NoQuorumError('no quorum: no leader to certify the server');
    if (leaderId !== this.opts.nodeId)
      return this.transport.call(leaderId, 'certify', body, 15_000);
    const pki = readClusterPki(this.opts.store);
    if (!pki) throw new NoQuorumError('the cluster has no CA yet');
    const asked = body?.request as { name?: unknown } | undefined;
    const name = typeof asked?.name === 'string' ? asked.name : '?';
    const check =
      typeof body?.token === 'string'
        ? checkToken(this.opts.store, body.token, caHash(pki.caCert), new Date())
        : ({ ok: false, reason: 'malformed' } as const);
    const reason = !check.ok ? check.reason : check.record.role !== 'join' ? 'not-join' : '';
    if (reason) {
      this.opts.logger.warn({ name, address: body?.address, reason }, 'join refused: bad token');
      throw new JoinRefusedError(
        'join refused: the token is not a valid join token of this cluster ' +
          '(unknown, revoked, expired or of another role)',
      );
    }
    const request = verifySigningRequest(body.request);
    if (typeof body.address === 'string') {
      this.refuseNameInUse({ name: request.name, address: body.address, fresh: true });
    }
    const cert = issueCertificate(pki, request);
    this.opts.logger.info({ name: request.name, address: body.address }, 'certificate issued');
    const clusterId = this.opts.store.getMeta('cluster_id') ?? '';
    return { clusterId, cert, caCert: pki.caCert, gossipKey: pki.gossipKey };
  }

  // ---- HTTP -----------------------------------------------------------------

  private async handleHttp(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      if (req.method !== 'POST') throw new FlotillaError('MethodNotAllowed', 'expected POST', 405);
      const path = (req.url ?? '').slice(CLUSTER_PREFIX.length).split('?')[0];
      // Only certify serves callers without a certificate: they bring a join
      // token, and a signing request is small. A removed member may only ask
      // to join again (serveJoin admits it when its data was wiped).
      if (path !== 'certify') this.requireMemberCertificate(req, path !== 'join');
      const body = await readJson(
        req,
        path === 'certify' ? MAX_CERTIFY_BYTES : MAX_BODY_BYTES,
        'cluster request',
      );
      if (path === 'raft') {
        const batch = body as MessageBatch;
        this.receive(batch.from, batch.address, batch.messages.map(messageFromJson));
        res.writeHead(204).end();
        return;
      }
      if (path !== 'propose' && path !== 'join' && path !== 'drain' && path !== 'certify') {
        throw new FlotillaError('NotFound', `no cluster endpoint ${path}`, 404);
      }
      sendJson(res, 200, await this.serve(path, body));
    } catch (err) {
      const wire = errorToWire(err);
      if (wire.status >= 500 && !(err instanceof FlotillaError)) {
        this.opts.logger.error({ err }, 'cluster request failed');
      }
      if (!res.headersSent) sendJson(res, wire.status, { error: wire });
    }
  }

  /**
   * Refuses callers without a certificate from the cluster CA (checked by
   * the TLS layer against the CA) and members that were removed: their
   * certificates stay valid until they expire, as there is no revocation
   * list.
   */
  private requireMemberCertificate(req: http.IncomingMessage, refuseRemoved: boolean): void {
    const socket = req.socket as tls.TLSSocket;
    if (!socket.encrypted || !socket.authorized) {
      throw new FlotillaError(
        'Forbidden',
        'cluster endpoints need a client certificate from the cluster CA',
        403,
      );
    }
    const name = peerCommonName(socket);
    if (refuseRemoved && typeof name === 'string' && isRemovedNode(this.opts.store, name)) {
      throw new FlotillaError('Forbidden', `node "${name}" was removed from the cluster`, 403);
    }
  }

  /** `POST /apis/flotilla.io/v1/nodes/NAME/remove`, answered with a Status. */
  private async handleNodeRemove(
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): Promise<void> {
    req.resume();
    const path = (req.url ?? '').slice(NODES_PATH.length).split('?')[0];
    const match = /^([a-z0-9.-]+)\/remove$/.exec(path);
    try {
      if (!match) throw new FlotillaError('NotFound', `no node route ${path}`, 404);
      if (req.method !== 'POST') throw new FlotillaError('MethodNotAllowed', 'expected POST', 405);
      const { configured } = await this.removeMember(match[1]);
      const message = configured
        ? `node/${match[1]} removed`
        : `node/${match[1]} removed from the store; the Raft configuration change is pending`;
      sendJson(res, 200, statusBody(200, 'Removed', message));
    } catch (err) {
      const wire = errorToWire(err);
      sendJson(res, wire.status, statusBody(wire.status, wire.code, wire.message));
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
