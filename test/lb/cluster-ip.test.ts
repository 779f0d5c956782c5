import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { desiredServices } from '../../src/agent/endpoints';
import { serviceEnvironment } from '../../src/lb/cluster-ip';
import type { Service } from '../../src/manifest/types';
import { validateManifest } from '../../src/manifest/validate';
import { TestStore } from '../store/fixtures';

const stores: TestStore[] = [];
after(() => stores.forEach((s) => s.close()));

function service(name: string, type: string, ports: object[]): Service {
  const spec = { type, selector: { app: name }, ports };
  const raw = { apiVersion: 'v1', kind: 'Service', metadata: { name }, spec };
  return validateManifest(raw, { file: 'fixture' }).object as Service;
}

describe('ClusterIP', () => {
  test('gives containers Kubernetes-style variables for every Service', () => {
    const env = serviceEnvironment(
      [
        service('web-api', 'ClusterIP', [
          { name: 'http', port: 8080 },
          { name: 'admin-ui', port: 9090 },
        ]),
        service('db', 'NodePort', [{ port: 5432 }]),
      ],
      '172.17.0.1',
    );
    assert.deepEqual(env, [
      'WEB_API_SERVICE_HOST=172.17.0.1',
      'WEB_API_SERVICE_PORT=8080',
      'WEB_API_SERVICE_PORT_HTTP=8080',
      'WEB_API_SERVICE_PORT_ADMIN_UI=9090',
      'DB_SERVICE_HOST=172.17.0.1',
      'DB_SERVICE_PORT=5432',
    ]);
  });

  test('serves every Service port on the cluster address beside its node ports', () => {
    const t = new TestStore('flotilla-cluster-ip-');
    stores.push(t);
    t.apply(
      service('inside', 'ClusterIP', [{ port: 8080 }]),
      service('np', 'NodePort', [{ port: 81, nodePort: 30081 }]),
      service('lb', 'LoadBalancer', [{ port: 82, nodePort: 30082 }]),
    );
    const listen = (host: string, cluster?: string) =>
      Object.fromEntries(
        desiredServices(t.store, host, cluster).map((s) => [s.key, s.ports[0].listen]),
      );

    const gateway = '172.17.0.1';
    assert.deepEqual(listen('10.0.0.5', gateway), {
      'default/inside': [{ host: gateway, port: 8080 }],
      'default/np': [
        { host: '10.0.0.5', port: 30081 },
        { host: gateway, port: 81 },
      ],
      'default/lb': [
        { host: '10.0.0.5', port: 30082 },
        { host: '10.0.0.5', port: 82 },
        { host: gateway, port: 82 },
      ],
    });
    // On all addresses the LoadBalancer port is reachable from containers already.
    assert.deepEqual(listen('0.0.0.0', gateway)['default/lb'], [
      { host: '0.0.0.0', port: 30082 },
      { host: '0.0.0.0', port: 82 },
    ]);
    assert.deepEqual(listen('10.0.0.5')['default/inside'], []);
  });
});
