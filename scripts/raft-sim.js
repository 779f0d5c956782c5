#!/usr/bin/env node
// Replays seeds of the Raft simulator from the compiled build:
//   npm run build && node scripts/raft-sim.js --seed 1234 [--trace]
//   node scripts/raft-sim.js --from 1 --seeds 5000 [--unsafe grantVoteTwicePerTerm]
'use strict';

const path = require('node:path');
const { parseArgs } = require('node:util');

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    from: { type: 'string', default: '1' },
    seeds: { type: 'string', default: '1000' },
    unsafe: { type: 'string' },
    profile: { type: 'string' },
    'chaos-ticks': { type: 'string' },
    trace: { type: 'boolean', default: false },
  },
});

const simulatorPath = path.join(__dirname, '..', 'build', 'src', 'raft', 'simulator.js');
const { runSimulation } = require(simulatorPath);

const first = Number(values.seed ?? values.from);
const count = values.seed === undefined ? Number(values.seeds) : 1;
const options = {
  unsafe: values.unsafe ? { [values.unsafe]: true } : undefined,
  profile: values.profile,
  chaosTicks: values['chaos-ticks'] ? Number(values['chaos-ticks']) : undefined,
  trace: values.trace ? (line) => console.log(line) : undefined,
};

const started = Date.now();
let failures = 0;
for (let seed = first; seed < first + count; seed++) {
  const result = runSimulation({ ...options, seed });
  if (count === 1) console.log(JSON.stringify({ seed, stats: result.stats }));
  if (!result.violation) continue;
  failures++;
  console.log(`seed ${seed}: ${result.violation.message}`);
}
const durationMs = Date.now() - started;
console.log(JSON.stringify({ first, count, failures, durationMs }));
process.exitCode = failures > 0 ? 1 : 0;
