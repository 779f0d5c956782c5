import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyJsonPatch } from '../../src/api/json-patch';
import { parseFieldSelector, parseLabelSelector } from '../../src/api/selectors';
import { applyStrategicMergePatch } from '../../src/api/strategic-merge-patch';
import { FlotillaError } from '../../src/errors';

const deployment = () => ({
  metadata: { name: 'web', annotations: { a: '1' }, finalizers: ['x'] },
  spec: {
    replicas: 2,
    strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1 } },
    template: {
      spec: {
        containers: [
          {
            name: 'main',
            image: 'app:1',
            ports: [{ containerPort: 80 }, { containerPort: 81 }],
            env: [
              { name: 'A', value: '1' },
              { name: 'B', value: '2' },
            ],
            args: ['--one'],
          },
          { name: 'side', image: 'side:1' },
        ],
      },
    },
  },
});

type Sample = ReturnType<typeof deployment>;
const containers = (d: unknown) => (d as Sample).spec.template.spec.containers;

describe('strategic merge patch', () => {
  it('merges containers by name and keeps the fields the patch does not name', () => {
    const patched = applyStrategicMergePatch(deployment(), {
      spec: { template: { spec: { containers: [{ name: 'side', image: 'side:2' }] } } },
    });
    assert.deepEqual(containers(patched).map((c) => [c.name, c.image]), [
      ['main', 'app:1'],
      ['side', 'side:2'],
    ]);
    assert.equal(containers(patched)[0].env?.length, 2);
  });

  it('merges env by name and ports by containerPort, and replaces args whole', () => {
    const patched = applyStrategicMergePatch(deployment(), {
      spec: {
        template: {
          spec: {
            containers: [
              {
                name: 'main',
                env: [{ name: 'B', value: 'two' }, { name: 'C', value: '3' }],
                ports: [{ containerPort: 81, name: 'admin' }],
                args: ['--two'],
              },
            ],
          },
        },
      },
    });
    const main = containers(patched)[0] as Record<string, unknown>;
    assert.deepEqual(main.env, [
      { name: 'A', value: '1' },
      { name: 'B', value: 'two' },
      { name: 'C', value: '3' },
    ]);
    assert.deepEqual(main.ports, [{ containerPort: 80 }, { containerPort: 81, name: 'admin' }]);
    assert.deepEqual(main.args, ['--two']);
  });

  it('deletes a list element with $patch: delete and a field with null', () => {
    const patched = applyStrategicMergePatch(deployment(), {
      metadata: { annotations: { a: null } },
      spec: { template: { spec: { containers: [{ name: 'side', $patch: 'delete' }] } } },
    }) as ReturnType<typeof deployment>;
    assert.deepEqual(containers(patched).map((c) => c.name), ['main']);
    assert.deepEqual(patched.metadata.annotations, {});
  });

  it('replaces a map with $patch: replace and keeps only $retainKeys', () => {
    const replaced = applyStrategicMergePatch(deployment(), {
      spec: { strategy: { $patch: 'replace', type: 'Recreate' } },
    }) as ReturnType<typeof deployment>;
    assert.deepEqual(replaced.spec.strategy, { type: 'Recreate' });
    const retained = applyStrategicMergePatch(deployment(), {
      spec: { strategy: { $retainKeys: ['type'], type: 'Recreate' } },
    }) as ReturnType<typeof deployment>;
    assert.deepEqual(retained.spec.strategy, { type: 'Recreate' });
  });

  it('orders a merged list as $setElementOrder says', () => {
    const patched = applyStrategicMergePatch(deployment(), {
      spec: {
        template: {
          spec: {
            '$setElementOrder/containers': [{ name: 'side' }, { name: 'main' }],
            containers: [{ name: 'side', image: 'side:3' }],
          },
        },
      },
    });
    assert.deepEqual(containers(patched).map((c) => c.name), ['side', 'main']);
  });

  it('adds to and removes from a merged primitive list', () => {
    const patched = applyStrategicMergePatch(deployment(), {
      metadata: { finalizers: ['y'], '$deleteFromPrimitiveList/finalizers': ['x'] },
    }) as ReturnType<typeof deployment>;
    assert.deepEqual(patched.metadata.finalizers, ['y']);
  });

  it('merges Service ports by port', () => {
    const svc = { spec: { ports: [{ port: 80, nodePort: 30001 }, { port: 443 }] } };
    const patch = { spec: { ports: [{ port: 80, targetPort: 8080 }] } };
    const patched = applyStrategicMergePatch(svc, patch);
    assert.deepEqual(patched, {
      spec: { ports: [{ port: 80, nodePort: 30001, targetPort: 8080 }, { port: 443 }] },
    });
  });

  it('refuses an element of a merged list without its merge key', () => {
    assert.throws(
      () =>
        applyStrategicMergePatch(deployment(), {
          spec: { template: { spec: { containers: [{ image: 'x' }] } } },
        }),
      (err: FlotillaError) => err.code === 'BadRequest',
    );
  });
});

describe('JSON patch', () => {
  it('applies add, replace, remove, move, copy and test in order', () => {
    const patched = applyJsonPatch({ a: { b: [1, 2] }, c: 'x' }, [
      { op: 'test', path: '/c', value: 'x' },
      { op: 'add', path: '/a/b/-', value: 3 },
      { op: 'add', path: '/a/b/0', value: 0 },
      { op: 'replace', path: '/c', value: 'y' },
      { op: 'copy', from: '/c', path: '/d' },
      { op: 'move', from: '/d', path: '/e~1f' },
      { op: 'remove', path: '/a/b/1' },
    ]);
    assert.deepEqual(patched, { a: { b: [0, 2, 3] }, c: 'y', 'e/f': 'y' });
  });

  it('fails whole when a test fails or a path is missing, leaving the target unchanged', () => {
    const target = { a: 1 };
    const fails = (patch: unknown) =>
      assert.throws(
        () => applyJsonPatch(target, patch),
        (e: FlotillaError) => e.code === 'BadRequest',
      );
    fails([{ op: 'replace', path: '/a', value: 2 }, { op: 'test', path: '/a', value: 1 }]);
    fails([{ op: 'remove', path: '/missing' }]);
    fails({ op: 'add' });
    assert.deepEqual(target, { a: 1 });
  });
});

describe('selectors', () => {
  it('reads equality, inequality, existence and set-based label requirements', () => {
    const test = parseLabelSelector('app=web,tier!=db,env in (prod, staging),!canary,team');
    assert.equal(test({ app: 'web', env: 'prod', team: 'a' }), true);
    assert.equal(test({ app: 'web', env: 'dev', team: 'a' }), false);
    assert.equal(test({ app: 'web', env: 'prod', team: 'a', canary: '1' }), false);
    assert.equal(test({ app: 'web', env: 'prod' }), false);
    assert.equal(parseLabelSelector('env notin (prod)')({ env: 'dev' }), true);
    assert.throws(() => parseLabelSelector('a b c'), (e: FlotillaError) => e.code === 'BadRequest');
  });

  it('reads missing fields as empty and namespaces as default', () => {
    const event = {
      kind: 'Event',
      involvedObject: { kind: 'Pod', name: 'p' },
      metadata: { name: 'e' },
    };
    const byPod = parseFieldSelector('involvedObject.name=p,involvedObject.namespace=default');
    assert.equal(byPod(event), true);
    assert.equal(parseFieldSelector('involvedObject.uid=')(event), true);
    assert.equal(parseFieldSelector('metadata.name!=e')(event), false);
  });
});
