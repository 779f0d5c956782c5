import * as path from 'node:path';
import { ApiClient } from '../api/client';

/** The options every command accepts, wherever they appear on the line. */
export interface GlobalOptions {
  dataDir: string;
  debug?: boolean;
}

/** The agent's admin socket inside a data directory. */
export function socketPathOf(dataDir: string): string {
  return path.join(dataDir, 'flotilla.sock');
}

/** A client for the agent whose data directory the global options name. */
export function createClient(opts: GlobalOptions): ApiClient {
  return new ApiClient({ socketPath: socketPathOf(opts.dataDir) });
}

/** Where a command writes; tests replace it to capture output in-process. */
export interface Output {
  out(text: string): void;
  err(text: string): void;
}

/** Output to the process's stdout and stderr. */
export const processOutput: Output = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
};

/** Thrown after a command has printed its own error lines; only the exit code remains. */
export class ErrorsReported extends Error {
  constructor(count: number) {
    super(`${count} errors reported`);
    this.name = 'ErrorsReported';
  }
}

/**
 * Ends a command that went on after failures: one failure is rethrown for
 * the usual report, several are printed in order and end the command.
 */
export function settleErrors(errors: unknown[], output: Output): void {
  if (errors.length === 1) throw errors[0];
  if (errors.length === 0) return;
  for (const err of errors) output.err(`error: ${(err as Error).message}\n`);
  throw new ErrorsReported(errors.length);
}
