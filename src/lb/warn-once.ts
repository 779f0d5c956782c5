import type { Logger } from 'pino';

/**
 * Logs a warning the first time a condition is seen and stays quiet until
 * the condition is cleared, so a flapping backend does not flood the log.
 */
export class WarnOnce {
  private readonly active = new Set<string>();

  constructor(private readonly logger: Logger) {}

  /** Warns unless `condition` is already active. */
  warn(condition: string, fields: object, message: string): void {
    if (this.active.has(condition)) return;
    this.active.add(condition);
    this.logger.warn(fields, message);
  }

  /** Ends `condition`; true if it was active, so the caller may log recovery. */
  clear(condition: string): boolean {
    return this.active.delete(condition);
  }
}
