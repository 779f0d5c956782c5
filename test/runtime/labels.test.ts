import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  buildContainerLabels,
  hashContainerSpec,
  LABEL,
  matchesLabels,
  nodeSelector,
  readContainerLabels,
  type ContainerIdentity,
} from '../../src/runtime/labels';

const identity: ContainerIdentity = {
  clusterId: 'c1',
  nodeName: 'node-a',
  podName: 'web-7d9f-x2k',
  podUid: 'uid-1',
  namespace: 'default',
  deployment: 'web',
  containerName: 'app',
  specHash: 'abc123',
};

describe('container labels', () => {
  it('reads back exactly the identity they were built from', () => {
    const labels = buildContainerLabels(identity);
    assert.equal(labels['io.flotilla.managed'], 'true');
    assert.equal(labels['io.flotilla.pod-uid'], 'uid-1');
    assert.deepEqual(readContainerLabels(labels), identity);
  });

  it('leaves the deployment out for a pod no deployment owns', () => {
    const { deployment, ...bare } = identity;
    void deployment;
    const labels = buildContainerLabels(bare);
    assert.equal(LABEL.deployment in labels, false);
    assert.deepEqual(readContainerLabels(labels), bare);
  });

  it('refuses containers that are not managed or miss a required label', () => {
    const labels = buildContainerLabels(identity);
    assert.equal(readContainerLabels({ ...labels, [LABEL.managed]: 'false' }), undefined);
    const { [LABEL.podUid]: _uid, ...missing } = labels;
    void _uid;
    assert.equal(readContainerLabels(missing), undefined);
    assert.equal(readContainerLabels(undefined), undefined);
  });

  it('selects a node’s containers by cluster and node', () => {
    const labels = buildContainerLabels(identity);
    assert.equal(matchesLabels(labels, nodeSelector('c1', 'node-a')), true);
    assert.equal(matchesLabels(labels, nodeSelector('c1', 'node-b')), false);
    assert.equal(matchesLabels(labels, {}), true);
  });
});

describe('hashContainerSpec', () => {
  it('ignores key order and undefined fields', () => {
    const a = hashContainerSpec({
      image: 'app:1',
      env: [{ name: 'A', value: '1' }],
      args: undefined,
    });
    const b = hashContainerSpec({ env: [{ value: '1', name: 'A' }], image: 'app:1' });
    assert.equal(a, b);
    assert.match(a, /^[0-9a-f]{16}$/);
  });

  it('changes when any value changes', () => {
    const base = { image: 'app:1', command: ['serve'] };
    assert.notEqual(hashContainerSpec(base), hashContainerSpec({ ...base, image: 'app:2' }));
    const withHole = { ...base, command: ['serve', undefined] };
    assert.notEqual(hashContainerSpec(base), hashContainerSpec(withHole));
  });
});
