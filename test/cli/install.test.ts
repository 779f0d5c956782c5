import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import type { Output } from '../../src/cli/context';
import {
  checkHost,
  executePlan,
  planInstall,
  planUninstall,
  quoteArg,
  renderUnit,
  type Executor,
  type InstallPaths,
  type InstallRequest,
} from '../../src/cli/install';
import { runCli } from './fake-api';

const PATHS: InstallPaths = { prefix: '/opt/x', unitDir: '/u', configDir: '/c' };

function request(agent: InstallRequest['agent'] = {}): InstallRequest {
  return { binary: '/tmp/flotilla', dataDir: '/var/lib/flotilla', paths: PATHS, agent };
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

function unitLines(req: InstallRequest): string[] {
  return renderUnit(req).split('\n');
}

describe('the systemd unit', () => {
  it('restarts the agent always and kills only its process on stop', () => {
    const lines = unitLines(request());
    for (const line of ['Restart=always', 'RestartSec=2', 'KillMode=process']) {
      assert.ok(lines.includes(line), `missing ${line}`);
    }
    assert.ok(lines.includes('LimitNOFILE=1048576'));
    assert.ok(lines.includes('WantedBy=multi-user.target'));
  });

  it('starts after Docker and wants it', () => {
    const lines = unitLines(request());
    assert.ok(lines.some((l) => /^After=.*\bdocker\.service\b/.test(l)));
    assert.ok(lines.some((l) => /^Wants=.*\bdocker\.service\b/.test(l)));
  });

  it('runs the installed binary with the given agent flags', () => {
    const req = request({
      name: 'web2',
      listen: '10.0.0.6:7946',
      join: '10.0.0.5:7946',
      token: 'secret123',
      containerLabel: ['a=b'],
    });
    const exec = unitLines(req).find((l) => l.startsWith('ExecStart='));
    assert.equal(
      exec,
      'ExecStart=/opt/x/bin/flotilla agent --data-dir /var/lib/flotilla --name web2 ' +
        '--listen 10.0.0.6:7946 --join 10.0.0.5:7946 --container-label a=b',
    );
  });

  it('keeps the token out of the unit and reads it from the environment file', () => {
    const req = request({ join: '10.0.0.5:7946', token: 'secret123' });
    const unit = renderUnit(req);
    assert.ok(!unit.includes('secret123'));
    assert.ok(unit.split('\n').includes('EnvironmentFile=-/c/flotilla.env'));
  });

  it('names no environment file for a founder without a token', () => {
    assert.ok(!renderUnit(request()).includes('EnvironmentFile'));
  });

  it('quotes words with spaces and escapes systemd specifiers', () => {
    assert.equal(quoteArg('plain/path'), 'plain/path');
    assert.equal(quoteArg('a b'), '"a b"');
    assert.equal(quoteArg('100%'), '100%%');
    assert.equal(quoteArg('$HOME'), '"$$HOME"');
    assert.equal(quoteArg('say "hi"'), '"say \\"hi\\""');
  });
});

describe('the install plan', () => {
  it('copies the binary, writes the files, reloads systemd and enables the unit', () => {
    const plan = planInstall(request({ join: '10.0.0.5:7946', token: 'secret123' }));
    assert.deepEqual(
      plan.steps.map((s) => s.kind),
      ['copy', 'write', 'write', 'run', 'run'],
    );
    assert.deepEqual(plan.steps[0], {
      kind: 'copy',
      from: '/tmp/flotilla',
      to: '/opt/x/bin/flotilla',
      mode: 0o755,
    });
    const env = plan.steps[1];
    assert.ok(env.kind === 'write');
    assert.equal(env.path, '/c/flotilla.env');
    assert.equal(env.mode, 0o600);
    assert.equal(env.content, 'FLOTILLA_TOKEN=secret123\n');
    assert.deepEqual(plan.steps.slice(3), [
      { kind: 'run', argv: ['systemctl', 'daemon-reload'] },
      { kind: 'run', argv: ['systemctl', 'enable', '--now', 'flotilla'] },
    ]);
  });

  it('skips the copy when the binary already is the installed one', () => {
    const plan = planInstall({ ...request(), binary: '/opt/x/bin/flotilla' });
    assert.ok(!plan.steps.some((s) => s.kind === 'copy'));
  });

  it('refuses without a binary to copy', () => {
    assert.equal(codeOf(() => planInstall({ ...request(), binary: undefined })), 'InstallFailed');
  });

  it('refuses --join without --token and the other way round', () => {
    assert.equal(codeOf(() => planInstall(request({ join: '10.0.0.5:7946' }))), 'InstallFailed');
    assert.equal(codeOf(() => planInstall(request({ token: 'abc' }))), 'InstallFailed');
  });

  it('refuses a token that could break the environment file', () => {
    const agent = { join: '10.0.0.5:7946', token: 'a\nEVIL=1' };
    assert.equal(codeOf(() => planInstall(request(agent))), 'InstallFailed');
  });

  it('refuses what the agent would refuse, before writing anything', () => {
    assert.equal(codeOf(() => planInstall(request({ listen: 'nonsense' }))), 'Invalid');
    assert.equal(codeOf(() => planInstall(request({ voters: '9' }))), 'Invalid');
  });

  it('refuses a relative data directory', () => {
    const req = { ...request(), dataDir: 'data' };
    assert.equal(codeOf(() => planInstall(req)), 'InstallFailed');
  });
});

describe('the uninstall plan', () => {
  const req = { dataDir: '/var/lib/flotilla', paths: PATHS };

  it('stops and disables the unit, then removes it, the token and the binary', () => {
    const plan = planUninstall(req);
    assert.deepEqual(plan.steps, [
      { kind: 'run', argv: ['systemctl', 'disable', '--now', 'flotilla'] },
      { kind: 'remove', path: '/u/flotilla.service' },
      { kind: 'remove', path: '/c/flotilla.env' },
      { kind: 'run', argv: ['systemctl', 'daemon-reload'] },
      { kind: 'remove', path: '/opt/x/bin/flotilla' },
    ]);
  });

  it('keeps the binary with keepBinary', () => {
    const plan = planUninstall({ ...req, keepBinary: true });
    assert.ok(!plan.steps.some((s) => s.kind === 'remove' && s.path.endsWith('bin/flotilla')));
  });

  it('leaves containers and data unless purging', () => {
    const plan = planUninstall(req);
    assert.ok(!plan.steps.some((s) => s.kind === 'remove-containers'));
    assert.ok(!plan.steps.some((s) => s.kind === 'remove' && s.path === req.dataDir));
  });

  it('with purge removes the containers and then the data, after the agent stopped', () => {
    const plan = planUninstall({ ...req, purge: true });
    const kinds = plan.steps.map((s) => s.kind);
    const stop = plan.steps.findIndex((s) => s.kind === 'run');
    const containers = kinds.indexOf('remove-containers');
    assert.ok(stop >= 0 && stop < containers);
    assert.deepEqual(plan.steps[containers], {
      kind: 'remove-containers',
      label: 'io.flotilla.managed=true',
    });
    assert.deepEqual(plan.steps.at(-1), {
      kind: 'remove',
      path: '/var/lib/flotilla',
      recursive: true,
    });
  });
});

describe('carrying out a plan', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-install-test-'));
  after(() => fs.rmSync(root, { recursive: true, force: true }));
  const paths: InstallPaths = {
    prefix: path.join(root, 'usr'),
    unitDir: path.join(root, 'etc', 'systemd'),
    configDir: path.join(root, 'etc', 'flotilla'),
  };
  const ran: string[][] = [];
  const removedLabels: string[] = [];
  const recorder: Executor = {
    run: (argv) => void ran.push(argv),
    removeContainers: async (label) => (removedLabels.push(label), 2),
  };
  const quiet: Output = { out: () => undefined, err: () => undefined };

  it('installs the files with their modes and runs systemctl through the executor', async () => {
    const binary = path.join(root, 'flotilla-src');
    fs.writeFileSync(binary, '#!/bin/sh\n');
    const agent = { join: '10.0.0.5:7946', token: 'tok' };
    const dataDir = path.join(root, 'data');
    await executePlan(planInstall({ binary, dataDir, paths, agent }), recorder, quiet);

    const exe = path.join(paths.prefix, 'bin', 'flotilla');
    assert.equal(fs.statSync(exe).mode & 0o777, 0o755);
    assert.equal(fs.statSync(path.join(paths.configDir, 'flotilla.env')).mode & 0o777, 0o600);
    const unit = fs.readFileSync(path.join(paths.unitDir, 'flotilla.service'), 'utf8');
    assert.match(unit, /^ExecStart=.*\/usr\/bin\/flotilla agent /m);
    assert.deepEqual(ran, [
      ['systemctl', 'daemon-reload'],
      ['systemctl', 'enable', '--now', 'flotilla'],
    ]);
  });

  it('uninstalls with purge, removing files, containers and data', async () => {
    const dataDir = path.join(root, 'data');
    fs.mkdirSync(dataDir, { recursive: true });
    fs.writeFileSync(path.join(dataDir, 'state.db'), '');
    ran.length = 0;
    await executePlan(planUninstall({ dataDir, paths, purge: true }), recorder, quiet);

    for (const gone of ['usr/bin/flotilla', 'etc/systemd/flotilla.service', 'data']) {
      assert.ok(!fs.existsSync(path.join(root, gone)), `${gone} still exists`);
    }
    assert.deepEqual(removedLabels, ['io.flotilla.managed=true']);
    assert.deepEqual(ran[0], ['systemctl', 'disable', '--now', 'flotilla']);
  });

  it('stops at the first failing step', async () => {
    const failing: Executor = {
      ...recorder,
      run: () => {
        throw new Error('systemctl failed');
      },
    };
    const plan = planUninstall({ dataDir: path.join(root, 'kept'), paths, purge: true });
    fs.mkdirSync(path.join(root, 'kept'));
    await assert.rejects(executePlan(plan, failing, quiet), /systemctl failed/);
    assert.ok(fs.existsSync(path.join(root, 'kept')));
  });
});

