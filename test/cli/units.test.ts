import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Pod } from '../../src/model/k8s-types';
import { agentOptions } from '../../src/cli/agent';
import { formatDuration, renderTable } from '../../src/tables/format';
import { nodeStatus, podStatus, servicePorts } from '../../src/tables/printers';
import { reportFailure } from '../../src/cli/report';
import { parseTargets } from '../../src/tables/kinds';
import { matchesSelector, parseSelector } from '../../src/cli/selector';
import { AgentRequestError, AgentUnreachableError, ApiError, InvalidError } from '../../src/errors';

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

describe('ages', () => {
  const cases: [number, string][] = [
    [-5 * S, '<invalid>'],
    [-500, '0s'],
    [0, '0s'],
    [119 * S, '119s'],
    [2 * M, '2m'],
    [3 * M + 12 * S, '3m12s'],
    [10 * M + 59 * S, '10m'],
    [179 * M, '179m'],
    [3 * H + 5 * M, '3h5m'],
    [8 * H + 5 * M, '8h'],
    [47 * H, '47h'],
    [2 * D, '2d'],
    [3 * D + 4 * H, '3d4h'],
    [20 * D, '20d'],
    [800 * D, '2y70d'],
    [9 * 365 * D, '9y'],
  ];
  for (const [ms, text] of cases) {
    it(`writes ${ms} ms as ${text}`, () => assert.equal(formatDuration(ms), text));
  }
});

describe('tables', () => {
  it('pads every column but the last to its widest cell plus three spaces', () => {
    const text = renderTable({ headers: ['NAME', 'AGE'], rows: [['a-long-name', '5s']] });
    assert.equal(text, 'NAME          AGE\na-long-name   5s\n');
  });

  it('never makes a column narrower than six characters', () => {
    assert.equal(renderTable({ headers: ['A', 'B'], rows: [] }), 'A     B\n');
  });
});

function pod(status: Pod['status'], deleting = false): Pod {
  const metadata = deleting ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {};
  return { metadata, status };
}

describe('pod status', () => {
  it('shows the phase when no container says more', () => {
    assert.equal(podStatus(pod({ phase: 'Pending' })), 'Pending');
  });

  it('shows an image pull failure as the waiting reason', () => {
    const state = { waiting: { reason: 'ImagePullBackOff' } };
    const status = { phase: 'Pending', containerStatuses: [{ name: 'a', state }] };
    assert.equal(podStatus(pod(status)), 'ImagePullBackOff');
  });

  it('shows a terminated container by its reason or exit code', () => {
    const done = { terminated: { exitCode: 0, reason: 'Completed' } };
    const killed = { terminated: { exitCode: 137, signal: 9 } };
    const failed = { terminated: { exitCode: 2 } };
    const of = (state: object) =>
      podStatus(pod({ phase: 'Running', containerStatuses: [{ name: 'a', state }] }));
    assert.equal(of(done), 'Completed');
    assert.equal(of(killed), 'Signal:9');
    assert.equal(of(failed), 'ExitCode:2');
  });

  it('shows Terminating once deletion has begun, whatever the containers do', () => {
    const state = { waiting: { reason: 'CrashLoopBackOff' } };
    const status = { phase: 'Running', containerStatuses: [{ name: 'a', state }] };
    assert.equal(podStatus(pod(status, true)), 'Terminating');
  });
});

describe('node and service cells', () => {
  it('marks a cordoned ready node SchedulingDisabled', () => {
    const node = {
      spec: { unschedulable: true },
      status: { conditions: [{ type: 'Ready', status: 'True' }] },
    };
    assert.equal(nodeStatus(node), 'Ready,SchedulingDisabled');
    assert.equal(nodeStatus({}), 'Unknown');
  });

  it('writes ports with and without node ports', () => {
    const spec = {
      ports: [
        { port: 80, nodePort: 30080 },
        { port: 53, protocol: 'UDP' },
      ],
    };
    assert.equal(servicePorts({ spec }), '80:30080/TCP,53/UDP');
    assert.equal(servicePorts({ spec: {} }), '<none>');
  });
});

