/**
 * What every client command shares: where the admin API is (flags, then
 * environment, then the config file, then the local agent's socket), and
 * where output goes.
 */
import * as path from 'node:path';
import { ApiClient, caHashOf } from '../api/client';
import type { ApiClientOptions } from '../api/client';
import { parseToken } from '../auth/token-format';
import { InvalidError } from '../errors';

/** Where commander found an option's value: 'cli', 'env', 'default' or undefined. */
export type OptionSource = string | undefined;

/** The options every command accepts, wherever they appear on the line. */
export interface GlobalOptions {
  dataDir: string;
  debug?: boolean;
  /** --server or FLOTILLA_SERVER. */
  server?: string;
  /** --token or FLOTILLA_API_TOKEN. */
  token?: string;
  /** Where dataDir, server and token came from; absent means the command line or unknown. */
  sources?: { dataDir?: OptionSource; server?: OptionSource; token?: OptionSource };
}

/** The agent's admin socket inside a data directory. */
export function socketPathOf(dataDir: string): string {
  return path.join(dataDir, 'flotilla.sock');
}

/** A client for the agent the global options, environment and config file name. */
export function createClient(opts: GlobalOptions): ApiClient {
  return new ApiClient(resolveTarget(opts));
}

/**
 * Decides where requests go. Each of server and token is taken from its
 * flag, else its environment variable, else the config file. The config
 * file's server is skipped when --data-dir or FLOTILLA_DATA_DIR names a data
 * directory, so that an admin on the box keeps the socket; with no server
 * anywhere, the socket of --data-dir it is. The config file is read only
 * when something is missing, so a broken one does not stop explicit flags.
 */
export function resolveTarget(
  opts: GlobalOptions,
  readConfigFile: () => { file: string; config?: import('./config-file').CliConfig } = loadConfig,
): ApiClientOptions {
  const sources = opts.sources ?? {};
  const dataDirChosen = sources.dataDir === 'cli' || sources.dataDir === 'env';
  let server = opts.server;
  let token = opts.token;
  let caPem: string | undefined;
  if (token !== undefined) parseToken(token, nameOf('token', sources.token));

  if (server !== undefined || !dataDirChosen) {
    const { config } = token !== undefined && server !== undefined ? {} : readConfigFile();
    if (config && (server !== undefined || config.server !== undefined)) {
      server ??= config.server;
      token ??= config.token;
      // The saved CA spares a pinning connection, but only for a token that pins that CA.
      if (config.caCert !== undefined && token !== undefined) {
        if (caHashOf(config.caCert) === parseToken(token).caHash) caPem = config.caCert;
      }
    }
  }

  if (server === undefined) {
    if (opts.token !== undefined && sources.token === 'cli') {
      throw new InvalidError(
        '--token needs --server URL (or FLOTILLA_SERVER, or flotilla login); ' +
          'the local socket needs no token',
      );
    }
    return { socketPath: socketPathOf(opts.dataDir) };
  }
  if (token === undefined) {
    throw new InvalidError(
      `--server ${server} needs a token: --token, FLOTILLA_API_TOKEN or flotilla login ` +
        '(the token also tells the CLI which CA to trust)',
    );
  }
  return { server, token, caPem };
}

function nameOf(option: 'server' | 'token', source: OptionSource): string {
  if (source === 'env') return option === 'server' ? 'FLOTILLA_SERVER' : 'FLOTILLA_API_TOKEN';
  return `--${option}`;
}

function loadConfig(): { file: string; config?: import('./config-file').CliConfig } {
  const { configPath, readConfig } = require('./config-file') as typeof import('./config-file');
  const file = configPath(process.env);
  return { file, config: readConfig(file) };
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
