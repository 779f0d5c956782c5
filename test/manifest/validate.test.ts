import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ManifestError } from '../../src/errors';
import type { Deployment, Service } from '../../src/manifest/types';
import { validateManifest } from '../../src/manifest/validate';

// Objects as they arrive through the API: plain values, no line numbers.
type Loose = Record<string, any>;

function deployment(patch: (d: Loose) => void = () => {}): Loose {
  const value: Loose = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', labels: { app: 'web' } },
    spec: {
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: {
          containers: [{ name: 'web', image: 'nginx:1.27', ports: [{ containerPort: 80 }] }],
        },
      },
    },
  };
  patch(value);
  return value;
}

function service(patch: (s: Loose) => void = () => {}): Loose {
  const value: Loose = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web' },
    spec: { selector: { app: 'web' }, ports: [{ port: 80 }] },
  };
  patch(value);
  return value;
}

function pod(d: Loose): Loose {
  return d.spec.template.spec;
}

function container(d: Loose): Loose {
  return pod(d).containers[0];
}

const POD = 'spec.template.spec';
const C0 = `${POD}.containers[0]`;

function accept(value: unknown) {
  return validateManifest(value, { file: 'api' });
}

function acceptDeployment(value: unknown): Deployment {
  const { object, warnings } = accept(value);
  assert.deepEqual(warnings, []);
  return object as Deployment;
}

function acceptService(value: unknown): Service {
  const { object, warnings } = accept(value);
  assert.deepEqual(warnings, []);
  return object as Service;
}

function refuse(value: unknown, fieldPath: string | undefined, message?: RegExp): void {
  assert.throws(
    () => accept(value),
    (err: unknown) => {
      assert.ok(err instanceof ManifestError, String(err));
      assert.equal(err.code, 'ManifestInvalid');
      assert.equal(err.fieldPath, fieldPath, err.message);
      if (message) assert.match(err.message, message);
      return true;
    },
  );
}

