import { InvalidError } from '../errors';
import { parseLabelPairs } from './selector';

/** What `runAgent` in src/agent/run.ts accepts. */
export interface AgentOptions {
  dataDir: string;
  name?: string;
  listen?: string;
  join?: string;
  token?: string;
  voters?: number;
  nodeGraceMs?: number;
  logLevel?: string;
  containerLabels?: Record<string, string>;
}

/** The agent command's flags as commander hands them over. */
export interface AgentFlags {
  name?: string;
  listen?: string;
  join?: string;
  token?: string;
  voters?: string;
  nodeGrace?: string;
  logLevel?: string;
  containerLabel?: string[];
}

/** Turns the command line into the agent's options, checking what can be checked early. */
export function agentOptions(dataDir: string, flags: AgentFlags): AgentOptions {
  // Port 0 takes any free port: a lone server needs no known one.
  checkHostPort('--listen', flags.listen, 0);
  checkHostPort('--join', flags.join);
  const containerLabels: Record<string, string> = {};
  for (const text of flags.containerLabel ?? []) {
    Object.assign(containerLabels, parseLabelPairs(text, '--container-label'));
  }
  return {
    dataDir,
    name: flags.name,
    listen: flags.listen,
    join: flags.join,
    token: flags.token,
    voters: votersOf(flags.voters),
    nodeGraceMs: graceOf(flags.nodeGrace),
    logLevel: flags.logLevel,
    containerLabels,
  };
}

/** A cluster keeps 3 to 5 voters: fewer cannot survive a failure, more slow every commit. */
function votersOf(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (Number.isInteger(n) && n >= 1 && n <= 5) return n;
  throw new InvalidError(`expected --voters as a whole number from 1 to 5, got "${value}"`);
}

/** Seconds a dead node keeps its pods before they are recreated elsewhere. */
function graceOf(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0 && seconds <= 3600) return seconds * 1000;
  throw new InvalidError(`expected --node-grace as seconds from 0 to 3600, got "${value}"`);
}

// HOST may be empty (all interfaces) or a bracketed IPv6 address.
function checkHostPort(flag: string, value: string | undefined, lowest = 1): void {
  if (value === undefined) return;
  const shaped = /^[^\s:[\]]*:\d{1,5}$/.test(value) || /^\[[^\]]+\]:\d{1,5}$/.test(value);
  const port = Number(value.slice(value.lastIndexOf(':') + 1));
  if (shaped && port >= lowest && port <= 65535) return;
  throw new InvalidError(
    `expected ${flag} as HOST:PORT with a port from ${lowest} to 65535, got "${value}"`,
  );
}

/** Runs `flotilla agent`: loads the agent only now, since it is the heaviest module. */
export async function runAgentCommand(dataDir: string, flags: AgentFlags): Promise<void> {
  const options = agentOptions(dataDir, flags);
  const agent = require('../agent/run') as { runAgent(opts: AgentOptions): Promise<void> };
  await agent.runAgent(options);
}
