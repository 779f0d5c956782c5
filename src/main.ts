#!/usr/bin/env node
/**
 * Entry point of the single `flotilla` binary: the agent and the admin CLI
 * are subcommands of it.
 */
import { buildProgram } from './cli/program';

async function main(): Promise<void> {
  // `flotilla get pods | head` closes the pipe early; that is not a failure.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(0);
  });

  try {
    await buildProgram().parseAsync(process.argv);
  } catch (err) {
    const { reportFailure, wantsDebug } = await import('./cli/report');
    const debug = wantsDebug(process.argv, process.env);
    process.exitCode = reportFailure(err, debug, (text) => process.stderr.write(text));
  }
}

void main();
