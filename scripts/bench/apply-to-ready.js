#!/usr/bin/env node
'use strict';
/**
 * The measuring half of apply-to-ready.sh; run it through that script,
 * which owns the temp dir and the cleanup after a crash or a signal.
 *
 * Each round starts an agent on a fresh data dir, reads its idle RSS,
 * applies the example, polls the admin socket every 20 ms until every
 * replica is Running and ready, reads the RSS again, then stops the agent
 * and removes its containers. In the same round it times the baselines:
 * `docker create --init` + `docker start` for as many containers, one after
 * the other, with and without a `docker pull` before each create (the
 * example says imagePullPolicy Always, so Flotilla pulls for every pod),
 * the same calls for all containers at once, and the RSS of a bare idle
 * node process. Rounds alternate which side goes first
 * so that neither always meets a freshly busy Docker daemon.
 *
 * Every process it spawns is written to the pid file before anything waits
 * on it, and carries the work dir or run id on its command line, so the
 * shell can tell it from an unrelated process that reused the pid.
 */
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');

const POLL_MS = 20;
const READY_TIMEOUT_MS = 60_000;
const SOCKET_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;
const IMAGE_PATTERN = /^\s*image:\s*(\S+)\s*$/m;
const REPLICAS_PATTERN = /^\s*replicas:\s*(\d+)\s*$/m;

/** Reads `--name value` pairs; every option has a value. */
function parseArgs(argv) {
  const opts = {};
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i];
    const value = argv[i + 1];
    if (!key.startsWith('--') || value === undefined) fail(`bad argument near "${key}"`);
    opts[key.slice(2)] = value;
  }
  for (const key of ['work-dir', 'run-id', 'pid-file', 'manifest', 'address', 'label-key']) {
    if (!opts[key]) fail(`missing --${key}`);
  }
  return opts;
}

/** Builds the settings every phase shares from the parsed options. */
function buildContext(opts) {
  const manifestText = fs.readFileSync(opts.manifest, 'utf8');
  const bin = opts.bin ? path.resolve(opts.bin) : '';
  const main = path.resolve(__dirname, '..', '..', 'build', 'src', 'main.js');
  return {
    workDir: opts['work-dir'],
    runId: opts['run-id'],
    pidFile: opts['pid-file'],
    label: `${opts['label-key']}=${opts['run-id']}`,
    manifest: path.resolve(opts.manifest),
    address: opts.address,
    rounds: positive(opts.rounds ?? '5', 'rounds'),
    idleMs: positive(opts['idle-ms'] ?? '3000', 'idle-ms'),
    settleMs: positive(opts['settle-ms'] ?? '2000', 'settle-ms'),
    deadline: Date.now() + positive(opts['budget-s'] ?? '270', 'budget-s') * 1000,
    image: match(manifestText, IMAGE_PATTERN, 'image'),
    replicas: Number(match(manifestText, REPLICAS_PATTERN, 'replicas')),
    cli: bin ? [bin] : [process.execPath, main],
  };
}

function positive(text, name) {
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) {
    fail(`expected --${name} as a positive integer, got "${text}"`);
  }
  return n;
}

function match(text, pattern, what) {
  const found = pattern.exec(text);
  if (!found) fail(`no ${what} in the manifest`);
  return found[1];
}

function fail(message) {
  throw new Error(message);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const now = () => Number(process.hrtime.bigint()) / 1e6;

/** Starts a process, records its pid for the shell's cleanup, and returns it. */
function launch(ctx, command, args, logPath) {
  const out = logPath ? fs.openSync(logPath, 'a') : 'ignore';
  const child = spawn(command, args, { stdio: ['ignore', out, out] });
  if (logPath) fs.closeSync(out);
  if (child.pid === undefined) fail(`could not start ${command}`);
  fs.appendFileSync(ctx.pidFile, `${child.pid}\n`);
  child.exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', (err) => resolve({ code: -1, signal: null, err }));
  });
  return child;
}