describe('resource arguments', () => {
  it('knows kubectl short names, singulars and group-qualified names', () => {
    for (const word of ['no', 'node', 'nodes', 'po', 'pod', 'deploy', 'deployment.apps', 'svc']) {
      assert.equal(parseTargets([word]).length, 1, word);
    }
  });

  it('expands a comma list into one target per kind', () => {
    const kinds = parseTargets(['deploy,svc']).map((t) => t.type.kind);
    assert.deepEqual(kinds, ['Deployment', 'Service']);
  });

  it('reads TYPE/NAME arguments of different kinds', () => {
    const targets = parseTargets(['deploy/web', 'svc/web']);
    assert.deepEqual(
      targets.map((t) => `${t.type.kind}:${t.name}`),
      ['Deployment:web', 'Service:web'],
    );
  });

  it('rejects names after a list of kinds', () => {
    assert.throws(() => parseTargets(['deploy,svc', 'web']), InvalidError);
  });
});

describe('label selectors', () => {
  const labels = { app: 'web', tier: 'front' };

  it('matches equality, inequality and existence terms', () => {
    assert.ok(matchesSelector(labels, parseSelector('app=web,tier!=db')));
    assert.ok(matchesSelector(labels, parseSelector('app==web,tier,!canary')));
    assert.ok(!matchesSelector(labels, parseSelector('app=db')));
    assert.ok(!matchesSelector(labels, parseSelector('!tier')));
  });

  it('rejects a set-based term it cannot evaluate', () => {
    assert.throws(() => parseSelector('app in (web)'), InvalidError);
  });
});

describe('agent options', () => {
  it('collects repeated --container-label flags into one map', () => {
    const opts = agentOptions('/d', { containerLabel: ['team=a', 'env=prod,zone=b'] });
    assert.deepEqual(opts.containerLabels, { team: 'a', env: 'prod', zone: 'b' });
    assert.equal(opts.dataDir, '/d');
  });

  it('rejects a listen address without a port', () => {
    assert.throws(() => agentOptions('/d', { listen: '0.0.0.0' }), InvalidError);
    assert.equal(agentOptions('/d', { listen: '[::1]:7000' }).listen, '[::1]:7000');
  });

  it('rejects a port out of range before anything is written', () => {
    for (const listen of ['127.0.0.1:99999', '[::1]:65536']) {
      assert.throws(() => agentOptions('/d', { listen }), /port from 0 to 65535/, listen);
    }
    // Port 0 takes any free port, which a lone server may do; a member to join needs a real one.
    assert.equal(agentOptions('/d', { listen: '127.0.0.1:0' }).listen, '127.0.0.1:0');
    assert.throws(() => agentOptions('/d', { join: '10.0.0.5:0' }), /--join .*from 1 to 65535/);
  });
});

describe('error reports', () => {
  function report(err: unknown, debug: boolean): string {
    let text = '';
    assert.equal(
      reportFailure(err, debug, (t) => (text += t)),
      1,
    );
    return text;
  }

  it('prints one line for an API error or an unreachable agent even with --debug', () => {
    const conflict = new ApiError('Conflict', 'the object was modified', 409);
    assert.equal(report(conflict, true), 'error: the object was modified\n');
    const down = new ApiError('ServiceUnavailable', 'no leader', 503);
    assert.equal(report(down, true), 'error: no leader\n');
    assert.equal(report(new AgentUnreachableError('/s.sock'), true).split('\n').length, 2);
  });

  it('prints the stack of an unexpected error only with --debug', () => {
    const err = new TypeError('x is undefined');
    assert.equal(report(err, false), 'error: x is undefined\n');
    assert.match(report(err, true), /^error: x is undefined\nTypeError: x is undefined\n\s+at /);
  });

  it('adds the cause of a transport failure with --debug', () => {
    const err = new AgentRequestError('request failed', { cause: new Error('ECONNRESET') });
    assert.match(report(err, true), /caused by: Error: ECONNRESET/);
  });
});
