/**
 * `flotilla agent`: builds the logger, starts an Agent and stops it cleanly
 * on SIGTERM or SIGINT. Containers keep running across the stop.
 */
import { InvalidError } from '../errors';
import { createLogger } from '../log';
import { Agent } from './agent';

/** What `flotilla agent` accepts (see src/cli/agent.ts). */
export interface AgentOptions {
  dataDir: string;
  name?: string;
  listen?: string;
  join?: string;
  token?: string;
  /** Founders only: voters the cluster grows to (3 to 5). */
  voters?: number;
  /** How long a dead node keeps its pods before they move. */
  nodeGraceMs?: number;
  logLevel?: string;
  containerLabels?: Record<string, string>;
}

/** Runs the agent until a signal stops it. */
export async function runAgent(opts: AgentOptions): Promise<void> {
  checkClusterOptions(opts);
  const logger = createLogger({ level: opts.logLevel ?? 'info', name: 'flotilla' });
  const agent = new Agent({
    dataDir: opts.dataDir,
    name: opts.name,
    listen: opts.listen,
    containerLabels: opts.containerLabels,
    logger,
    backoff: backoffFromEnv(),
    join: opts.join,
    token: opts.token,
    maxVoters: opts.voters,
    nodeGraceMs: opts.nodeGraceMs,
  });
  await agent.start();
  announceJoinToken(agent.joinToken);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info({ signal }, 'agent stopping');
      agent.stop().then(resolve, (err) => {
        logger.error({ err }, 'agent stop failed');
        resolve();
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

/** A join needs an address others can reach and the cluster's secret. */
function checkClusterOptions(opts: AgentOptions): void {
  if (opts.join && !opts.listen) {
    throw new InvalidError(
      '--join needs --listen HOST:PORT: the cluster must be able to reach this server',
    );
  }
  if (opts.join && !opts.token) {
    throw new InvalidError('--join needs --token (see flotilla token create)');
  }
  if (opts.voters !== undefined && opts.join) {
    throw new InvalidError('--voters is set by the server that founds the cluster, not by joiners');
  }
}

/** The founder prints the token once, on a line of its own, for the operator to copy. */
function announceJoinToken(token: string | undefined): void {
  if (token) process.stdout.write(`join token: ${token}\n`);
}

/**
 * Backoff delays can be shortened for tests and demos with
 * FLOTILLA_BACKOFF_SCALE (0.1 makes every delay ten times shorter).
 */
function backoffFromEnv() {
  const scale = Number(process.env.FLOTILLA_BACKOFF_SCALE ?? '1');
  if (!Number.isFinite(scale) || scale <= 0 || scale === 1) return undefined;
  const ms = (v: number) => Math.max(1, Math.round(v * scale));
  return {
    pullInitialMs: ms(10_000),
    pullMaxMs: ms(300_000),
    crashInitialMs: ms(10_000),
    crashMaxMs: ms(300_000),
    crashResetMs: 600_000,
  };
}
