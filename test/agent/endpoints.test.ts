import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import pino from 'pino';
import { EndpointsPublisher, desiredServices, isHttpPort } from '../../src/agent/endpoints';
import type { EventInput } from '../../src/agent/events';
import type { BalancedService, SyncReport } from '../../src/lb/types';
import type { Service } from '../../src/manifest/types';
import type { PodStatus, ReplicaSet } from '../../src/model/types';
import { NOW, TestStore, deployment, podOf, service } from '../store/fixtures';

const HOST = '0.0.0.0';

function readyStatus(ip: string, ready = true): PodStatus {
  return {
    phase: 'Running',
    podIP: ip,
    conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
  };
}

describe('desiredServices', () => {
  let t: TestStore;
  let rs: ReplicaSet;

  beforeEach(() => {
    t = new TestStore('flotilla-endpoints-');
    const ports = [{ name: 'web-port', containerPort: 8080 }];
    t.apply(deployment('web', { ports }), deployment('db'));
    rs = t.store.list<ReplicaSet>('ReplicaSet').find((r) => r.metadata.name.startsWith('web-'))!;
  });
  afterEach(() => t.close());

  /** Pods of `web` in every state an endpoint can be in. */
  function addPods(): void {
    const names = ['ready', 'unready', 'leaving', 'no-ip', 'unbound'];
    const pods = names.map((n) => podOf(rs, `web-${n}`, n === 'unbound' ? undefined : 'node-1'));
    t.commit({ op: 'createPods', pods });
    const report = (name: string, status: PodStatus) =>
      t.commit({ op: 'podStatus', name: `web-${name}`, uid: `uid-web-${name}`, status });
    report('ready', readyStatus('172.17.0.2'));
    report('unready', readyStatus('172.17.0.3', false));
    report('leaving', readyStatus('172.17.0.4', false));
    report('no-ip', { phase: 'Pending', conditions: [{ type: 'Ready', status: 'True' }] });
    report('unbound', readyStatus('172.17.0.6'));
    const leaving = { name: 'web-leaving', uid: 'uid-web-leaving' };
    t.commit({ op: 'terminatePods', pods: [leaving], now: NOW });
  }

  const byKey = (services: BalancedService[], key: string) => {
    const found = services.find((s) => s.key === key);
    assert.ok(found, `service ${key}`);
    return found;
  };

  it('serves ready pods and drains terminating ones, on the resolved target port', () => {
    t.apply(service('web', { ports: [{ name: 'http', port: 80, targetPort: 'web-port' }] }));
    addPods();

    const [web] = desiredServices(t.store, HOST);
    assert.deepEqual(web, {
      key: 'default/web',
      ports: [
        {
          name: 'http',
          mode: 'http',
          listen: [],
          endpoints: [
            {
              id: 'web-leaving',
              host: '172.17.0.4',
              port: 8080,
              nodeName: 'node-1',
              terminating: true,
            },
            { id: 'web-ready', host: '172.17.0.2', port: 8080, nodeName: 'node-1' },
          ],
        },
      ],
    });
  });

  it('listens on the NodePort, and also on the port itself for a LoadBalancer', () => {
    t.apply(
      service('np', {
        type: 'NodePort',
        selector: { app: 'web' },
        ports: [{ port: 80, targetPort: 8080 }],
      }),
      service('lb', { type: 'LoadBalancer', selector: { app: 'web' }, ports: [{ port: 9000 }] }),
      service('cluster', { selector: { app: 'web' }, ports: [{ port: 81 }] }),
    );
    const nodePort = (name: string) =>
      t.store.get<Service>('Service', name)!.spec.ports[0].nodePort!;
    const services = desiredServices(t.store, HOST);

    assert.deepEqual(byKey(services, 'default/np').ports[0].listen, [
      { host: HOST, port: nodePort('np') },
    ]);
    assert.deepEqual(byKey(services, 'default/lb').ports[0].listen, [
      { host: HOST, port: nodePort('lb') },
      { host: HOST, port: 9000 },
    ]);
    assert.deepEqual(byKey(services, 'default/cluster').ports[0].listen, []);
    assert.equal(byKey(services, 'default/lb').ports[0].mode, 'tcp');
  });

  it('selects pods by the Service selector only', () => {
    t.apply(
      service('db', { ports: [{ port: 5432 }] }),
      service('web', { ports: [{ port: 80, targetPort: 8080 }] }),
    );
    addPods();
    const services = desiredServices(t.store, HOST);
    assert.deepEqual(byKey(services, 'default/db').ports[0].endpoints, []);
    assert.equal(byKey(services, 'default/web').ports[0].endpoints.length, 2);
  });

  it('leaves out pods whose named target port their container does not declare', () => {
    t.apply(service('web', { ports: [{ port: 80, targetPort: 'metrics' }] }));
    addPods();
    assert.deepEqual(desiredServices(t.store, HOST)[0].ports[0].endpoints, []);
  });

  it('carries ClientIP session affinity with its timeout', () => {
    const svc = service('web');
    svc.spec.sessionAffinity = 'ClientIP';
    svc.spec.sessionAffinityConfig = { clientIP: { timeoutSeconds: 60 } };
    t.apply(svc);
    assert.deepEqual(desiredServices(t.store, HOST)[0].affinity, {
      type: 'ClientIP',
      timeoutSeconds: 60,
    });
  });

  it('uses the HTTP proxy for ports named http or http-*, or with appProtocol http', () => {
    const port = (name?: string, appProtocol?: string) => ({
      name,
      appProtocol,
      port: 80,
      targetPort: 80,
      protocol: 'TCP' as const,
    });
    assert.equal(isHttpPort(port('http')), true);
    assert.equal(isHttpPort(port('http-admin')), true);
    assert.equal(isHttpPort(port('web', 'http')), true);
    assert.equal(isHttpPort(port('https')), false);
    assert.equal(isHttpPort(port()), false);
  });
});

