import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FlotillaError } from '../errors';
import { agentOptions, type AgentFlags } from './agent';
import type { Output } from './context';

/**
 * Returned by `flotilla install` / `uninstall`: a plan that cannot be built
 * (no binary to copy, bad flag) or a host that cannot run it (not root,
 * no systemd).
 */
export class InstallError extends FlotillaError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('InstallFailed', message, 400, options);
  }
}

/** The systemd unit's name, without `.service`. */
export const UNIT_NAME = 'flotilla';

/** The label every container Flotilla creates carries (see src/runtime/labels.ts). */
export const MANAGED_LABEL = 'io.flotilla.managed';

/** Where the installed pieces go; every path is injectable so tests stay in a temp dir. */
export interface InstallPaths {
  /** The binary lands in PREFIX/bin/flotilla. */
  prefix: string;
  /** Directory of the unit file. */
  unitDir: string;
  /** Directory of the environment file holding the join token. */
  configDir: string;
}

/** The paths of a standard installation. */
export const DEFAULT_PATHS: InstallPaths = {
  prefix: '/usr/local',
  unitDir: '/etc/systemd/system',
  configDir: '/etc/flotilla',
};

/** One action of a plan; plans are data so they can be printed, tested and then run. */
export type Step =
  | { kind: 'copy'; from: string; to: string; mode: number }
  | { kind: 'write'; path: string; content: string; mode: number; secret?: boolean }
  | { kind: 'run'; argv: string[] }
  | { kind: 'remove'; path: string; recursive?: boolean }
  | { kind: 'remove-containers'; label: string };

/** A sequence of steps plus notes to print once they are done. */
export interface Plan {
  steps: Step[];
  notes: string[];
}

/** What `flotilla install` was asked for, flags already parsed. */
export interface InstallRequest {
  /** The executable to copy; undefined when not running as the single executable. */
  binary?: string;
  dataDir: string;
  paths: InstallPaths;
  agent: AgentFlags;
}

/** What `flotilla uninstall` was asked for. */
export interface UninstallRequest {
  dataDir: string;
  paths: InstallPaths;
  keepBinary?: boolean;
  purge?: boolean;
}

/** The installed binary's path. */
export function binaryPath(paths: InstallPaths): string {
  return path.join(paths.prefix, 'bin', 'flotilla');
}

/** The unit file's path. */
export function unitPath(paths: InstallPaths): string {
  return path.join(paths.unitDir, `${UNIT_NAME}.service`);
}

/** The environment file's path; it exists only when a token was given. */
export function envPath(paths: InstallPaths): string {
  return path.join(paths.configDir, 'flotilla.env');
}

/** Builds the install plan, refusing what the agent itself would refuse. */
export function planInstall(req: InstallRequest): Plan {
  checkInstallRequest(req);
  const exe = binaryPath(req.paths);
  const steps: Step[] = [];
  if (path.resolve(req.binary!) !== exe) {
    steps.push({ kind: 'copy', from: req.binary!, to: exe, mode: 0o755 });
  }
  if (req.agent.token !== undefined) {
    const content = `FLOTILLA_TOKEN=${req.agent.token}\n`;
    steps.push({ kind: 'write', path: envPath(req.paths), content, mode: 0o600, secret: true });
  }
  const unit = renderUnit(req);
  steps.push({ kind: 'write', path: unitPath(req.paths), content: unit, mode: 0o644 });
  steps.push({ kind: 'run', argv: ['systemctl', 'daemon-reload'] });
  steps.push({ kind: 'run', argv: ['systemctl', 'enable', '--now', UNIT_NAME] });
  const notes = [`follow the agent's log with: journalctl -u ${UNIT_NAME} -f`];
  if (req.agent.join === undefined) {
    notes.push(`the agent founds a cluster; print its join token with: ${exe} token create`);
  }
  return { steps, notes };
}

function checkInstallRequest(req: InstallRequest): void {
  if (req.binary === undefined) {
    throw new InstallError(
      'not running as the single flotilla executable (this is node running a script); ' +
        'give the executable to install with --binary PATH',
    );
  }
  if (!path.isAbsolute(req.dataDir)) {
    throw new InstallError(`expected --data-dir as an absolute path, got "${req.dataDir}"`);
  }
  agentOptions(req.dataDir, req.agent);
  if ((req.agent.join === undefined) !== (req.agent.token === undefined)) {
    throw new InstallError('expected --join and --token together, got only one of them');
  }
  if (req.agent.token !== undefined && !/^[A-Za-z0-9._~+/=-]+$/.test(req.agent.token)) {
    throw new InstallError('expected --token as printed by `flotilla token create`');
  }
}

