#!/usr/bin/env node
'use strict';
/**
 * The measuring half of leader-failover.sh; run it through that script,
 * which owns the temp dir and stops the agents after a crash or a signal.
 *
 * Starts three agents on 127.0.X.2-4, measures a committed write on the
 * healthy cluster (the baseline), then in each round kills the leader with
 * SIGKILL and, from that moment, has two clients on each survivor write
 * until one write commits. Reports the time from the kill to that write
 * and to all survivors agreeing on a new leader, then restarts the killed
 * agent on its data and waits until it takes writes again.
 */
const { agreedLeader, fail, median, poll, startCluster } = require('./cluster-agents');

const GOAL_MS = 2000;
const [workDir, pidFile, octet, roundsArg] = process.argv.slice(2);
if (!workDir || !pidFile || !octet) {
  fail('leader-failover', 'usage: leader-failover.js WORK_DIR PID_FILE OCTET [ROUNDS]');
}
const ROUNDS = Number(roundsArg ?? 3);
let written = 0;

/** Time of one committed write through `agent`, in ms. */
async function timedWrite(agent) {
  const t0 = performance.now();
  await agent.write(`w-${written++}`);
  return performance.now() - t0;
}

/** Resolves with the time since `t0` at which the first write through `agents` commits. */
function firstCommit(agents, t0) {
  return new Promise((resolve) => {
    let done = false;
    const client = async (agent) => {
      while (!done && performance.now() - t0 < 30_000) {
        try {
          await agent.write(`w-${written++}`, 10_000);
          if (!done) resolve(performance.now() - t0);
          done = true;
        } catch {
          // No leader yet, or the old one still named: try again.
        }
      }
      if (!done) resolve(Infinity);
      done = true;
    };
    for (const agent of agents) (void client(agent), void client(agent));
  });
}

async function round(agents) {
  const leaderName = await agreedLeader(agents, 30_000);
  if (!leaderName) throw new Error('the agents agree on no leader');
  const leader = agents.find((a) => a.name === leaderName);
  const survivors = agents.filter((a) => a !== leader);

  await leader.kill();
  const t0 = performance.now();
  const committed = firstCommit(survivors, t0);
  const elected = agreedLeader(survivors, 30_000, leaderName).then(() => performance.now() - t0);
  const result = { write: await committed, elected: await elected, leader: leaderName };

  await leader.start();
  const back = await poll(
    () =>
      timedWrite(leader).then(
        () => true,
        () => false,
      ),
    30_000,
    200,
  );
  if (!back) throw new Error(`${leaderName} takes no writes after its restart`);
  return result;
}

async function main() {
  const agents = await startCluster({ workDir, pidFile, octet }, 3);
  const leaderName = await agreedLeader(agents, 30_000);
  const leader = agents.find((a) => a.name === leaderName);
  const healthy = [];
  for (let i = 0; i < 30; i++) healthy.push(await timedWrite(leader));

  const out = (text) => process.stdout.write(text);
  out(`healthy cluster: committed write p50 ${median(healthy).toFixed(1)} ms (baseline)\n`);
  const rounds = [];
  for (let r = 0; r < ROUNDS; r++) {
    const res = await round(agents);
    rounds.push(res);
    out(
      `round ${r + 1}: killed ${res.leader}; ` +
        `new leader agreed after ${res.elected.toFixed(0)} ms, ` +
        `next committed write after ${res.write.toFixed(0)} ms\n`,
    );
  }
  const mid = median(rounds.map((r) => r.write));
  const ratio = (mid / median(healthy)).toFixed(0);
  const goal = mid <= GOAL_MS ? 'met' : 'MISSED';
  out(
    `median kill -> next committed write: ${mid.toFixed(0)} ms ` +
      `(${ratio}x a healthy write; goal ${GOAL_MS} ms: ${goal})\n`,
  );
  process.exit(0);
}

main().catch((err) => fail('leader-failover', err.stack ?? String(err)));
