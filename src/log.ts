import pino from 'pino';
import type { DestinationStream, Logger } from 'pino';

/** How to build the process logger. */
export interface LoggerOptions {
  /** pino level name; `info` when absent. */
  level?: string;
  /** Bound as `name` on every record. */
  name?: string;
  /** Readable lines instead of JSON; default: stdout is a TTY or FLOTILLA_LOG_FORMAT=pretty. */
  pretty?: boolean;
  /** Where lines go; stdout when absent. */
  destination?: DestinationStream | NodeJS.WritableStream;
}

/**
 * Creates the pino logger for one process. Pretty output runs pino-pretty as
 * an in-thread stream, never as a transport: transports start worker threads,
 * which cannot load modules from inside the single-executable bundle.
 */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const options = { level: opts.level ?? 'info', name: opts.name };
  const pretty = opts.pretty ?? wantsPretty();

  if (!pretty) {
    if (!opts.destination) return pino(options);
    return pino(options, opts.destination as DestinationStream);
  }
  const prettyFactory = require('pino-pretty') as typeof import('pino-pretty');
  const stream = prettyFactory({
    destination: opts.destination ?? 1,
    colorize: opts.destination === undefined && process.stdout.isTTY === true,
    sync: true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname',
  });
  return pino(options, stream);
}

function wantsPretty(): boolean {
  const format = process.env.FLOTILLA_LOG_FORMAT;
  if (format === 'pretty') return true;
  if (format === 'json') return false;
  return process.stdout.isTTY === true;
}