/** Renders the systemd unit that runs `flotilla agent` with the requested flags. */
export function renderUnit(req: InstallRequest): string {
  const lines = [
    '[Unit]',
    'Description=Flotilla agent (container orchestrator)',
    'After=network-online.target docker.service',
    'Wants=network-online.target docker.service',
    '',
    '[Service]',
    'Type=simple',
    `ExecStart=${agentCommand(req).map(quoteArg).join(' ')}`,
  ];
  // The dash: a missing file is no error, so a founder needs none.
  if (req.agent.token !== undefined) lines.push(`EnvironmentFile=-${envPath(req.paths)}`);
  lines.push(
    'Restart=always',
    'RestartSec=2',
    // Only the agent is signalled: containers are dockerd's children anyway,
    // and a restart must leave healthy pods and in-flight work alone.
    'KillMode=process',
    'TimeoutStopSec=60',
    'LimitNOFILE=1048576',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  );
  return lines.join('\n');
}

/** The agent's argv in the unit; the token stays out of it (EnvironmentFile). */
function agentCommand(req: InstallRequest): string[] {
  const argv = [binaryPath(req.paths), 'agent', '--data-dir', req.dataDir];
  const a = req.agent;
  const pairs: [string, string | undefined][] = [
    ['--name', a.name],
    ['--listen', a.listen],
    ['--join', a.join],
    ['--voters', a.voters],
    ['--node-grace', a.nodeGrace],
    ['--log-level', a.logLevel],
  ];
  for (const [flag, value] of pairs) if (value !== undefined) argv.push(flag, value);
  for (const label of a.containerLabel ?? []) argv.push('--container-label', label);
  return argv;
}

/** Quotes one word for a systemd command line, where % and $ are special. */
export function quoteArg(word: string): string {
  const escaped = word.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  if (/^[A-Za-z0-9_@%+=:,./[\]-]+$/.test(escaped)) return escaped;
  return `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/**
 * Builds the uninstall plan: stop and disable the unit, remove it and the
 * token file, the binary unless kept; with purge, this node's containers
 * and the data directory too.
 */
export function planUninstall(req: UninstallRequest): Plan {
  const steps: Step[] = [
    { kind: 'run', argv: ['systemctl', 'disable', '--now', UNIT_NAME] },
    { kind: 'remove', path: unitPath(req.paths) },
    { kind: 'remove', path: envPath(req.paths) },
    { kind: 'run', argv: ['systemctl', 'daemon-reload'] },
  ];
  if (!req.keepBinary) steps.push({ kind: 'remove', path: binaryPath(req.paths) });
  const notes: string[] = [];
  if (req.purge) {
    // After the stop: a running agent would recreate what is removed.
    steps.push({ kind: 'remove-containers', label: `${MANAGED_LABEL}=true` });
    steps.push({ kind: 'remove', path: req.dataDir, recursive: true });
    notes.push('a cluster still lists this node: run `flotilla node remove NAME` on a member');
  } else {
    notes.push(`containers keep running and ${req.dataDir} is kept (--purge removes both)`);
  }
  return { steps, notes };
}

/** Describes a step in one line, without any secret it writes. */
export function describeStep(step: Step): string {
  const mode = (m: number) => m.toString(8).padStart(4, '0');
  switch (step.kind) {
    case 'copy':
      return `copy ${step.from} to ${step.to} (mode ${mode(step.mode)})`;
    case 'write':
      return `write ${step.path} (mode ${mode(step.mode)})`;
    case 'run':
      return `run ${step.argv.join(' ')}`;
    case 'remove':
      return `remove ${step.path}${step.recursive ? ' and everything in it' : ''}`;
    case 'remove-containers':
      return `remove every Docker container labelled ${step.label}`;
  }
}

/** The text `--dry-run` prints: each file written, then the numbered steps. */
export function renderPlan(plan: Plan): string {
  let text = '';
  for (const step of plan.steps) {
    if (step.kind !== 'write') continue;
    const body = step.secret ? redact(step.content) : step.content;
    text += `# ${step.path}\n${body}\n`;
  }
  text += 'steps:\n';
  plan.steps.forEach((step, i) => (text += `  ${i + 1}. ${describeStep(step)}\n`));
  for (const note of plan.notes) text += `note: ${note}\n`;
  return text;
}

function redact(content: string): string {
  return content.replace(/=.*$/gm, '=<hidden>');
}

/** The side effects a plan needs; tests hand in a recorder instead of systemctl. */
export interface Executor {
  run(argv: string[]): void;
  removeContainers(label: string): Promise<number>;
}

/** Runs a plan's steps in order; stops at the first one that fails. */
export async function executePlan(plan: Plan, exec: Executor, output: Output): Promise<void> {
  for (const step of plan.steps) {
    output.out(`${describeStep(step)}\n`);
    await executeStep(step, exec, output);
  }
  for (const note of plan.notes) output.out(`note: ${note}\n`);
}

