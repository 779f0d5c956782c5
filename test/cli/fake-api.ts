import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
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
  private readonly server = http.createServer((req, res) => this.handle(req, res));

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

  /** Stops the server and removes the temp dir. */
  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    fs.rmSync(this.dataDir, { recursive: true, force: true });
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