/** Runs a command to its end; resolves with its output and wall time in ms. */
function run(command, args) {
  return new Promise((resolve, reject) => {
    const started = now();
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.once('error', reject);
    child.once('close', (code) => {
      const ms = now() - started;
      if (code === 0) resolve({ stdout, ms });
      else reject(new Error(`${command} ${args.join(' ')} exited ${code}: ${stderr.trim()}`));
    });
  });
}

/** One GET on the agent's admin socket; resolves with status and parsed body. */
function getJson(socketPath, urlPath) {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path: urlPath, timeout: 5000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode, body: safeParse(text) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('admin socket timed out')));
    req.on('error', reject);
    req.end();
  });
}

function safeParse(text) {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * Polls every POLL_MS until check() is true. A failing check counts as
 * "not yet" (the socket may not exist yet); abort() returning an error
 * ends the wait at once, as does the agent exiting or the time running out.
 */
async function pollUntil(agent, timeoutMs, what, check, abort = () => undefined) {
  const giveUp = Date.now() + timeoutMs;
  while (Date.now() < giveUp) {
    const reason = abort();
    if (reason) throw reason;
    if (agent.exitCode !== null || agent.signalCode !== null) {
      fail(`agent exited while waiting for ${what}; see the agent log`);
    }
    if (await check().catch(() => false)) return;
    await sleep(POLL_MS);
  }
  fail(`timed out waiting for ${what}; see the agent log`);
}

/** Counts pods that are Running with their first container ready. */
function countReady(list) {
  const items = Array.isArray(list?.items) ? list.items : [];
  return items.filter(
    (pod) => pod.status?.phase === 'Running' && pod.status?.containerStatuses?.[0]?.ready === true,
  ).length;
}

/** Starts an agent on a fresh data dir and waits until its socket answers. */
async function startAgent(ctx, round) {
  const dataDir = path.join(ctx.workDir, `agent-${round}`);
  fs.mkdirSync(dataDir);
  const args = [
    ...ctx.cli.slice(1),
    '--data-dir', dataDir,
    'agent',
    '--name', `bench-${round}`,
    '--listen', `${ctx.address}:7946`,
    '--container-label', ctx.label,
  ];
  const logPath = path.join(ctx.workDir, `agent-${round}.log`);
  const agent = launch(ctx, ctx.cli[0], args, logPath);
  Object.assign(agent, { dataDir, logPath, socket: path.join(dataDir, 'flotilla.sock') });

  await pollUntil(agent, SOCKET_TIMEOUT_MS, 'the admin socket', async () => {
    const res = await getJson(agent.socket, '/api/v1/nodes');
    return res.status === 200;
  });
  return agent;
}

/** Stops an agent with SIGTERM, escalating to SIGKILL if it lingers. */
async function stopAgent(agent) {
  if (agent.exitCode !== null || agent.signalCode !== null) return;
  agent.kill('SIGTERM');
  const timer = setTimeout(() => agent.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await agent.exited;
  clearTimeout(timer);
}

/**
 * Reads VmRSS in kB. The pid must belong to a node process (or the
 * single-file binary), not to a shell in between, or the figure is a lie.
 */
function readRssKb(pid, expectedExe) {
  const exe = fs.readlinkSync(`/proc/${pid}/exe`);
  if (exe !== expectedExe) fail(`pid ${pid} runs ${exe}, expected ${expectedExe}`);
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const found = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!found) fail(`no VmRSS for pid ${pid}`);
  return Number(found[1]);
}

function agentExe(ctx) {
  return fs.realpathSync(ctx.cli[0]);
}

/**
 * The agent keeps running when, say, a Service port is taken, so a round
 * can look fine while the agent complained. Errors are shown, and warnings
 * that carry a system error code (a failed bind, a refused connection).
 */
function reportAgentErrors(agent) {
  const records = fs.readFileSync(agent.logPath, 'utf8').split('\n').map(safeParse);
  const bad = records.filter((rec) => rec?.level >= 50 || (rec?.level >= 40 && rec.code));
  for (const rec of bad.slice(0, 3)) {
    const detail = [rec.code, rec.host && `${rec.host}:${rec.port}`].filter(Boolean).join(' ');
    console.log(`  agent ${rec.level >= 50 ? 'error' : 'warning'}: ${rec.msg} ${detail}`);
  }
}

/** Removes every container carrying this run's label; returns how many. */
async function removeContainers(ctx) {
  const { stdout } = await run('docker', ['ps', '-aq', '--filter', `label=${ctx.label}`]);
  const ids = stdout.split('\n').filter(Boolean);
  if (ids.length > 0) await run('docker', ['rm', '-f', ...ids]);
  return ids.length;
}

/** Times apply until every replica is ready; returns ms and the RSS figures. */
async function measureFlotilla(ctx, round) {
  const agent = await startAgent(ctx, round);
  const bare = launch(ctx, process.execPath, ['-e', 'setInterval(()=>{},1000)', ctx.runId]);
  await sleep(ctx.idleMs);
  const idleKb = readRssKb(agent.pid, agentExe(ctx));
  const bareKb = readRssKb(bare.pid, fs.realpathSync(process.execPath));
  bare.kill('SIGTERM');
  await bare.exited;

  const ms = await timeApplyToReady(ctx, agent);
  await sleep(ctx.settleMs);
  const busyKb = readRssKb(agent.pid, agentExe(ctx));

  await stopAgent(agent);
  reportAgentErrors(agent);
  const removed = await removeContainers(ctx);
  if (removed !== ctx.replicas) fail(`expected ${ctx.replicas} containers, found ${removed}`);
  return { ms, idleKb, busyKb, bareKb };
}

/** Time from running `apply` to every replica Running and ready, in ms. */
async function timeApplyToReady(ctx, agent) {
  const args = [...ctx.cli.slice(1), '--data-dir', agent.dataDir, 'apply', '-f', ctx.manifest];
  let applyError;
  const started = now();
  const apply = run(ctx.cli[0], args).catch((err) => (applyError = err));

  const podsPath = '/api/v1/namespaces/default/pods';
  const ready = async () => {
    const res = await getJson(agent.socket, podsPath);
    return res.status === 200 && countReady(res.body) >= ctx.replicas;
  };
  await pollUntil(agent, READY_TIMEOUT_MS, `${ctx.replicas} ready pods`, ready, () => applyError);
  const ms = now() - started;

  await apply;
  if (applyError) throw applyError;
  return ms;
}

/** Sum of sequential docker (pull +) create + start times for every replica. */
async function measureDocker(ctx, withPull) {
  let total = 0;
  for (let i = 0; i < ctx.replicas; i++) {
    if (withPull) total += (await run('docker', ['pull', '-q', ctx.image])).ms;
    const created = await run('docker', ['create', '--init', '--label', ctx.label, ctx.image]);
    total += created.ms;
    total += (await run('docker', ['start', created.stdout.trim()])).ms;
  }
  await removeContainers(ctx);
  return total;
}

/**
 * Wall time of the same create + start calls for every replica at once.
 * Flotilla starts pods concurrently, so this is the fairer floor; the
 * sequential sum is kept because it is what a shell script would do.
 */
async function measureDockerParallel(ctx) {
  const started = now();
  const one = async () => {
    const created = await run('docker', ['create', '--init', '--label', ctx.label, ctx.image]);
    await run('docker', ['start', created.stdout.trim()]);
  };
  await Promise.all(Array.from({ length: ctx.replicas }, one));
  const ms = now() - started;
  await removeContainers(ctx);
  return ms;
}

/** One round of every measurement; the order flips with each round. */
async function measureRound(ctx, round) {
  const result = {};
  const flotilla = async () => Object.assign(result, await measureFlotilla(ctx, round));
  const docker = async () => {
    result.dockerMs = await measureDocker(ctx, false);
    result.pullMs = await measureDocker(ctx, true);
    result.parallelMs = await measureDockerParallel(ctx);
  };
  if (round % 2 === 1) {
    await flotilla();
    await docker();
  } else {
    await docker();
    await flotilla();
  }
  return result;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const mib = (kb) => `${(kb / 1024).toFixed(1)} MiB`;
const secs = (ms) => `${(ms / 1000).toFixed(2)} s`;
const plural = (n, noun) => `${n} ${noun}${n === 1 ? '' : 's'}`;
const ratio = (a, b) => `${(a / b).toFixed(2)}×`;

function printRound(ctx, round, r) {
  const vs = (label, base) => `${label} ${base.toFixed(0)} ms (${ratio(r.ms, base)})`;
  console.log(
    [
      `round ${round}/${ctx.rounds}: apply->ready ${r.ms.toFixed(0)} ms`,
      vs('create+start', r.dockerMs),
      vs('pull+create+start', r.pullMs),
      vs('parallel create+start', r.parallelMs),
      `rss idle ${mib(r.idleKb)}, ${ctx.replicas} pods ${mib(r.busyKb)}` +
        `, bare node ${mib(r.bareKb)}`,
    ].join(' | '),
  );
}

/** Prints the medians as a Markdown table that can go into a README. */
function printTable(ctx, results) {
  const m = (key) => median(results.map((r) => r[key]));
  const n = ctx.replicas;
  const ready = `apply → ${n} pods ready`;
  const [ms, bare] = [m('ms'), m('bareKb')];
  const time = (base, what) => [ready, secs(ms), `${secs(base)} (${what})`, ratio(ms, base)];
  const rss = (what, kb) => [what, mib(kb), `${mib(bare)} (idle bare node)`, ratio(kb, bare)];
  const rows = [
    [`measurement, median of ${plural(results.length, 'round')}`, 'Flotilla', 'baseline', 'ratio'],
    ['---', '---', '---', '---'],
    time(m('dockerMs'), `docker create+start ×${n}, one by one`),
    time(m('pullMs'), `docker pull+create+start ×${n}, one by one`),
    time(m('parallelMs'), `docker create+start ×${n}, in parallel`),
    rss('agent RSS, idle', m('idleKb')),
    rss(`agent RSS, ${n} pods running`, m('busyKb')),
  ];
  console.log('');
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
  console.log('');
  console.log(describeMachine(ctx));
}

function describeMachine(ctx) {
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
  const binary = ctx.cli.length === 1 ? path.basename(ctx.cli[0]) : 'node build/src/main.js';
  return (
    `${binary}, ${ctx.image}, node ${process.version}, ${os.cpus().length} × ${cpu}, ` +
    `Linux ${os.release()}, load average ${os.loadavg()[0].toFixed(2)} at the end.\n` +
    'ratio = Flotilla / baseline; Flotilla\'s time includes starting the apply CLI; ' +
    'the docker baselines time docker CLI calls; RSS is VmRSS of the agent process.'
  );
}

async function main() {
  const ctx = buildContext(parseArgs(process.argv.slice(2)));
  const what = `${ctx.replicas} replicas of ${ctx.image}`;
  console.log(`run ${ctx.runId}: ${plural(ctx.rounds, 'round')}, ${what}`);
  const results = [];
  for (let round = 1; round <= ctx.rounds; round++) {
    if (Date.now() > ctx.deadline) {
      if (results.length === 0) fail('time budget spent before any round finished');
      console.log(`time budget spent: reporting ${results.length} of ${ctx.rounds} rounds`);
      break;
    }
    const r = await measureRound(ctx, round);
    printRound(ctx, round, r);
    results.push(r);
  }
  printTable(ctx, results);
}

main().catch((err) => {
  console.error(`apply-to-ready: ${err.message}`);
  process.exit(1);
});
