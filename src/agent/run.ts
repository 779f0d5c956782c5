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
  logLevel?: string;
  containerLabels?: Record<string, string>;
}

/** Runs the agent until a signal stops it. */
export async function runAgent(opts: AgentOptions): Promise<void> {
  if (opts.join || opts.token) {
    // Starting alone would quietly make a second cluster: refuse instead.
    throw new InvalidError('--join and --token are not supported yet: this version runs one server');
  }
  const logger = createLogger({ level: opts.logLevel ?? 'info', name: 'flotilla' });
  const agent = new Agent({
    dataDir: opts.dataDir,
    name: opts.name,
    listen: opts.listen,
    containerLabels: opts.containerLabels,
    logger,
    backoff: backoffFromEnv(),
  });
  await agent.start();
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
