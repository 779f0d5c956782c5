/**
 * The real kubectl (an unmodified 1.32 binary) against one real agent: the
 * kubeconfig comes from `flotilla kubeconfig`, and apply, get, scale, set
 * image, rollout, edit, logs, events, describe, watch and delete work as on
 * Kubernetes. The steps share one agent and run in order.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ROOT, TestAgent, dockerAvailable, freeLoopbackAddress, waitFor } from './harness';

const EXAMPLE = path.join(ROOT, 'examples', 'awesome-product.yaml');
const KUBECTL = '/usr/bin/kubectl';
const skip = !fs.existsSync(KUBECTL)
  ? 'kubectl is not installed'
  : dockerAvailable()
    ? false
    : 'no Docker engine on this machine';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Table rows as cells, without the AGE column (it ticks between two calls). */
function rowsOf(table: string): string[][] {
  const lines = table
    .trim()
    .split('\n')
    .filter((l) => l.trim() !== '');
  const split = (l: string) => l.trim().split(/\s{2,}/);
  const age = split(lines[0]).indexOf('AGE');
  return lines
    .map(split)
    .map((cells) => cells.filter((_, i) => i !== age))
    .sort((a, b) => a.join(' ').localeCompare(b.join(' ')));
}

describe('kubectl drives a Flotilla agent', { skip }, () => {
  const agent = new TestAgent(freeLoopbackAddress());
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-kubectl-'));
  const kubeconfig = path.join(home, 'config');

  const kubectl = (args: string[], env: Record<string, string> = {}): Result => {
    const r = spawnSync(KUBECTL, ['--kubeconfig', kubeconfig, ...args], {
      env: { ...process.env, HOME: home, ...env },
      encoding: 'utf8',
      timeout: 60_000,
    });
    return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  };
  const ok = (args: string[], env?: Record<string, string>): string => {
    const r = kubectl(args, env);
    assert.equal(r.code, 0, `kubectl ${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr, '', `kubectl ${args.join(' ')} printed on stderr`);
    return r.stdout;
  };
  const flotilla = (args: string[]): string => {
    const r = agent.cli(args);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };
  const podsJson = () => JSON.parse(ok(['get', 'pods', '-o', 'json'])).items as any[];
  const containerIds = () =>
    podsJson()
      .map((p) => p.status.containerStatuses?.[0]?.containerID ?? '')
      .sort();
  const replicas = () =>
    JSON.parse(ok(['get', 'deploy', 'awesome-product', '-o', 'json'])).spec.replicas;
  const waitForRollout = () =>
    ok(['rollout', 'status', 'deployment/awesome-product', '--timeout=90s']);

  before(async () => {
    await agent.start();
    fs.writeFileSync(kubeconfig, flotilla(['kubeconfig']));
  });
  after(async () => {
    await agent.cleanup();
    fs.rmSync(home, { recursive: true, force: true });
  });

  test('kubectl apply creates the three objects, and applying again changes nothing', async () => {
    const first = ok(['apply', '-f', EXAMPLE]);
    assert.deepEqual(first.trim().split('\n'), [
      'deployment.apps/awesome-product created',
      'service/awesome-product-balancer created',
      'service/awesome-product created',
    ]);
    assert.match(waitForRollout(), /successfully rolled out/);
    const before = containerIds();
    assert.equal(before.length, 4);

    const again = ok(['apply', '-f', EXAMPLE]);
    assert.deepEqual(again.trim().split('\n'), [
      'deployment.apps/awesome-product unchanged',
      'service/awesome-product-balancer unchanged',
      'service/awesome-product unchanged',
    ]);
    assert.deepEqual(containerIds(), before);
    const annotations = JSON.parse(ok(['get', 'deploy', 'awesome-product', '-o', 'json'])).metadata
      .annotations;
    assert.equal(annotations['deployment.kubernetes.io/revision'], '1');
  });

  test('kubectl get shows the same tables as flotilla get', () => {
    assert.deepEqual(rowsOf(ok(['get', 'nodes'])), rowsOf(flotilla(['get', 'nodes'])));
    assert.deepEqual(
      rowsOf(ok(['get', 'pods', '-o', 'wide'])),
      rowsOf(flotilla(['get', 'pods', '-o', 'wide'])),
    );
    const both = ok(['get', 'deploy,svc']).split('\n\n');
    const unprefixed = (text: string) => text.replace(/^(deployment\.apps|service)\//gm, '');
    assert.deepEqual(rowsOf(unprefixed(both[0])), rowsOf(flotilla(['get', 'deployments'])));
    assert.deepEqual(rowsOf(unprefixed(both[1])), rowsOf(flotilla(['get', 'services'])));
    assert.match(both[0], /^deployment\.apps\/awesome-product\s/m);
  });

  test('kubectl scale, set image and rollout status roll out the new image', async () => {
    assert.match(ok(['scale', 'deployment', 'awesome-product', '--replicas=6']), /scaled/);
    const image = 'awsprdct=awesomeproduct/awsprdct:v2';
    const set = ['set', 'image', 'deployment/awesome-product', image];
    assert.match(ok(set), /image updated/);
    assert.match(waitForRollout(), /deployment "awesome-product" successfully rolled out/);
    // As on Kubernetes, old pods may still be terminating when the rollout is done.
    const images = () => podsJson().map((p) => p.spec.containers[0].image);
    await waitFor(
      () => images().length === 6,
      30_000,
      () => JSON.stringify(images()),
    );
    assert.deepEqual(new Set(images()), new Set(['awesomeproduct/awsprdct:v2']));
  });

  test('kubectl rollout history lists three revisions and undo goes back one', () => {
    ok(['set', 'env', 'deployment/awesome-product', 'MODE=third']);
    waitForRollout();
    const history = ok(['rollout', 'history', 'deployment/awesome-product']);
    assert.deepEqual(history.match(/^\d+(?=\s)/gm), ['1', '2', '3']);

    assert.match(ok(['rollout', 'undo', 'deployment/awesome-product']), /rolled back/);
    waitForRollout();
    const d = JSON.parse(ok(['get', 'deploy', 'awesome-product', '-o', 'json']));
    const container = d.spec.template.spec.containers[0];
    assert.equal(container.image, 'awesomeproduct/awsprdct:v2');
    assert.equal(container.env, undefined);
    const after = ok(['rollout', 'history', 'deployment/awesome-product']);
    assert.deepEqual(after.match(/^\d+(?=\s)/gm), ['1', '3', '4']);
  });

  test('kubectl edit applies the edit, and an edit of a stale copy gets the conflict', () => {
    const script = path.join(home, 'edit.sh');
    const setReplicas = (from: string, n: number) =>
      `sed '/^spec:/,/^status:/ s/^  replicas: .*/  replicas: ${n}/' "${from}" > "$1.new"\n` +
      'mv "$1.new" "$1"\n';
    fs.writeFileSync(script, `#!/bin/sh\n${setReplicas('$1', 3)}`, { mode: 0o755 });
    assert.match(ok(['edit', 'deployment', 'awesome-product'], { EDITOR: script }), /edited/);
    assert.equal(replicas(), 3);

    // The copy is taken, then another change lands, then the copy is saved.
    const stale = path.join(home, 'stale.yaml');
    fs.writeFileSync(stale, ok(['get', 'deploy', 'awesome-product', '-o', 'yaml']));
    ok(['scale', 'deployment', 'awesome-product', '--replicas=4']);
    fs.writeFileSync(script, `#!/bin/sh\n${setReplicas(stale, 5)}`, { mode: 0o755 });
    const raced = kubectl(['edit', 'deployment', 'awesome-product'], { EDITOR: script });
    assert.equal(raced.code, 1);
    assert.match(raced.stderr, /could not be patched: .*the object has been modified/);
    assert.match(raced.stderr, /kubectl replace -f/);
    assert.equal(replicas(), 4);
  });

  test('kubectl logs, get events, describe, get -w and delete -f work', async () => {
    waitForRollout();
    const pod = podsJson()[0].metadata.name;
    assert.match(ok(['logs', pod]), /awsprdct/);
    await waitFor(() => /Scheduled/.test(ok(['get', 'events'])), 20_000);
    const described = ok(['describe', 'deployment', 'awesome-product']);
    assert.match(described, /^Replicas:\s+4 desired \| 4 updated \| 4 total \| 4 available/m);
    assert.match(described, /NewReplicaSet:\s+awesome-product-\w+ \(4\/4 replicas created\)/);

    const watcher = spawn(KUBECTL, ['--kubeconfig', kubeconfig, 'get', 'pods', '-w'], {
      env: { ...process.env, HOME: home },
    });
    let seen = '';
    watcher.stdout.on('data', (d) => (seen += d));
    try {
      await waitFor(
        () => seen.split('\n').length > 4,
        20_000,
        () => seen,
      );
      ok(['scale', 'deployment', 'awesome-product', '--replicas=5']);
      await waitFor(
        () => /ContainerCreating|Pending/.test(seen),
        20_000,
        () => seen,
      );
    } finally {
      watcher.kill();
    }

    const deleted = ok(['delete', '-f', EXAMPLE]);
    assert.match(deleted, /deployment.apps "awesome-product" deleted/);
    assert.match(deleted, /service "awesome-product" deleted/);
    await waitFor(async () => (await agent.containers()).length === 0, 60_000);
    assert.match(kubectl(['get', 'deploy']).stderr, /No resources found/);
  });

  test('an unsupported kind, verb or namespace gets a clear Kubernetes error', () => {
    const fails = (args: string[], pattern: RegExp, input?: string) => {
      const r = spawnSync(KUBECTL, ['--kubeconfig', kubeconfig, ...args], {
        env: { ...process.env, HOME: home },
        encoding: 'utf8',
        input,
        timeout: 30_000,
      });
      assert.equal(r.status, 1, `kubectl ${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, pattern);
      assert.doesNotMatch(r.stderr, /InternalError|\b500\b/);
    };
    fails(['get', 'configmaps'], /the server doesn't have a resource type "configmaps"/);
    const configMap = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n';
    fails(['apply', '-f', '-'], /no matches for kind "ConfigMap" in version "v1"/, configMap);
    const typo = [
      'apiVersion: apps/v1',
      'kind: Deployment',
      'metadata: {name: typo}',
      'spec:',
      '  replicaz: 2',
      '  selector: {matchLabels: {app: typo}}',
      '  template:',
      '    metadata: {labels: {app: typo}}',
      '    spec: {containers: [{name: c, image: "awesomeproduct/awsprdct:v2"}]}',
    ].join('\n');
    fails(['apply', '-f', '-'], /strict decoding error: spec.replicaz: unknown field/, typo);
    fails(['delete', 'node', agent.name], /\(MethodNotAllowed\)/);
    fails(['get', 'pods', '-n', 'kube-system'], /\(NotFound\).*only the "default" namespace/);
    fails(['apply', '--server-side', '-f', EXAMPLE], /server-side apply is not supported/);
  });
});
