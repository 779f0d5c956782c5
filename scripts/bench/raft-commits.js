#!/usr/bin/env node
'use strict';
/**
 * The measuring half of raft-commits.sh; run it through that script, which
 * owns the temp dir and stops the agents after a crash or a signal.
 *
 * Starts a one-server agent (the baseline) and a three-server cluster on
 * loopback addresses of 127.0.X.0/24, then through each one's admin socket
 * writes (one committed command each, no containers): one client in a row
 * for the p50 latency, then CLIENTS clients at once for commits per second.
 * BENCH_WRITE=patch (the default) merge-patches a label of one Service per
 * client; BENCH_WRITE=create creates a ClusterIP Service per write, which
 * also measures the balancers of three agents on one machine fighting for
 * the same gateway port (every write retries and logs every listener).
 * Cluster requests go round-robin to all three servers, so two thirds are
 * forwarded to the leader. Prints the figures
 * and their ratio to the baseline.
 */
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');

const MAIN = path.resolve(__dirname, '..', '..', 'build', 'src', 'main.js');
const SEQUENTIAL = Number(process.env.BENCH_SEQUENTIAL ?? 100);
const CONCURRENT = Number(process.env.BENCH_CONCURRENT ?? 400);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 16);
const WRITE = process.env.BENCH_WRITE ?? 'patch';
/** The agent's entry point; BENCH_MAIN measures another build. */
const AGENT_MAIN = process.env.BENCH_MAIN ?? MAIN;

const [workDir, pidFile, octet] = process.argv.slice(2);
if (!workDir || !pidFile || !octet) fail('usage: raft-commits.js WORK_DIR PID_FILE OCTET');

function fail(message) {
  process.stderr.write(`raft-commits: error: ${message}\n`);
  process.exit(1);
}

/** Starts an agent; resolves with its socket once it answers, and its output so far. */
async function startAgent(n, extra = []) {
  const dataDir = path.join(workDir, `agent-${n}`);
  const logFile = path.join(workDir, `agent-${n}.log`);
  const log = fs.openSync(logFile, 'a');
  const args = [
    AGENT_MAIN,
    'agent',
    '--data-dir',
    dataDir,
    '--name',
    `bench-${n}`,
    '--listen',
    `127.0.${octet}.${n}:7946`,
    '--log-level',
    process.env.BENCH_LOG_LEVEL ?? 'warn',
    ...extra,
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', log] });
  fs.appendFileSync(pidFile, `${child.pid}\n`);
  let output = '';
  child.stdout.on('data', (d) => {
    output += d;
    fs.appendFileSync(logFile, d);
  });
  const socket = path.join(dataDir, 'flotilla.sock');
  const deadline = Date.now() + 30_000;
  while (
    !(await request(socket, 'GET', '/version').then(
      () => true,
      () => false,
    ))
  ) {
    if (Date.now() > deadline) fail(`agent ${n} did not start; see agent-${n}.log`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { socket, token: () => /^join token: (\S+)$/m.exec(output)?.[1] };
}

function request(socketPath, method, urlPath, body) {
  return new Promise((resolve, reject) => {
    const payload = body ? JSON.stringify(body) : undefined;
    const type = method === 'PATCH' ? 'application/merge-patch+json' : 'application/json';
    const headers = payload ? { 'content-type': type } : {};
    const req = http.request({ socketPath, method, path: urlPath, headers }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => (res.statusCode < 300 ? resolve(text) : reject(new Error(text))));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

function service(name) {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name },
    spec: { type: 'ClusterIP', selector: { app: name }, ports: [{ port: 80 }] },
  };
}

const SERVICES = '/api/v1/namespaces/default/services';

/** One committed write: write `i` of the client `client`. */
function write(socket, prefix, client, i) {
  if (WRITE === 'create') return request(socket, 'POST', SERVICES, service(`${prefix}-${i}`));
  const patch = { metadata: { labels: { write: String(i) } } };
  return request(socket, 'PATCH', `${SERVICES}/${prefix}-c${client}`, patch);
}

/** In patch mode, the Service each client patches. */
async function prepare(sockets, prefix, clients) {
  if (WRITE === 'create') return;
  for (let c = 0; c < clients; c++) {
    await request(sockets[0], 'POST', SERVICES, service(`${prefix}-c${c}`));
  }
}

/** p50 latency of one client creating services one after another. */
async function sequentialP50(sockets, prefix) {
  const times = [];
  for (let i = 0; i < SEQUENTIAL; i++) {
    const started = process.hrtime.bigint();
    await write(sockets[i % sockets.length], prefix, 0, i);
    times.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

/** Commits per second with CLIENTS clients at once. */
async function throughput(sockets, prefix) {
  let next = 0;
  const started = Date.now();
  const client = async (_, c) => {
    while (next < CONCURRENT) {
      const i = next++;
      await write(sockets[i % sockets.length], prefix, c, i);
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, client));
  return CONCURRENT / ((Date.now() - started) / 1000);
}

async function main() {
  const single = await startAgent(10);
  await prepare([single.socket], 'seq', 1);
  await prepare([single.socket], 'par', CLIENTS);
  const baseline = {
    p50: await sequentialP50([single.socket], 'seq'),
    rate: await throughput([single.socket], 'par'),
  };

  const founder = await startAgent(2);
  const token = founder.token();
  if (!token) fail('the founder printed no join token');
  const join = ['--join', `127.0.${octet}.2:7946`, '--token', token];
  const others = [await startAgent(3, join), await startAgent(4, join)];
  const sockets = [founder.socket, ...others.map((a) => a.socket)];
  await prepare(sockets, 'seq', 1);
  await prepare(sockets, 'par', CLIENTS);
  const cluster = {
    p50: await sequentialP50(sockets, 'seq'),
    rate: await throughput(sockets, 'par'),
  };

  const num = (v) => v.toFixed(1).padStart(8);
  const line = (what, b, c, unit) =>
    `${what.padEnd(28)} ${num(b)} ${num(c)} ${unit.padEnd(10)} ratio ${(c / b).toFixed(2)}\n`;
  const out = (text) => process.stdout.write(text);
  out(`${''.padEnd(28)} ${'1 server'.padStart(8)} ${'3 Raft'.padStart(8)}\n`);
  out(line('single-client p50 latency', baseline.p50, cluster.p50, 'ms'));
  out(line(`commits/s (${CLIENTS} clients)`, baseline.rate, cluster.rate, '/s'));
  process.exit(0);
}

main().catch((err) => fail(err.stack ?? String(err)));