describe('host checks', () => {
  const ok = { uid: 0, hasSystemctl: true, systemdRunning: true };

  it('accepts root on a systemd host', () => {
    assert.doesNotThrow(() => checkHost(ok));
  });

  it('refuses a non-root user, a missing systemctl and a host without systemd', () => {
    assert.equal(codeOf(() => checkHost({ ...ok, uid: 1000 })), 'InstallFailed');
    assert.equal(codeOf(() => checkHost({ ...ok, hasSystemctl: false })), 'InstallFailed');
    assert.equal(codeOf(() => checkHost({ ...ok, systemdRunning: false })), 'InstallFailed');
  });
});

describe('flotilla install --dry-run (compiled CLI)', () => {
  it('prints the unit and the steps, hiding the token', async () => {
    const result = await runCli([
      'install',
      '--dry-run',
      '--binary',
      '/tmp/some-flotilla',
      '--data-dir',
      '/srv/flotilla',
      '--join',
      '10.0.0.5:7946',
      '--token',
      'supersecret',
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.ok(!result.stdout.includes('supersecret'));
    assert.match(result.stdout, /^# \/etc\/systemd\/system\/flotilla\.service$/m);
    assert.match(result.stdout, /^KillMode=process$/m);
    assert.match(result.stdout, /^ExecStart=\/usr\/local\/bin\/flotilla agent --data-dir \/srv/m);
    const copy = /^ {2}1\. copy \/tmp\/some-flotilla to \/usr\/local\/bin\/flotilla /m;
    assert.match(result.stdout, copy);
    assert.match(result.stdout, /^ {2}\d\. run systemctl enable --now flotilla$/m);
  });

  it('refuses without --binary when not the single executable', async () => {
    const result = await runCli(['install', '--dry-run']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^error: .*--binary PATH/);
  });

  it('prints the uninstall steps with --purge', async () => {
    const result = await runCli(['uninstall', '--dry-run', '--purge', '--data-dir', '/srv/f']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /run systemctl disable --now flotilla/);
    assert.match(result.stdout, /remove \/srv\/f and everything in it/);
  });
});