describe('EndpointsPublisher', () => {
  let t: TestStore;
  beforeEach(() => (t = new TestStore('flotilla-endpoints-')));
  afterEach(() => t.close());

  it('hands the balancer every change before flush resolves', async () => {
    const synced: string[][] = [];
    const balancer = {
      async sync(services: BalancedService[]): Promise<SyncReport> {
        synced.push(services.map((s) => s.key));
        return { listeners: [], failed: [] };
      },
    };
    const publisher = new EndpointsPublisher({
      store: t.store,
      balancer,
      logger: pino({ level: 'silent' }),
      listenHost: HOST,
    });
    await publisher.start();
    t.apply(service('a'));
    t.apply(service('b'));
    await publisher.flush();
    publisher.stop();

    assert.deepEqual(synced[0], []);
    assert.deepEqual(synced.at(-1), ['default/a', 'default/b']);
  });
});

describe('EndpointsPublisher and ports it cannot open', () => {
  let t: TestStore;
  beforeEach(() => (t = new TestStore('flotilla-endpoints-')));
  afterEach(() => t.close());

  it('reports a port that cannot be opened as a Warning event on the Service, once', async () => {
    t.apply(service('web', { type: 'NodePort', ports: [{ name: 'http', port: 80 }] }));
    const recorded: EventInput[] = [];
    const failure = {
      key: 'default/web',
      portName: 'http',
      host: '10.0.0.5',
      port: 80,
      code: 'EADDRINUSE',
      error: 'address in use',
    };
    const publisher = new EndpointsPublisher({
      store: t.store,
      balancer: { sync: async () => ({ listeners: [], failed: [failure] }) },
      logger: pino({ level: 'silent' }),
      listenHost: HOST,
      retryMs: 60_000,
      nodeName: 'node-1',
      events: { record: (e) => void recorded.push(e) },
    });
    await publisher.start();
    t.apply(service('other'));
    await publisher.flush();
    publisher.stop();

    assert.equal(recorded.length, 1, JSON.stringify(recorded));
    const [event] = recorded;
    assert.deepEqual(
      [event.object.kind, event.object.name, event.type, event.reason],
      ['Service', 'web', 'Warning', 'FailedToListen'],
    );
    assert.equal(event.object.uid, t.store.get('Service', 'web')!.metadata.uid);
    assert.match(event.message, /node node-1 cannot listen on 10\.0\.0\.5:80 .*EADDRINUSE/);
  });
});

describe('EndpointsPublisher with other nodes', () => {
  let t: TestStore;
  beforeEach(() => (t = new TestStore('flotilla-endpoints-')));
  afterEach(() => t.close());

  it('sends endpoints on other nodes through their tunnel, local ones directly', async () => {
    t.apply(deployment('web'), service('web', { ports: [{ port: 80, targetPort: 8080 }] }));
    const rs = t.store.list<ReplicaSet>('ReplicaSet')[0];
    const placed = { here: 'node-1', there: 'node-2', dark: 'node-3' };
    const pods = Object.entries(placed).map(([n, node]) => podOf(rs, `web-${n}`, node));
    t.commit({ op: 'createPods', pods });
    Object.keys(placed).forEach((n, i) => {
      const status = readyStatus(`172.17.0.${i + 2}`);
      t.commit({ op: 'podStatus', name: `web-${n}`, uid: `uid-web-${n}`, status });
    });

    let synced: BalancedService[] = [];
    const publisher = new EndpointsPublisher({
      store: t.store,
      balancer: {
        async sync(services: BalancedService[]): Promise<SyncReport> {
          synced = services;
          return { listeners: [], failed: [] };
        },
      },
      logger: pino({ level: 'silent' }),
      listenHost: HOST,
      localNode: 'node-1',
      // node-3 stands for a node without --listen: no tunnel to it.
      viaFor: (node) => (node === 'node-2' ? '10.0.0.6:7946' : undefined),
    });
    await publisher.start();
    await publisher.flush();
    publisher.stop();

    const endpoints = synced[0].ports[0].endpoints;
    const viaById = Object.fromEntries(endpoints.map((e) => [e.id, e.via]));
    assert.deepEqual(viaById, {
      'web-here': undefined,
      'web-there': '10.0.0.6:7946',
      'web-dark': undefined,
    });
    assert.equal('via' in endpoints.find((e) => e.id === 'web-here')!, false);
    // Without a local node name nothing is tunnelled.
    const plain = desiredServices(t.store, HOST)[0].ports[0].endpoints;
    assert.ok(plain.every((e) => e.via === undefined));
  });
});
