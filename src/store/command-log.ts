import type { Command, CommandResult } from './commands';
import { applyCommand } from './apply';
import type { Store } from './store';

/**
 * The one way to change desired state: propose a command; it resolves once
 * the command is durably committed and applied, with what applying it
 * returned. A single server commits at once (LocalCommandLog); a cluster
 * commits through Raft, with the same commands and the same apply function.
 */
export interface CommandLog {
  propose(command: Command): Promise<CommandResult>;
  /** True when this server may propose: it leads, or it is alone. */
  isLeader(): boolean;
}

/**
 * The log of a single-server cluster. Appending a command and applying it
 * to the tables happen in one SQLite transaction, so the tables always
 * match the log, and with synchronous=FULL the commit is on disk before the
 * promise resolves. A command that fails to apply is rolled back whole and
 * leaves no trace in the log.
 */
export class LocalCommandLog implements CommandLog {
  private readonly store: Store;
  private readonly insert;
  private readonly lastIndex;

  constructor(store: Store) {
    this.store = store;
    this.insert = store.db.prepare(
      'INSERT INTO command_log (idx, term, command, created_at) VALUES (?, ?, ?, ?)',
    );
    this.lastIndex = store.db.prepare('SELECT COALESCE(MAX(idx), 0) AS idx FROM command_log');
  }

  isLeader(): boolean {
    return true;
  }

  async propose(command: Command): Promise<CommandResult> {
    return this.commit(command);
  }

  /** Appends and applies `command` synchronously. */
  commit(command: Command): CommandResult {
    const run = this.store.db.transaction(() => {
      const index = (this.lastIndex.get() as { idx: number }).idx + 1;
      this.insert.run(index, 1, JSON.stringify(command), new Date().toISOString());
      const result = applyCommand(this.store, index, command);
      this.store.setMeta('applied_index', String(index));
      return result;
    });
    let result: CommandResult;
    try {
      result = run();
    } catch (err) {
      this.store.discardPending();
      throw err;
    }
    this.store.publishPending(result.index);
    return result;
  }
}