describe('apiVersion and kind', () => {
  test('refuses an object without kind or apiVersion', () => {
    refuse({ apiVersion: 'v1', metadata: { name: 'x' } }, 'kind', /required field is missing/);
    refuse(service((s) => delete s.apiVersion), 'apiVersion', /expected "v1" for kind Service/);
  });

  test('refuses a kind Flotilla does not run, naming what it supports', () => {
    refuse({ apiVersion: 'batch/v1', kind: 'Job' }, 'kind', /"Job" is not supported; .*Deployment/);
  });

  test('refuses an old apiVersion of Deployment', () => {
    const value = deployment((d) => (d.apiVersion = 'extensions/v1beta1'));
    refuse(value, 'apiVersion', /expected "apps\/v1" for kind Deployment, got string "extensions/);
  });

  test('refuses something that is not an object', () => {
    refuse('kind: Service', undefined, /expected object, got string/);
  });

  test('names only the file and field when no position is known', () => {
    assert.throws(() => accept(service((s) => (s.spec.ports[0].port = 0))), {
      message: 'api: spec.ports[0].port: expected integer between 1 and 65535, got 0',
      position: { file: 'api' },
    });
  });

  test('names the line and column the locate function reports', () => {
    const locate = (path: (string | number)[]) =>
      path.join('.') === 'spec.ports.0.port' ? { line: 7, column: 5 } : undefined;
    assert.throws(
      () => validateManifest(service((s) => (s.spec.ports[0].port = -1)), { file: 'f', locate }),
      { position: { file: 'f', line: 7, column: 5 } },
    );
  });

  test('points a missing field at its nearest parent with a position', () => {
    const locate = (path: (string | number)[]) =>
      path.length <= 1 ? { line: path.length + 1, column: 1 } : undefined;
    assert.throws(
      () => validateManifest(service((s) => delete s.spec.ports), { file: 'f', locate }),
      { fieldPath: 'spec.ports', position: { file: 'f', line: 2, column: 1 } },
    );
  });
});

describe('metadata', () => {
  test('requires a name', () => {
    refuse(service((s) => delete s.metadata.name), 'metadata.name', /required field is missing/);
    refuse(service((s) => delete s.metadata), 'metadata.name');
  });

  test('wants a DNS subdomain for a Deployment and a DNS-1035 label for a Service', () => {
    const named = (make: typeof service, name: string) => make((o) => (o.metadata.name = name));
    assert.equal(acceptDeployment(named(deployment, '1st.web')).metadata.name, '1st.web');
    refuse(named(deployment, 'Web_App'), 'metadata.name', /DNS-1123 subdomain/);
    refuse(named(service, '1st'), 'metadata.name', /DNS-1035 label/);
    refuse(named(service, 'a.b'), 'metadata.name');
    refuse(named(service, 'a'.repeat(64)), 'metadata.name');
  });

  test('accepts the default namespace and refuses any other', () => {
    const inNamespace = (ns: string) => service((s) => (s.metadata.namespace = ns));
    assert.equal(acceptService(inNamespace('default')).metadata.namespace, 'default');
    refuse(inNamespace('prod'), 'metadata.namespace', /only the "default" namespace/);
  });

  test('refuses a label value that is a number', () => {
    const value = service((s) => (s.metadata.labels = { version: 1 }));
    refuse(value, 'metadata.labels.version', /expected string, got number 1/);
  });

  test('checks label keys and values with the Kubernetes syntax', () => {
    const labelled = (labels: Loose) => service((s) => (s.metadata.labels = labels));
    const labels = { 'app.kubernetes.io/name': 'web', tier: '', 'x_y.z-1': 'A.b_c-9' };
    assert.deepEqual(acceptService(labelled(labels)).metadata.labels, labels);
    refuse(labelled({ 'bad key': 'x' }), 'metadata.labels[bad key]', /invalid key/);
    refuse(labelled({ 'a/b/c': 'x' }), 'metadata.labels[a/b/c]');
    refuse(labelled({ app: 'x'.repeat(64) }), 'metadata.labels.app');
    refuse(labelled({ app: '-web' }), 'metadata.labels.app');
  });

  test('accepts any string as an annotation value but not a number', () => {
    const annotated = (annotations: Loose) =>
      service((s) => (s.metadata.annotations = annotations));
    const annotations = { 'example.com/note': 'any text: with spaces\nand lines' };
    assert.deepEqual(acceptService(annotated(annotations)).metadata.annotations, annotations);
    refuse(annotated({ replicas: 3 }), 'metadata.annotations.replicas');
    refuse(annotated({ big: 'x'.repeat(256 * 1024) }), 'metadata.annotations', /at most/);
  });

  test('passes server-filled metadata through and drops status silently', () => {
    const value = service((s) => {
      Object.assign(s.metadata, { uid: 'u-1', generation: 3, resourceVersion: '42' });
      s.metadata.creationTimestamp = '2024-05-01T10:00:00Z';
      s.metadata.managedFields = [{ manager: 'kubectl' }];
      s.status = { loadBalancer: {} };
    });
    const object = acceptService(value);
    assert.deepEqual(object.metadata, {
      name: 'web',
      uid: 'u-1',
      generation: 3,
      resourceVersion: '42',
      creationTimestamp: '2024-05-01T10:00:00Z',
    });
    assert.equal(object.status, undefined);
  });
});

describe('Deployment', () => {
  test('refuses replicas given as a string, a fraction or a negative number', () => {
    const replicas = (n: unknown) => deployment((d) => (d.spec.replicas = n));
    refuse(replicas('3'), 'spec.replicas', /expected integer, got string "3"/);
    refuse(replicas(1.5), 'spec.replicas', /got number 1.5/);
    refuse(replicas(-1), 'spec.replicas', /expected integer between 0 and 10000, got -1/);
    assert.equal(acceptDeployment(replicas(0)).spec.replicas, 0);
  });

  test('requires a non-empty selector', () => {
    refuse(deployment((d) => delete d.spec.selector), 'spec.selector', /required/);
    refuse(deployment((d) => (d.spec.selector = {})), 'spec.selector', /non-empty selector/);
  });

  test('refuses a selector that does not match the template labels', () => {
    const value = deployment((d) => (d.spec.selector.matchLabels = { app: 'api' }));
    const message = /spec\.selector does not match spec\.template\.metadata\.labels/;
    refuse(value, 'spec.selector', message);
  });

  test('evaluates matchExpressions against the template labels', () => {
    const matching = deployment((d) => {
      d.spec.selector.matchExpressions = [
        { key: 'app', operator: 'In', values: ['web', 'api'] },
        { key: 'tier', operator: 'NotIn', values: ['db'] },
        { key: 'app', operator: 'Exists' },
        { key: 'canary', operator: 'DoesNotExist' },
      ];
    });
    assert.equal(acceptDeployment(matching).spec.selector.matchExpressions?.length, 4);
    const failing = deployment((d) => {
      d.spec.selector.matchExpressions = [{ key: 'app', operator: 'NotIn', values: ['web'] }];
    });
    refuse(failing, 'spec.selector', /does not match/);
  });

  test('checks the operator and values of a selector requirement', () => {
    const expression = (e: Loose) => deployment((d) => (d.spec.selector.matchExpressions = [e]));
    const path = 'spec.selector.matchExpressions[0]';
    refuse(expression({ key: 'app', operator: 'In' }), `${path}.values`, /at least one value/);
    refuse(expression({ key: 'app', operator: 'Exists', values: ['web'] }), `${path}.values`);
    refuse(expression({ key: 'app', operator: 'Matches' }), `${path}.operator`, /expected one of/);
    refuse(expression({ key: 'app' }), `${path}.operator`, /required/);
  });

  test('requires at least one container with unique DNS-label names', () => {
    const path = `${POD}.containers`;
    refuse(deployment((d) => (pod(d).containers = [])), path, /at least one container/);
    refuse(deployment((d) => delete pod(d).containers), path, /required/);
    refuse(deployment((d) => (container(d).name = 'Web')), `${C0}.name`, /DNS-1123 label/);
    const twice = deployment((d) => pod(d).containers.push({ name: 'web', image: 'redis' }));
    refuse(twice, `${path}[1].name`, /duplicate container name "web"/);
  });

  test('refuses a missing, empty or malformed image', () => {
    const image = (i: unknown) => deployment((d) => (container(d).image = i));
    const path = `${C0}.image`;
    refuse(deployment((d) => delete container(d).image), path, /required field is missing/);
    refuse(image(''), path, /non-empty/);
    refuse(image(' nginx'), path, /image reference/);
    refuse(image('Nginx:1'), path, /lowercase/);
    refuse(image(1.27), path, /expected string, got number/);
  });

  test('checks container ports and their names', () => {
    const path = `${C0}.ports[0]`;
    const port = (p: Loose) => deployment((d) => (container(d).ports = [p]));
    refuse(port({ containerPort: 0 }), `${path}.containerPort`, /between 1 and 65535/);
    refuse(port({ containerPort: 65536 }), `${path}.containerPort`);
    refuse(port({ containerPort: '80' }), `${path}.containerPort`, /got string "80"/);
    refuse(port({ containerPort: 80, name: 'sixteen-chars-xx' }), `${path}.name`, /at most 15/);
    refuse(port({ containerPort: 80, name: 8080 }), `${path}.name`, /got number/);
    refuse(port({ containerPort: 80, name: '8080' }), `${path}.name`, /at least one letter/);
    refuse(port({ containerPort: 80, protocol: 'UDP' }), `${path}.protocol`, /only TCP/);
  });

  test('refuses a port name used by two containers of the pod', () => {
    const value = deployment((d) => {
      container(d).ports = [{ name: 'http', containerPort: 80 }];
      const ports = [{ name: 'http', containerPort: 81 }];
      pod(d).containers.push({ name: 'side', image: 'envoy', ports });
    });
    refuse(value, `${POD}.containers[1].ports[0].name`, /duplicate port name "http"/);
  });

  test('refuses a replica count no fleet could run, before anything is created', () => {
    const value = deployment((d) => (d.spec.replicas = 100_000_000));
    refuse(value, 'spec.replicas', /between 0 and 10000/);
  });

  test('refuses a second container, which Flotilla would not run', () => {
    const value = deployment((d) => pod(d).containers.push({ name: 'side', image: 'envoy' }));
    refuse(value, `${POD}.containers[1]`, /one container per pod; got 2/);
  });

  test('refuses an env value written as an unquoted number', () => {
    const value = deployment((d) => (container(d).env = [{ name: 'PORT', value: 8080 }]));
    refuse(value, `${C0}.env[0].value`, /expected string, got number 8080 \(quote/);
  });

  test('defaults an env value to the empty string and warns about a repeated name', () => {
    const env = [{ name: 'A' }, { name: 'A', value: 'x' }];
    const { object, warnings } = accept(deployment((d) => (container(d).env = env)));
    assert.deepEqual((object as Deployment).spec.template.spec.containers[0].env, [
      { name: 'A', value: '' },
      { name: 'A', value: 'x' },
    ]);
    assert.deepEqual(
      warnings.map((w) => w.fieldPath),
      [`${C0}.env[1].name`],
    );
  });

  test('refuses command and args items that are not strings', () => {
    const value = deployment((d) => (container(d).args = ['--port', 8080]));
    refuse(value, `${C0}.args[1]`, /expected string, got number 8080/);
  });

  test('refuses restart policies other than Always', () => {
    const value = deployment((d) => (pod(d).restartPolicy = 'OnFailure'));
    refuse(value, `${POD}.restartPolicy`, /expected "Always"/);
  });

  test('accepts only RollingUpdate and Recreate strategies', () => {
    const strategy = (s: Loose) => deployment((d) => (d.spec.strategy = s));
    const recreate = acceptDeployment(strategy({ type: 'Recreate' }));
    assert.deepEqual(recreate.spec.strategy, { type: 'Recreate' });
    refuse(strategy({ type: 'BlueGreen' }), 'spec.strategy.type');
    const both = strategy({ type: 'Recreate', rollingUpdate: { maxSurge: 1 } });
    refuse(both, 'spec.strategy.rollingUpdate', /Recreate/);
  });

  test('fills in a partly given rolling update with the 25% defaults', () => {
    const value = deployment((d) => (d.spec.strategy = { rollingUpdate: { maxSurge: 2 } }));
    assert.deepEqual(acceptDeployment(value).spec.strategy, {
      type: 'RollingUpdate',
      rollingUpdate: { maxSurge: 2, maxUnavailable: '25%' },
    });
  });

  test('refuses a rolling update that allows neither surge nor unavailability', () => {
    const path = 'spec.strategy.rollingUpdate.maxUnavailable';
    const zeros = [
      [0, 0],
      ['0%', 0],
      [0, '0%'],
      ['00%', '0%'],
    ];
    for (const [maxSurge, maxUnavailable] of zeros) {
      const rollingUpdate = { maxSurge, maxUnavailable };
      refuse(deployment((d) => (d.spec.strategy = { rollingUpdate })), path, /cannot both be 0/);
    }
  });

  test('accepts maxSurge and maxUnavailable as counts or percentages only', () => {
    const rolling = (r: Loose) => deployment((d) => (d.spec.strategy = { rollingUpdate: r }));
    const path = 'spec.strategy.rollingUpdate';
    assert.ok(acceptDeployment(rolling({ maxSurge: '150%', maxUnavailable: '100%' })));
    refuse(rolling({ maxSurge: '5' }), `${path}.maxSurge`, /like "25%", got string "5"/);
    refuse(rolling({ maxSurge: '25 %' }), `${path}.maxSurge`);
    refuse(rolling({ maxSurge: -1 }), `${path}.maxSurge`, />= 0/);
    refuse(rolling({ maxUnavailable: '101%' }), `${path}.maxUnavailable`, /at most 100%/);
    refuse(rolling({ maxUnavailable: true }), `${path}.maxUnavailable`, /integer or string/);
  });

  test('wants the progress deadline longer than minReadySeconds', () => {
    const times = { minReadySeconds: 60, progressDeadlineSeconds: 60 };
    const value = deployment((d) => Object.assign(d.spec, times));
    refuse(value, 'spec.progressDeadlineSeconds', /more than minReadySeconds/);
  });

  test('accepts valid resource quantities and refuses malformed ones', () => {
    const resources = (r: Loose) => deployment((d) => (container(d).resources = r));
    const path = `${C0}.resources`;
    const good = resources({
      requests: { cpu: 0.5, memory: '100M' },
      limits: { cpu: '1', memory: '1G' },
    });
    const [web] = acceptDeployment(good).spec.template.spec.containers;
    assert.equal(web.resources?.requests?.cpu, '0.5');
    refuse(resources({ requests: { memory: '12 Mi' } }), `${path}.requests.memory`, /quantity/);
    refuse(resources({ limits: { cpu: '-1' } }), `${path}.limits.cpu`);
    refuse(resources({ limits: { cpu: '1x' } }), `${path}.limits.cpu`);
    const above = resources({ requests: { cpu: '2' }, limits: { cpu: '1500m' } });
    refuse(above, `${path}.requests.cpu`, /at most the limit/);
  });

  test('requests what it limits when requests are left out', () => {
    const value = deployment((d) => (container(d).resources = { limits: { memory: '64Mi' } }));
    assert.deepEqual(acceptDeployment(value).spec.template.spec.containers[0].resources, {
      requests: { memory: '64Mi' },
      limits: { memory: '64Mi' },
    });
  });

  test('fills in probe defaults and the HTTP path and scheme', () => {
    const value = deployment((d) => {
      container(d).ports = [{ name: 'http', containerPort: 80 }];
      container(d).readinessProbe = { httpGet: { port: 'http' } };
      container(d).livenessProbe = { httpGet: { port: 80, path: 'healthz' }, periodSeconds: 3 };
    });
    const [web] = acceptDeployment(value).spec.template.spec.containers;
    assert.deepEqual(web.readinessProbe, {
      httpGet: { path: '/', port: 'http', scheme: 'HTTP' },
      initialDelaySeconds: 0,
      periodSeconds: 10,
      timeoutSeconds: 1,
      successThreshold: 1,
      failureThreshold: 3,
    });
    assert.equal(web.livenessProbe?.httpGet?.path, '/healthz');
    assert.equal(web.livenessProbe?.periodSeconds, 3);
  });

  test('checks probe handlers, ports and thresholds', () => {
    const probe = (kind: string, p: Loose) => deployment((d) => (container(d)[kind] = p));
    const ready = (p: Loose) => probe('readinessProbe', p);
    const exec = { command: ['true'] };
    const path = `${C0}.readinessProbe`;
    refuse(ready({}), path, /exactly one of/);
    refuse(ready({ exec, tcpSocket: { port: 80 } }), path, /got tcpSocket and exec/);
    refuse(ready({ tcpSocket: { port: 'admin' } }), `${path}.tcpSocket.port`, /container's ports/);
    refuse(ready({ tcpSocket: { port: 0 } }), `${path}.tcpSocket.port`);
    refuse(ready({ exec: { command: [] } }), `${path}.exec.command`);
    refuse(ready({ grpc: { port: 9000 } }), `${path}.grpc`, /not supported/);
    const live = probe('livenessProbe', { exec, successThreshold: 2 });
    refuse(live, `${C0}.livenessProbe.successThreshold`, /expected 1/);
    const startup = probe('startupProbe', { exec, periodSeconds: 0 });
    refuse(startup, `${C0}.startupProbe.periodSeconds`, />= 1/);
    const twice = acceptDeployment(ready({ exec, successThreshold: 2 }));
    assert.equal(twice.spec.template.spec.containers[0].readinessProbe?.successThreshold, 2);
  });

  test('chooses the image pull policy from the tag when none is given', () => {
    const policy = (image: string) => {
      const accepted = acceptDeployment(deployment((d) => (container(d).image = image)));
      return accepted.spec.template.spec.containers[0].imagePullPolicy;
    };
    assert.equal(policy('nginx'), 'Always');
    assert.equal(policy('nginx:latest'), 'Always');
    assert.equal(policy('nginx:1.27'), 'IfNotPresent');
    assert.equal(policy('localhost:5000/team/app'), 'Always');
    assert.equal(policy(`app@sha256:${'a'.repeat(64)}`), 'IfNotPresent');
  });
});

describe('Service', () => {
  test('fills in type, protocol, targetPort and session affinity', () => {
    assert.deepEqual(acceptService(service()).spec, {
      type: 'ClusterIP',
      selector: { app: 'web' },
      ports: [{ protocol: 'TCP', port: 80, targetPort: 80 }],
      sessionAffinity: 'None',
    });
  });

  test('requires at least one port in range', () => {
    const ports = (p: Loose[]) => service((s) => (s.spec.ports = p));
    refuse(service((s) => delete s.spec.ports), 'spec.ports', /required/);
    refuse(ports([]), 'spec.ports', /at least one port/);
    refuse(ports([{ port: 65536 }]), 'spec.ports[0].port');
    refuse(ports([{ port: '80' }]), 'spec.ports[0].port', /got string "80"/);
  });

  test('requires unique DNS-label names when there is more than one port', () => {
    const ports = (...p: Loose[]) => service((s) => (s.spec.ports = p));
    const http = { name: 'http', port: 80 };
    refuse(ports(http, { port: 443 }), 'spec.ports[1].name', /more than one port/);
    refuse(ports(http, { name: 'http', port: 443 }), 'spec.ports[1].name', /duplicate/);
    refuse(ports(http, { name: 'alt', port: 80 }), 'spec.ports[1].port', /duplicate port 80/);
    refuse(ports({ name: 'HTTP', port: 80 }), 'spec.ports[0].name', /DNS-1123 label/);
    const two = acceptService(ports(http, { name: 'https', port: 443 }));
    assert.equal(two.spec.ports.length, 2);
  });

  test('supports only TCP', () => {
    for (const protocol of ['UDP', 'SCTP']) {
      const value = service((s) => (s.spec.ports[0].protocol = protocol));
      const message = new RegExp(`${protocol} is not supported; Flotilla supports only TCP`);
      refuse(value, 'spec.ports[0].protocol', message);
    }
  });

  test('accepts a numbered or named targetPort and treats 0 as absent', () => {
    const target = (t: unknown) => service((s) => (s.spec.ports[0].targetPort = t));
    assert.equal(acceptService(target('http')).spec.ports[0].targetPort, 'http');
    assert.equal(acceptService(target(0)).spec.ports[0].targetPort, 80);
    refuse(target('HTTP'), 'spec.ports[0].targetPort', /port name/);
    refuse(target(70000), 'spec.ports[0].targetPort', /between 1 and 65535/);
  });

  test('allows nodePort only for NodePort and LoadBalancer, within 30000-32767', () => {
    const withNodePort = (type: string | undefined, nodePort: number) =>
      service((s) => Object.assign(s.spec, { type, ports: [{ port: 80, nodePort }] }));
    const path = 'spec.ports[0].nodePort';
    refuse(withNodePort(undefined, 30080), path, /only for NodePort and LoadBalancer/);
    refuse(withNodePort('NodePort', 29999), path, /between 30000 and 32767, got 29999/);
    refuse(withNodePort('LoadBalancer', 32768), path);
    assert.equal(acceptService(withNodePort('NodePort', 30000)).spec.ports[0].nodePort, 30000);
    const balanced = acceptService(withNodePort('LoadBalancer', 32767));
    assert.equal(balanced.spec.ports[0].nodePort, 32767);
  });

  test('refuses a nodePort used twice in one Service', () => {
    const value = service((s) => {
      s.spec.type = 'NodePort';
      s.spec.ports = [
        { name: 'a', port: 80, nodePort: 30080 },
        { name: 'b', port: 81, nodePort: 30080 },
      ];
    });
    refuse(value, 'spec.ports[1].nodePort', /duplicate nodePort 30080/);
  });

  test('refuses ExternalName and unknown types', () => {
    const typed = (type: string) => service((s) => (s.spec.type = type));
    refuse(typed('ExternalName'), 'spec.type', /ExternalName is not supported/);
    refuse(typed('Ingress'), 'spec.type', /expected one of "ClusterIP"/);
  });

  test('defaults the ClientIP affinity timeout and checks its range', () => {
    const affinity = (config?: Loose) =>
      service((s) => {
        Object.assign(s.spec, { sessionAffinity: 'ClientIP', sessionAffinityConfig: config });
      });
    const timeout = (seconds: number) => affinity({ clientIP: { timeoutSeconds: seconds } });
    const config = (s: Service) => s.spec.sessionAffinityConfig?.clientIP.timeoutSeconds;
    assert.equal(config(acceptService(affinity())), 10800);
    assert.equal(config(acceptService(timeout(60))), 60);
    const path = 'spec.sessionAffinityConfig.clientIP.timeoutSeconds';
    refuse(timeout(0), path, /between 1 and 86400/);
    refuse(timeout(86401), path);
    refuse(service((s) => (s.spec.sessionAffinity = 'Cookie')), 'spec.sessionAffinity');
  });

  test('refuses an affinity config when affinity is None', () => {
    const config = { clientIP: { timeoutSeconds: 5 } };
    const value = service((s) => (s.spec.sessionAffinityConfig = config));
    refuse(value, 'spec.sessionAffinityConfig', /sessionAffinity is None/);
  });

  test('keeps a given clusterIP but refuses headless Services', () => {
    const withIP = (ip: string) => service((s) => (s.spec.clusterIP = ip));
    assert.equal(acceptService(withIP('10.0.0.7')).spec.clusterIP, '10.0.0.7');
    refuse(withIP('None'), 'spec.clusterIP', /headless/);
    refuse(withIP('10.0.0'), 'spec.clusterIP', /IP address/);
  });

  test('warns about a Service without selector', () => {
    const { warnings } = accept(service((s) => delete s.spec.selector));
    const message = 'no selector: this Service will have no endpoints';
    assert.deepEqual(warnings, [{ file: 'api', fieldPath: 'spec.selector', message }]);
  });
});

describe('fields outside the subset', () => {
  test('drops unknown fields with a warning that suggests the closest known one', () => {
    const value = deployment((d) => {
      container(d).imagePullpolicy = 'Always';
      container(d).image_pull_secrets = [];
      container(d).commnad = ['x'];
      d.spec.replica = 3;
      d.spec.zzz = 1;
    });
    const { object, warnings } = accept(value);
    assert.deepEqual(
      warnings.map((w) => `${w.fieldPath}: ${w.message}`),
      [
        'spec.replica: unknown field "replica", did you mean "replicas"?',
        'spec.zzz: unknown field "zzz", ignored',
        `${C0}.imagePullpolicy: unknown field "imagePullpolicy", did you mean "imagePullPolicy"?`,
        `${C0}.image_pull_secrets: unknown field "image_pull_secrets", ignored`,
        `${C0}.commnad: unknown field "commnad", did you mean "command"?`,
      ],
    );
    const accepted = object as Deployment;
    assert.equal(accepted.spec.replicas, 1);
    assert.equal('imagePullpolicy' in accepted.spec.template.spec.containers[0], false);
  });

  test('warns that an unsupported Kubernetes feature is ignored', () => {
    const value = deployment((d) => {
      pod(d).tolerations = [{ key: 'gpu', operator: 'Exists' }];
      pod(d).dnsPolicy = 'Default';
    });
    assert.deepEqual(
      accept(value).warnings.map((w) => w.message),
      [
        'tolerations is not supported by Flotilla, ignored',
        'dnsPolicy is not supported by Flotilla, ignored',
      ],
    );
  });

  test('accepts server defaults and empty values of unsupported fields silently', () => {
    const value = deployment((d) => {
      Object.assign(pod(d), { dnsPolicy: 'ClusterFirst', securityContext: {}, volumes: [] });
      Object.assign(container(d), { terminationMessagePolicy: 'File', volumeMounts: [] });
      container(d).resources = {};
      d.spec.template.metadata.creationTimestamp = null;
    });
    acceptDeployment(value);
    const defaults = { externalTrafficPolicy: 'Cluster', ipFamilies: ['IPv4'] };
    acceptService(service((s) => Object.assign(s.spec, defaults)));
  });

  test('refuses features whose absence would change what runs', () => {
    const volumes = [{ name: 'data', emptyDir: {} }];
    refuse(deployment((d) => (pod(d).volumes = volumes)), `${POD}.volumes`, /not supported/);
    const securityContext = { runAsNonRoot: true };
    refuse(deployment((d) => (pod(d).securityContext = securityContext)), `${POD}.securityContext`);
    refuse(deployment((d) => (pod(d).hostNetwork = true)), `${POD}.hostNetwork`);
    const mounts = [{ name: 'data', mountPath: '/d' }];
    refuse(deployment((d) => (container(d).volumeMounts = mounts)), `${C0}.volumeMounts`);
    const env = [{ name: 'P', valueFrom: { secretKeyRef: {} } }];
    refuse(deployment((d) => (container(d).env = env)), `${C0}.env[0].valueFrom`);
    const ranges = ['10.0.0.0/8'];
    const open = service((s) => (s.spec.loadBalancerSourceRanges = ranges));
    refuse(open, 'spec.loadBalancerSourceRanges');
  });
});

describe('idempotence', () => {
  test('gives back the same object when its own output is validated again', () => {
    for (const value of [deployment(), service()]) {
      const once = accept(value).object;
      const twice = accept(JSON.parse(JSON.stringify(once)));
      assert.deepEqual(twice.object, once);
      assert.deepEqual(twice.warnings, []);
    }
  });

  test('does not modify the value it was given', () => {
    const value = deployment();
    const copy = structuredClone(value);
    accept(value);
    assert.deepEqual(value, copy);
  });
});
