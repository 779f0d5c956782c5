'use strict';
/**
 * Helpers shared by the cluster benchmarks (leader-failover.js,
 * node-failover.js): start real agents on loopback addresses 127.0.X.N,
 * talk to their admin sockets, and poll. The calling shell script owns the
 * temp dir and the pid file, and stops the agents whatever happens.
 */
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');

const MAIN =
  process.env.BENCH_MAIN ?? path.resolve(__dirname, '..', '..', 'build', 'src', 'main.js');
const ROLE_ANNOTATION = 'flotilla.io/role';
/** Extra node flags for the agents, such as --cpu-prof (not allowed in NODE_OPTIONS). */
const NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);

/** Prints `name: error: message` and exits non-zero. */
function fail(name, message) {
  process.stderr.write(`${name}: error: ${message}\n`);
  process.exit(1);
}

/** Resolves after `ms`. */
function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` every `everyMs` until it returns something truthy; that value, or undefined. */
async function poll(check, timeoutMs, everyMs = 20) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) return undefined;
    await sleep(everyMs);
  }
}

/** An HTTP request over a unix socket; resolves with the body text on 2xx. */
function request(socketPath, method, urlPath, body, timeoutMs = 30_000) {
  return new Promise((resolve, reject) => {
    const payload = body ? JSON.stringify(body) : undefined;
    const headers = payload ? { 'content-type': 'application/json' } : {};
    const req = http.request({ socketPath, method, path: urlPath, headers }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => (res.statusCode < 300 ? resolve(text) : reject(new Error(text))));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(payload);
  });
}

/** A ClusterIP Service: one committed command, no container. */
function service(name) {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name },
    spec: { type: 'ClusterIP', selector: { app: name }, ports: [{ port: 80 }] },
  };
}

const SERVICES = '/api/v1/namespaces/default/services';

/**
 * One agent process of a benchmark run. `n` is the last octet of its
 * address; its containers carry the label `labelKey=RUNID-n`.
 */
class BenchAgent {
  constructor({ workDir, pidFile, octet, n, labelKey, runId, logLevel }) {
    Object.assign(this, { workDir, pidFile, n, labelKey, runId });
    this.name = `bench-${n}`;
    this.address = `127.0.${octet}.${n}`;
    this.dataDir = path.join(workDir, `agent-${n}`);
    this.socket = path.join(this.dataDir, 'flotilla.sock');
    this.logLevel = logLevel ?? 'warn';
    this.output = '';
    this.joinArgs = [];
  }

  /** The label value of this agent's containers. */
  label() {
    return `${this.runId}-${this.n}`;
  }

  /** Starts the process and waits until its socket answers. */
  async start() {
    const logFile = path.join(this.workDir, `agent-${this.n}.log`);
    const log = fs.openSync(logFile, 'a');
    const args = [
      ...NODE_ARGS,
      MAIN,
      'agent',
      '--data-dir',
      this.dataDir,
      '--name',
      this.name,
      '--listen',
      `${this.address}:7946`,
      '--log-level',
      this.logLevel,
      ...(this.labelKey ? ['--container-label', `${this.labelKey}=${this.label()}`] : []),
      ...this.joinArgs,
    ];
    const env = { ...process.env, FLOTILLA_LOG_FORMAT: 'json' };
    this.child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', log], env });
    fs.appendFileSync(this.pidFile, `${this.child.pid}\n`);
    this.child.stdout.on('data', (d) => {
      this.output += d;
      fs.appendFileSync(logFile, d);
    });
    const up = await poll(() => this.get('/version'), 30_000, 100);
    if (!up) throw new Error(`agent ${this.n} did not start; see agent-${this.n}.log`);
  }

  /** The token a founder printed. */
  token() {
    return /^join token: (\S+)$/m.exec(this.output)?.[1];
  }

  /** Kills the process with SIGKILL and waits for it to exit. */
  async kill() {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  /** GETs a JSON document; undefined when the agent does not answer. */
  get(urlPath) {
    return request(this.socket, 'GET', urlPath, undefined, 5000).then(JSON.parse, () => undefined);
  }

  /** Creates a ClusterIP Service named `name` (one committed write). */
  write(name, timeoutMs) {
    return request(this.socket, 'POST', SERVICES, service(name), timeoutMs);
  }

  /** The nodes as this agent sees them, or undefined. */
  async nodes() {
    return (await this.get('/api/v1/nodes'))?.items;
  }

  /** The name of the leader this agent reports, if any. */
  async leader() {
    const nodes = (await this.nodes()) ?? [];
    const lead = nodes.find((n) => n.metadata.annotations?.[ROLE_ANNOTATION] === 'leader');
    return lead?.metadata.name;
  }
}

/** Starts a founder and `count - 1` joiners on 127.0.X.2, .3, ... */
async function startCluster(common, count) {
  const founder = new BenchAgent({ ...common, n: 2 });
  await founder.start();
  const token = founder.token() ?? (await poll(() => founder.token(), 10_000, 50));
  if (!token) throw new Error('the founder printed no join token');
  const agents = [founder];
  for (let n = 3; n < 2 + count; n++) {
    const agent = new BenchAgent({ ...common, n });
    agent.joinArgs = ['--join', `${founder.address}:7946`, '--token', token];
    await agent.start();
    agents.push(agent);
  }
  return agents;
}

/** The leader all `agents` agree on, once they do, other than `not`. */
async function agreedLeader(agents, timeoutMs, not) {
  return poll(
    async () => {
      const seen = await Promise.all(agents.map((a) => a.leader()));
      const agreed = seen[0] && seen[0] !== not && seen.every((s) => s === seen[0]);
      return agreed ? seen[0] : undefined;
    },
    timeoutMs,
    100,
  );
}

/** The median of numbers. */
function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

module.exports = {
  BenchAgent,
  agreedLeader,
  fail,
  median,
  poll,
  request,
  sleep,
  startCluster,
};
