/**
 * The CLI's config file, written by `flotilla login`: which remote agent to
 * talk to, with which token, and the CA pinned when logging in. It lives at
 * FLOTILLA_CONFIG, else $XDG_CONFIG_HOME/flotilla/config.yaml, else
 * ~/.config/flotilla/config.yaml, and holds a secret, hence mode 0600.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseToken } from '../auth/token-format';
import { InvalidError } from '../errors';

/** What the file may hold; every key is optional. */
export interface CliConfig {
  server?: string;
  token?: string;
  caCert?: string;
}

const KEYS: readonly (keyof CliConfig)[] = ['server', 'token', 'caCert'];

/** Where the config file is for this environment. */
export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.FLOTILLA_CONFIG) return path.resolve(env.FLOTILLA_CONFIG);
  // The XDG spec says to ignore a relative XDG_CONFIG_HOME.
  const xdg = env.XDG_CONFIG_HOME;
  const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(env.HOME || os.homedir(), '.config');
  return path.join(base, 'flotilla', 'config.yaml');
}

/** Reads and checks the file; undefined when there is none. */
export function readConfig(file: string): CliConfig | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new InvalidError(`cannot read ${file}: ${(err as Error).message}`);
  }
  return parseConfig(text, file);
}

/** Parses the file's text; errors name the file and the key. */
export function parseConfig(text: string, file: string): CliConfig {
  // Loaded here only: most runs have no config file and need no YAML.
  const YAML = require('yaml') as typeof import('yaml');
  const doc = YAML.parseDocument(text);
  if (doc.errors.length > 0) {
    const [first] = doc.errors;
    const pos = first.linePos?.[0];
    const where = pos === undefined ? file : `${file}:${pos.line}:${pos.col}`;
    const message = first.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
    throw new InvalidError(`${where}: not valid YAML: ${message}`);
  }
  const value: unknown = doc.toJS();
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidError(`${file}: expected a mapping with server, token and caCert`);
  }
  const config: CliConfig = {};
  for (const [key, item] of Object.entries(value)) {
    if (!(KEYS as readonly string[]).includes(key)) {
      throw new InvalidError(`${file}: unknown key "${key}" (expected server, token or caCert)`);
    }
    if (typeof item !== 'string' || item.trim() === '') {
      throw new InvalidError(`${file}: ${key}: expected a non-empty string`);
    }
    config[key as keyof CliConfig] = item;
  }
  if (config.token !== undefined) parseToken(config.token, `${file}: token`);
  if (config.caCert !== undefined) {
    try {
      new crypto.X509Certificate(config.caCert);
    } catch {
      throw new InvalidError(`${file}: caCert: expected a PEM certificate`);
    }
  }
  return config;
}

/**
 * Writes the file with mode 0600 through a temp file and a rename, so that
 * neither a crash nor another reader sees half a file. Directories it has
 * to create get 0700; existing ones are left as they are (FLOTILLA_CONFIG
 * may point into a shared directory).
 */
export function writeConfig(file: string, config: CliConfig): void {
  const YAML = require('yaml') as typeof import('yaml');
  const text = YAML.stringify(config, { lineWidth: 0 });
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const partial = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(partial, 'wx', 0o600);
  try {
    fs.fchmodSync(fd, 0o600);
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.renameSync(partial, file);
  } catch (err) {
    fs.rmSync(partial, { force: true });
    throw err;
  }
}

/** Removes the file; false when there was none. */
export function removeConfig(file: string): boolean {
  try {
    fs.unlinkSync(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
