/**
 * Runs real Flotilla agents for end-to-end tests: a child process per agent
 * on a loopback address of its own, with a temp data directory, real Docker
 * and real HTTP. Every container an agent creates carries this run's
 * io.flotilla.test-run label, and cleanup removes exactly those.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

/** The repository root (build/test/e2e is three levels below it). */
export const ROOT = path.resolve(__dirname, '..', '..', '..');

/** The flotilla command: the single executable when FLOTILLA_E2E_BIN is set. */
export function flotillaCommand(): string[] {
  const bin = process.env.FLOTILLA_E2E_BIN;
  if (bin) return [path.resolve(ROOT, bin)];
  return [process.execPath, path.join(ROOT, 'build', 'src', 'main.js')];
}

/**
 * The environment for flotilla processes. FLOTILLA_E2E_PATH replaces PATH
 * for them only, so that the single executable can be run without Node.js
 * on PATH while the test itself still finds docker.
 */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  if (process.env.FLOTILLA_E2E_PATH) env.PATH = process.env.FLOTILLA_E2E_PATH;
  return env;
}

/** True when a Docker engine answers on its default socket. */
export function dockerAvailable(): boolean {
  return spawnSync('docker', ['info'], { stdio: 'ignore' }).status === 0;
}

/** The outcome of one CLI call. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** One agent process and the CLI pointed at it. */
export class TestAgent {
  readonly runId = crypto.randomBytes(4).toString('hex');
  readonly dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-e2e-'));
  readonly address: string;
  readonly name: string;
  private child?: ChildProcess;
  private output = '';
  /** --join and --token, kept for restarts. */
  private joinArgs: string[] = [];
  /** Extra environment for the agent process (e.g. a short certificate lifetime). */
  env: Record<string, string> = {};

  constructor(address: string, name = `e2e-${crypto.randomBytes(3).toString('hex')}`) {
    this.address = address;
    this.name = name;
  }

  /** Makes every later start join the cluster member at `address`. */
  joinTo(address: string, token: string): this {
    this.joinArgs = ['--join', address, '--token', token];
    return this;
  }

  /** The token a founding agent printed on its `join token:` line. */
  joinToken(): string | undefined {
    return /^join token: (\S+)$/m.exec(this.output)?.[1];
  }

  /** Starts the agent and waits until its socket answers. */
  async start(): Promise<void> {
    const [cmd, ...args] = flotillaCommand();
    const child = spawn(
      cmd,
      [
        ...args,
        'agent',
        '--data-dir',
        this.dataDir,
        '--name',
        this.name,
        '--listen',
        `${this.address}:7946`,
        '--container-label',
        `io.flotilla.test-run=${this.runId}`,
        ...this.joinArgs,
      ],
      {
        env: childEnv({
          FLOTILLA_BACKOFF_SCALE: '0.1',
          FLOTILLA_LOG_FORMAT: 'json',
          ...this.env,
        }),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    child.stdout!.on('data', (d) => (this.output += d));
    child.stderr!.on('data', (d) => (this.output += d));
    this.child = child;
    await waitFor(
      async () => (await this.apiGet('/version')) !== undefined,
      15_000,
      () => `agent did not come up:\n${this.output}`,
    );
  }

  /** Kills the agent with `signal` and waits for it to exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    await exited;
  }

  /** What the agent printed so far, for failure messages. */
  logs(): string {
    return this.output;
  }

  /** Runs a flotilla CLI command against this agent. */
  cli(args: string[], input?: string): CliResult {
    const [cmd, ...pre] = flotillaCommand();
    const r = spawnSync(cmd, [...pre, '--data-dir', this.dataDir, ...args], {
      input,
      env: childEnv(),
      encoding: 'utf8',
      timeout: 60_000,
    });
    return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  }

  /** GETs an API path over the unix socket; undefined when the agent is down. */
  apiGet<T = any>(apiPath: string): Promise<T | undefined> {
    return new Promise((resolve) => {
      const req = http.get(
        { socketPath: path.join(this.dataDir, 'flotilla.sock'), path: apiPath },
        (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => {
            try {
              resolve(res.statusCode === 200 ? JSON.parse(body) : undefined);
            } catch {
              resolve(undefined);
            }
          });
        },
      );
      req.on('error', () => resolve(undefined));
    });
  }

  /** This run's containers as Docker sees them. */
  containers(all = true): Promise<DockerContainer[]> {
    return dockerGet(
      `/containers/json?all=${all ? 1 : 0}&filters=${encodeURIComponent(
        JSON.stringify({ label: [`io.flotilla.test-run=${this.runId}`] }),
      )}`,
    ) as Promise<DockerContainer[]>;
  }

  /** Stops the agent and removes its containers and data. */
  async cleanup(): Promise<void> {
    await this.kill('SIGKILL');
    const ids = (await this.containers().catch(() => [])).map((c) => c.Id);
    if (ids.length) spawnSync('docker', ['rm', '-f', ...ids], { stdio: 'ignore' });
    fs.rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** The fields of Docker's container list that the tests read. */
export interface DockerContainer {
  Id: string;
  State: string;
  Labels: Record<string, string>;
}

/** GETs a Docker Engine API path on the local socket. */
export function dockerGet(apiPath: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath: '/var/run/docker.sock', path: apiPath }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body));
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on('error', reject);
  });
}

/** One HTTP GET with a short timeout; the body, or an Error. */
export function httpGet(url: string, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () =>
        res.statusCode === 200
          ? resolve(body)
          : reject(new Error(`HTTP ${res.statusCode}: ${body}`)),
      );
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/** Polls `check` until it is true; fails with `describe()` after `timeoutMs`. */
export async function waitFor(
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  describe: () => string = () => 'condition not met',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${describe()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A loopback address unlikely to be used by anything else on the machine. */
export function freeLoopbackAddress(): string {
  return `127.0.${crypto.randomInt(100, 200)}.${crypto.randomInt(2, 250)}`;
}

/**
 * A Deployment of no replicas named `name` whose annotation is `step`:
 * applying it with a new step is a real replicated write that starts nothing.
 */
export function markerManifest(name: string, step: number): string {
  return `
apiVersion: apps/v1
kind: Deployment
metadata: { name: ${name}, annotations: { step: "${step}" } }
spec:
  replicas: 0
  selector: { matchLabels: { app: ${name} } }
  template:
    metadata: { labels: { app: ${name} } }
    spec:
      containers: [{ name: idle, image: awesomeproduct/awsprdct:amazing }]
`;
}
