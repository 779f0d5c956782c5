import { AgentUnreachableError, ApiError, ManifestErrors, isUserError } from '../errors';
import { ErrorsReported } from './context';

/**
 * Writes the `error: MESSAGE` line a failed command ends with (one per
 * invalid document of a manifest) and
 * returns the exit code. Stacks are for Flotilla's own bugs, and even then
 * only when asked for: a user error or an unreachable agent never shows one.
 */
export function reportFailure(err: unknown, debug: boolean, write: (text: string) => void): number {
  if (err instanceof ErrorsReported) return 1;
  if (err instanceof ManifestErrors) {
    for (const one of err.errors) write(`error: ${describeError(one)}\n`);
    return 1;
  }

  write(`error: ${describeError(err)}\n`);
  if (debug && !isExpected(err) && err instanceof Error && err.stack) {
    write(err.stack + '\n');
    if (err.cause instanceof Error && err.cause.stack) write(`caused by: ${err.cause.stack}\n`);
  }
  return 1;
}

// Outcomes the message fully explains: a stack would only hide it.
function isExpected(err: unknown): boolean {
  return isUserError(err) || err instanceof ApiError || err instanceof AgentUnreachableError;
}

function firstLine(message: string): string {
  return message.split('\n')[0] || 'unknown error';
}

/** Whether the user asked for stack traces. */
export function wantsDebug(argv: string[], env: NodeJS.ProcessEnv): boolean {
  return argv.includes('--debug') || env.FLOTILLA_DEBUG === '1';
}

/** The message of an error, with the field problems an API Status lists. */
export function describeError(err: unknown): string {
  const message = firstLine(err instanceof Error ? err.message : String(err));
  if (!(err instanceof ApiError)) return message;
  const extra = err.causes
    .filter((c) => c.message && !message.includes(c.message))
    .map((c) => (c.field ? `${c.field}: ${c.message}` : c.message));
  return extra.length ? `${message} (${extra.join('; ')})` : message;
}
