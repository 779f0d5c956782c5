import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as crypto from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';

/** One request the fake API received. */
export interface Recorded {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: unknown;
}

/** A canned answer: status and JSON body. */
export interface Answer {
  status: number;
  body?: unknown;
}

type Handler = (req: Recorded) => Answer;

/**
 * A stand-in for the agent's admin API on a unix socket in a temp dir. It
 * answers from routes keyed `METHOD /path` (query included or not) and
 * records every request so tests can check what the CLI sent.
 */
export class FakeApi {
  readonly dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-cli-test-'));
  readonly requests: Recorded[] = [];
  private readonly routes = new Map<string, Handler>();
  private server: http.Server = http.createServer((req, res) => this.handle(req, res));
  /** `https://HOST:PORT` once started with startHttps. */
  url = '';

  /** Answers `METHOD path` with a fixed body, or with what a handler returns. */
  on(route: string, answer: Answer | Handler): this {
    this.routes.set(route, typeof answer === 'function' ? answer : () => answer);
    return this;
  }

  /** Starts listening at DATA_DIR/flotilla.sock. */
  async start(): Promise<this> {
    const socketPath = path.join(this.dataDir, 'flotilla.sock');
    await new Promise<void>((resolve) => this.server.listen(socketPath, resolve));
    return this;
  }

  /**
   * Starts listening with TLS on HOST (default 127.0.0.1) at a free port,
   * presenting `chain` (default node-a's: [node-a, ca]) instead of the socket.
   */
  async startHttps(chain: TlsChain = tlsChain('node-a', 'ca'), host = '127.0.0.1'): Promise<this> {
    this.server = https.createServer(chain, (req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server.listen(0, host, resolve));
    const { port } = this.server.address() as import('node:net').AddressInfo;
    this.url = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
    return this;
  }

  /** Stops the server and removes the temp dir. */
  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    fs.rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** Closes kept-alive connections, so that the next request makes a new one. */
  closeIdle(): void {
    this.server.closeAllConnections();
  }

  /** Requests other than reads, the ones that change something. */
  writes(): Recorded[] {
    return this.requests.filter((r) => r.method !== 'GET');
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const recorded: Recorded = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: text ? JSON.parse(text) : undefined,
      };
      this.requests.push(recorded);
      const answer = this.route(recorded);
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(answer.body === undefined ? '' : JSON.stringify(answer.body));
    });
  }

  private route(req: Recorded): Answer {
    const bare = req.url.split('?')[0];
    const handler =
      this.routes.get(`${req.method} ${req.url}`) ?? this.routes.get(`${req.method} ${bare}`);
    if (handler) return handler(req);
    return status(404, 'NotFound', `the server could not find ${req.method} ${bare}`);
  }
}

/** Where the test certificates are (test/fixtures/pki, seen from build/test/cli). */
export const PKI_DIR = path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'pki');

/** A fixture file's text, e.g. pki('ca.crt'). */
export function pki(file: string): string {
  return fs.readFileSync(path.join(PKI_DIR, file), 'utf8');
}

/** A server certificate chain and its key, for https.createServer. */
export interface TlsChain {
  cert: string;
  key: string;
}

/** The chain [NODE, ISSUER] with NODE's key, as the agent presents it. */
export function tlsChain(node: string, issuer?: string): TlsChain {
  const cert = pki(`${node}.crt`) + (issuer ? pki(`${issuer}.crt`) : '');
  return { cert, key: pki(`${node}.key`) };
}

/** A well-formed token pinning the CA in fixture `caFile` (e.g. 'ca.crt'). */
export function tokenFor(caFile: string, id = 'a1b2c3d4e5f6'): string {
  const der = new crypto.X509Certificate(pki(caFile)).raw;
  const caHash = crypto.createHash('sha256').update(der).digest('hex');
  return `flt1.${caHash}.${id}.${'5'.repeat(32)}`;
}

/** A Kubernetes Status answer. */
export function status(code: number, reason: string, message: string, causes?: unknown[]): Answer {
  const details = causes ? { causes } : undefined;
  return {
    status: code,
    body: { kind: 'Status', apiVersion: 'v1', status: 'Failure', message, reason, code, details },
  };
}

/** What a finished CLI run printed and how it exited. */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The compiled CLI entry point next to the compiled tests. */
export const MAIN = path.join(__dirname, '..', '..', 'src', 'main.js');

/** Runs the compiled CLI as a child process; never blocks the fake server. */
export function runCli(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; input?: string; nodeArgs?: string[] } = {},
): Promise<CliResult> {
  const env = { ...process.env, FLOTILLA_DEBUG: '', ...opts.env };
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), MAIN, ...args], { env });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdin.end(opts.input ?? '');
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** An RFC 3339 timestamp `ms` before now. */
export function ago(ms: number): string {
  return new Date(Date.now() - ms).toISOString();
}

/** Milliseconds in a minute, an hour and a day, for readable fixtures. */
export const MIN = 60_000;
export const HOUR = 60 * MIN;
export const DAY = 24 * HOUR;

const STAND_INS: Record<string, string> = {
  load: `
const fs = require('node:fs');
const YAML = require('yaml');
const { ManifestError } = require('../errors');
async function read(file, stdin) {
  if (file !== '-') return fs.readFileSync(file, 'utf8');
  let text = '';
  for await (const chunk of stdin) text += chunk;
  return text;
}
exports.loadManifests = async (paths, opts) => {
  const objects = [];
  for (const file of paths) {
    for (const doc of YAML.parseAllDocuments(await read(file, opts.stdin))) {
      if (doc.errors.length) throw new ManifestError(doc.errors[0].message, { file });
      objects.push({ object: doc.toJS(), source: { file, line: 1 } });
    }
  }
  return { objects, warnings: [] };
};`,
  validate: `
exports.validateManifest = (value, ctx) => {
  if (!value.spec) {
    const { ManifestError } = require('../errors');
    throw new ManifestError('spec: expected an object', { file: ctx.file, line: 1 });
  }
  return { object: value, warnings: [] };
};`,
};

/**
 * Puts minimal stand-ins for the manifest module next to the compiled CLI
 * when the real module has not been built there (a build of the CLI's files
 * alone). They stay: test files run in parallel and may all be using them,
 * and compiling the real module overwrites them.
 */
export function ensureManifestModule(): void {
  const dir = path.join(path.dirname(MAIN), 'manifest');
  for (const [name, source] of Object.entries(STAND_INS)) {
    const file = path.join(dir, `${name}.js`);
    if (fs.existsSync(file)) continue;
    fs.mkdirSync(dir, { recursive: true });
    const partial = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(partial, source);
    fs.renameSync(partial, file);
  }
}