async function executeStep(step: Step, exec: Executor, output: Output): Promise<void> {
  switch (step.kind) {
    case 'copy':
      return copyAtomically(step.from, step.to, step.mode);
    case 'write':
      return writeAtomically(step.path, step.content, step.mode);
    case 'run':
      return exec.run(step.argv);
    case 'remove':
      return fs.rmSync(step.path, { force: true, recursive: step.recursive ?? false });
    case 'remove-containers': {
      const count = await exec.removeContainers(step.label);
      output.out(`  removed ${count} containers\n`);
    }
  }
}

// Rename, not overwrite: the running agent's binary cannot be written
// in place (ETXTBSY), and a half-written unit must never be loaded.
function copyAtomically(from: string, to: string, mode: number): void {
  fs.mkdirSync(path.dirname(to), { recursive: true });
  const temp = `${to}.${process.pid}.tmp`;
  fs.copyFileSync(from, temp);
  fs.chmodSync(temp, mode);
  fs.renameSync(temp, to);
}

function writeAtomically(file: string, content: string, mode: number): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const temp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temp, content, { mode });
  fs.chmodSync(temp, mode);
  fs.renameSync(temp, file);
}

/** The executor of a real installation: systemctl and the local Docker engine. */
export const systemExecutor: Executor = {
  run(argv) {
    const result = spawnSync(argv[0], argv.slice(1), { stdio: 'inherit' });
    if (result.error) {
      throw new InstallError(`cannot run ${argv[0]}: ${result.error.message}`, {
        cause: result.error,
      });
    }
    if (result.status !== 0) {
      throw new InstallError(`${argv.join(' ')} exited with ${result.status ?? result.signal}`);
    }
  },
  async removeContainers(label) {
    const { DockerRuntime } = await import('../runtime/docker-runtime');
    const runtime = new DockerRuntime();
    const [key, value] = label.split('=');
    const containers = await runtime.listContainers({ [key]: value });
    for (const c of containers) await runtime.removeContainer(c.id);
    return containers.length;
  },
};

/** What the host must offer before a plan runs for real. */
export interface HostFacts {
  uid: number | undefined;
  hasSystemctl: boolean;
  systemdRunning: boolean;
}

/** Refuses to start a plan the host cannot finish. */
export function checkHost(facts: HostFacts): void {
  if (facts.uid !== 0) {
    throw new InstallError('must run as root (try sudo): it writes under /etc and /usr/local');
  }
  if (!facts.hasSystemctl) {
    throw new InstallError('systemctl not found: install and uninstall need systemd');
  }
  if (!facts.systemdRunning) {
    throw new InstallError('systemd is not running on this host (no /run/systemd/system)');
  }
}

/** The facts of the host this process runs on. */
export function probeHost(): HostFacts {
  const probe = spawnSync('systemctl', ['--version'], { stdio: 'ignore' });
  return {
    uid: process.getuid?.(),
    hasSystemctl: probe.error === undefined,
    systemdRunning: fs.existsSync('/run/systemd/system'),
  };
}

/** The executable to install: this one when it is the single executable. */
export function selfBinary(): string | undefined {
  try {
    const sea = require('node:sea') as { isSea(): boolean };
    return sea.isSea() ? process.execPath : undefined;
  } catch {
    return undefined;
  }
}

/** The install command's flags as commander hands them over. */
export interface InstallFlags extends AgentFlags {
  binary?: string;
  prefix: string;
  unitDir: string;
  configDir: string;
  dryRun?: boolean;
}

/** The uninstall command's flags as commander hands them over. */
export interface UninstallFlags {
  prefix: string;
  unitDir: string;
  configDir: string;
  keepBinary?: boolean;
  purge?: boolean;
  dryRun?: boolean;
}

/** Runs `flotilla install`. */
export async function runInstall(
  dataDir: string,
  flags: InstallFlags,
  output: Output,
): Promise<void> {
  const { binary, prefix, unitDir, configDir, dryRun, ...agent } = flags;
  const plan = planInstall({
    binary: binary === undefined ? selfBinary() : path.resolve(binary),
    dataDir: path.resolve(dataDir),
    paths: { prefix, unitDir, configDir },
    agent,
  });
  await carryOut(plan, dryRun, output);
}

/** Runs `flotilla uninstall`. */
export async function runUninstall(
  dataDir: string,
  flags: UninstallFlags,
  output: Output,
): Promise<void> {
  const plan = planUninstall({
    dataDir: path.resolve(dataDir),
    paths: { prefix: flags.prefix, unitDir: flags.unitDir, configDir: flags.configDir },
    keepBinary: flags.keepBinary,
    purge: flags.purge,
  });
  await carryOut(plan, flags.dryRun, output);
}

async function carryOut(plan: Plan, dryRun: boolean | undefined, output: Output): Promise<void> {
  if (dryRun) {
    output.out(renderPlan(plan));
    return;
  }
  checkHost(probeHost());
  await executePlan(plan, systemExecutor, output);
}
