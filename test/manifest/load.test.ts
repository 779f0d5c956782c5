import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { ManifestError, ManifestErrors } from '../../src/errors';
import { loadManifests, parseManifests } from '../../src/manifest/load';
import type { Deployment, Service } from '../../src/manifest/types';

// Compiled tests run from an output folder; the fixtures stay in the checkout.
const REPO = findRepo();
const FIXTURES = path.join(REPO, 'test/fixtures/manifests');
const EXAMPLE = path.join(REPO, 'examples/awesome-product.yaml');

function findRepo(): string {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'test/fixtures/manifests'))) return dir;
  }
  return process.cwd();
}

function fixture(name: string): string {
  return path.join(FIXTURES, name);
}

async function loadError(paths: string[]): Promise<ManifestError> {
  try {
    await loadManifests(paths);
  } catch (err) {
    assert.ok(err instanceof ManifestError, `expected a ManifestError, got ${String(err)}`);
    return err;
  }
  assert.fail(`expected ${paths.join(', ')} to be refused`);
}

describe('loading the awesome-product example', () => {
  test('gives three objects and no warnings', async () => {
    const loaded = await loadManifests([EXAMPLE]);
    assert.equal(loaded.objects.length, 3);
    assert.deepEqual(loaded.warnings, []);
    assert.deepEqual(
      loaded.objects.map(({ object, source }) => [object.kind, object.metadata.name, source.line]),
      [
        ['Deployment', 'awesome-product', 1],
        ['Service', 'awesome-product-balancer', 29],
        ['Service', 'awesome-product', 44],
      ],
    );
  });

  test('fills in the Deployment defaults Kubernetes would', async () => {
    const deployment = (await loadManifests([EXAMPLE])).objects[0].object as Deployment;
    const { spec } = deployment;
    assert.equal(spec.replicas, 4);
    assert.deepEqual(spec.strategy, {
      type: 'RollingUpdate',
      rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' },
    });
    assert.equal(spec.revisionHistoryLimit, 10);
    assert.equal(spec.progressDeadlineSeconds, 600);
    assert.equal(spec.minReadySeconds, 0);
    assert.equal(spec.paused, false);
    assert.equal(spec.template.spec.restartPolicy, 'Always');
    assert.equal(spec.template.spec.terminationGracePeriodSeconds, 30);
    assert.deepEqual(spec.template.spec.containers[0], {
      name: 'awsprdct',
      image: 'awesomeproduct/awsprdct:amazing',
      imagePullPolicy: 'Always',
      ports: [{ containerPort: 80, protocol: 'TCP' }],
    });
  });

  test('fills in the Service defaults Kubernetes would', async () => {
    const objects = (await loadManifests([EXAMPLE])).objects.map((o) => o.object as Service);
    assert.deepEqual(objects[1].spec, {
      type: 'LoadBalancer',
      selector: { app: 'awsprdct' },
      ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 3000 }],
      sessionAffinity: 'None',
    });
    assert.equal(objects[2].spec.type, 'NodePort');
    assert.equal(objects[2].spec.sessionAffinity, 'None');
    assert.equal(objects[2].spec.ports[0].nodePort, undefined);
  });
});

describe('refusing bad fixture files', () => {
  const cases: { file: string; fieldPath: string | undefined; line: number; text: RegExp }[] = [
    { file: 'bad-tab.yaml', fieldPath: undefined, line: 8, text: /tab characters are not allowed/ },
    {
      file: 'bad-duplicate-key.yaml',
      fieldPath: 'spec.replicas',
      line: 10,
      text: /duplicate key "replicas"/,
    },
    {
      file: 'bad-selector.yaml',
      fieldPath: 'spec.selector',
      line: 6,
      text: /spec\.selector does not match spec\.template\.metadata\.labels/,
    },
    {
      file: 'bad-zero-surge.yaml',
      fieldPath: 'spec.strategy.rollingUpdate.maxUnavailable',
      line: 13,
      text: /cannot both be 0/,
    },
    {
      file: 'bad-missing-image.yaml',
      fieldPath: 'spec.template.spec.containers[1].image',
      line: 17,
      text: /required field is missing/,
    },
    {
      file: 'bad-env-number.yaml',
      fieldPath: 'spec.template.spec.containers[0].env[1].value',
      line: 21,
      text: /expected string, got number 8080/,
    },
    {
      file: 'bad-nodeport-range.yaml',
      fieldPath: 'spec.ports[0].nodePort',
      line: 13,
      text: /expected integer between 30000 and 32767, got 8080/,
    },
    {
      file: 'bad-label-number.yaml',
      fieldPath: 'metadata.labels.version',
      line: 7,
      text: /expected string, got number 1/,
    },
    {
      file: 'bad-replicas-string.yaml',
      fieldPath: 'spec.replicas',
      line: 6,
      text: /expected integer, got string "3"/,
    },
    { file: 'bad-udp.yaml', fieldPath: 'spec.ports[0].protocol', line: 11, text: /only TCP/ },
    { file: 'bad-kind.yaml', fieldPath: 'kind', line: 2, text: /"StatefulSet" is not supported/ },
    {
      file: 'bad-volumes.yaml',
      fieldPath: 'spec.template.spec.volumes',
      line: 17,
      text: /volumes is not supported by Flotilla/,
    },
    {
      file: 'bad-second-document.yaml',
      fieldPath: 'spec.type',
      line: 16,
      text: /ExternalName is not supported/,
    },
  ];

  for (const { file, fieldPath, line, text } of cases) {
    test(`refuses ${file} naming the field and its line`, async () => {
      const err = await loadError([fixture(file)]);
      assert.equal(err.code, 'ManifestInvalid');
      assert.equal(err.status, 422);
      assert.equal(err.fieldPath, fieldPath);
      assert.equal(err.position?.file, fixture(file));
      assert.equal(err.position?.line, line);
      assert.match(err.message, text);
      assert.ok(err.message.startsWith(`${fixture(file)}:${line}:`), err.message);
    });
  }

  test('reports the first error of every bad document, across files', async () => {
    const text =
      'apiVersion: v1\nkind: Service\nmetadata: { name: one }\nspec: { ports: [{ port: 0 }] }\n' +
      '---\n' +
      service('fine') +
      '---\n' +
      'apiVersion: v1\nkind: Service\nmetadata: { name: Two }\nspec: { ports: [{ port: 80 }] }\n';
    let caught: unknown;
    try {
      parseManifests(text, 'two-bad.yaml');
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof ManifestErrors, String(caught));
    assert.deepEqual(
      caught.errors.map((e) => [e.position?.line, e.fieldPath]),
      [
        [4, 'spec.ports[0].port'],
        [17, 'metadata.name'],
      ],
    );
    const across = await loadManifests([
      fixture('bad-env-number.yaml'),
      fixture('bad-tab.yaml'),
    ]).then(
      () => undefined,
      (err: unknown) => err,
    );
    assert.ok(across instanceof ManifestErrors, String(across));
    assert.equal(across.errors.length, 2);
  });

  test('refuses the whole input when only a later file is bad', async () => {
    const err = await loadError([EXAMPLE, fixture('bad-env-number.yaml')]);
    assert.equal(err.position?.file, fixture('bad-env-number.yaml'));
  });
});

describe('reading documents', () => {
  test('applies a document whose separator carries a comment', async () => {
    const loaded = await loadManifests([fixture('good-separator-comment.yaml')]);
    assert.deepEqual(
      loaded.objects.map((o) => [o.object.metadata.name, o.source.line]),
      [
        ['first', 2],
        ['second', 12],
      ],
    );
  });

  test('skips empty documents and comment-only documents', () => {
    const text = '---\n# nothing here\n---\n\n---\n~\n---\n' + service('only') + '---\n';
    const loaded = parseManifests(text, 'empty.yaml');
    assert.deepEqual(
      loaded.objects.map((o) => o.object.metadata.name),
      ['only'],
    );
  });

  test('expands a List into its items, each with its own line', async () => {
    const loaded = await loadManifests([fixture('good-list.yaml')]);
    assert.deepEqual(
      loaded.objects.map((o) => [o.object.metadata.name, o.source.line]),
      [
        ['one', 6],
        ['two', 15],
      ],
    );
    assert.deepEqual(loaded.warnings, []);
  });

  test('locates an error inside a List item with a path relative to the item', () => {
    const text = [
      'apiVersion: v1',
      'kind: List',
      'items:',
      '- apiVersion: v1',
      '  kind: Service',
      '  metadata: {name: web}',
      '  spec:',
      '    ports:',
      '    - port: 0',
    ].join('\n');
    assert.throws(() => parseManifests(text, 'list.yaml'), {
      code: 'ManifestInvalid',
      fieldPath: 'spec.ports[0].port',
      position: { file: 'list.yaml', line: 9, column: 7 },
    });
  });

  test('accepts objects as kubectl get prints them, without warnings', async () => {
    const loaded = await loadManifests([fixture('good-kubectl-get.yaml')]);
    assert.deepEqual(loaded.warnings, []);
    const [deploymentObject, serviceObject] = loaded.objects.map((o) => o.object);
    assert.equal(deploymentObject.metadata.resourceVersion, '12345');
    assert.equal(deploymentObject.status, undefined);
    assert.equal((serviceObject as Service).spec.ports[0].nodePort, 31380);
    assert.equal((serviceObject as Service).spec.clusterIP, '10.96.12.34');
  });

  test('gives deep-equal objects for block YAML, flow YAML and tab-indented JSON', async () => {
    const names = ['good-full-block.yaml', 'good-full-flow.yaml', 'good-full.json'];
    const loaded = await Promise.all(names.map((name) => loadManifests([fixture(name)])));
    for (const result of loaded) assert.deepEqual(result.warnings, []);
    assert.deepEqual(loaded[1].objects[0].object, loaded[0].objects[0].object);
    assert.deepEqual(loaded[2].objects[0].object, loaded[0].objects[0].object);
  });

  test('reports unknown fields with their line and a suggestion', async () => {
    const loaded = await loadManifests([fixture('warn-unknown-fields.yaml')]);
    const file = fixture('warn-unknown-fields.yaml');
    assert.deepEqual(loaded.warnings, [
      {
        file,
        line: 8,
        column: 3,
        fieldPath: 'spec.sessionaffinity',
        message: 'unknown field "sessionaffinity", did you mean "sessionAffinity"?',
      },
      {
        file,
        line: 11,
        column: 5,
        fieldPath: 'spec.ports[0].targetport',
        message: 'unknown field "targetport", did you mean "targetPort"?',
      },
      {
        file,
        line: 12,
        column: 3,
        fieldPath: 'spec.publishNotReadyAddresses',
        message: 'publishNotReadyAddresses is not supported by Flotilla, ignored',
      },
    ]);
    const spec = (loaded.objects[0].object as Service).spec;
    assert.equal(spec.sessionAffinity, 'None');
    assert.equal(spec.ports[0].targetPort, 80);
  });

  test('warns about an unquoted yes that kubectl would read as a boolean', () => {
    const selector = "selector: {app: web, on: yes, off: 'no'}";
    const text = service('web').replace('selector: {app: web}', selector);
    const loaded = parseManifests(text, 'bool.yaml');
    assert.deepEqual(loaded.warnings, [
      {
        file: 'bool.yaml',
        line: 6,
        column: 2 + selector.indexOf('yes') + 1,
        fieldPath: 'spec.selector.on',
        message: 'unquoted yes is a string here but a boolean to kubectl; quote it',
      },
    ]);
  });

  test('refuses a key defined twice in a flow mapping', () => {
    assert.throws(() => parseManifests('{kind: Service, kind: Service}', 'flow.yaml'), {
      fieldPath: 'kind',
      position: { file: 'flow.yaml', line: 1, column: 17 },
    });
  });

  test('reports other YAML syntax errors with line and column', () => {
    assert.throws(
      () => parseManifests("kind: 'Service\n", 'quote.yaml'),
      (err: unknown) => {
        assert.ok(err instanceof ManifestError);
        assert.match(err.message, /^quote\.yaml:\d+:\d+: YAML syntax error: /);
        return true;
      },
    );
  });

  test('refuses a map key that is itself a collection', () => {
    assert.throws(() => parseManifests('? [a, b]\n: c\n', 'key.yaml'), {
      code: 'ManifestInvalid',
      position: { file: 'key.yaml', line: 1, column: 3 },
    });
  });

  test('refuses a document that is not an object', () => {
    assert.throws(() => parseManifests('- a\n- b\n', 'seq.yaml'), {
      message: 'seq.yaml:1:1: expected object, got array',
    });
  });

  test('refuses the same object defined twice', () => {
    const text = `${service('web')}---\n${service('web')}`;
    assert.throws(() => parseManifests(text, 'twice.yaml'), {
      fieldPath: 'metadata.name',
      position: { file: 'twice.yaml', line: 10 },
      message: /Service "web" is defined twice; first at twice\.yaml:1/,
    });
  });

  test('accepts a Deployment and a Service of the same name', () => {
    const text = `${service('web')}---\n${deployment('web')}`;
    assert.equal(parseManifests(text, 'pair.yaml').objects.length, 2);
  });

  test('resolves YAML anchors, aliases and merge keys', () => {
    const text = [
      'apiVersion: v1',
      'kind: Service',
      'metadata: {name: web, labels: &labels {app: web}}',
      'spec:',
      '  selector: *labels',
      '  ports:',
      '  - &http {name: http, port: 80}',
      '  - <<: *http',
      '    name: alt',
      '    port: 81',
    ].join('\n');
    const spec = (parseManifests(text, 'alias.yaml').objects[0].object as Service).spec;
    assert.deepEqual(spec.selector, { app: 'web' });
    assert.deepEqual(
      spec.ports.map((p) => [p.name, p.port]),
      [
        ['http', 80],
        ['alt', 81],
      ],
    );
  });

  test('refuses a document that expands too many aliases', () => {
    const lines = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    const tenAliases = `[${Array(10).fill('*a').join(', ')}]`;
    for (let i = 1; i <= 12; i++) lines.push(`${'b'.repeat(i)}: ${tenAliases}`);
    assert.throws(() => parseManifests(lines.join('\n'), 'bomb.yaml'), {
      code: 'ManifestInvalid',
      position: { file: 'bomb.yaml', line: 1 },
      message: /alias/i,
    });
  });
});

describe('reading paths', () => {
  let dir: string;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'flotilla-manifest-'));
    await mkdir(path.join(dir, 'nested'));
    await writeFile(path.join(dir, 'b.yaml'), service('bee'));
    await writeFile(path.join(dir, 'a.yml'), service('ay'));
    await writeFile(path.join(dir, 'c.json'), JSON.stringify(JSON.parse(jsonService('sea'))));
    await writeFile(path.join(dir, 'notes.txt'), 'not: a manifest\n');
    await writeFile(path.join(dir, 'nested', 'd.yaml'), service('dee'));
    await symlink(dir, path.join(dir, 'nested', 'loop'));
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('reads the manifest files of a directory in name order', async () => {
    const loaded = await loadManifests([dir]);
    assert.deepEqual(
      loaded.objects.map((o) => o.object.metadata.name),
      ['ay', 'bee', 'sea'],
    );
    assert.equal(loaded.objects[0].source.file, path.join(dir, 'a.yml'));
  });

  test('reads subdirectories only when recursive, without following a loop twice', async () => {
    const loaded = await loadManifests([dir], { recursive: true });
    assert.deepEqual(
      loaded.objects.map((o) => o.object.metadata.name),
      ['ay', 'bee', 'sea', 'dee'],
    );
  });

  test('reads "-" from the given stdin stream and names it <stdin>', async () => {
    const stdin = Readable.from([Buffer.from(service('piped'))]);
    const loaded = await loadManifests(['-', path.join(dir, 'a.yml')], { stdin });
    assert.deepEqual(
      loaded.objects.map((o) => [o.object.metadata.name, o.source.file]),
      [
        ['piped', '<stdin>'],
        ['ay', path.join(dir, 'a.yml')],
      ],
    );
  });

  test('reads a file named explicitly whatever its extension', async () => {
    await assert.rejects(loadManifests([path.join(dir, 'notes.txt')]), {
      code: 'ManifestInvalid',
      fieldPath: 'kind',
    });
  });

  test('refuses a path that does not exist', async () => {
    const missing = path.join(dir, 'missing.yaml');
    await assert.rejects(loadManifests([missing]), {
      code: 'ManifestInvalid',
      message: `${missing}: cannot read: no such file or directory`,
    });
  });

  test('refuses input without any object', async () => {
    const stdin = Readable.from(['# only a comment\n']);
    await assert.rejects(loadManifests(['-'], { stdin }), { message: 'no objects found in -' });
  });

  test('refuses the same object in two files', async () => {
    await assert.rejects(loadManifests([path.join(dir, 'a.yml'), path.join(dir, 'a.yml')]), {
      message: /Service "ay" is defined twice/,
    });
  });
});

describe('reformatting', () => {
  const name = fc.stringMatching(/^[a-z][a-z0-9]{0,8}$/);
  const labelValue = fc.stringMatching(/^[A-Za-z0-9]([A-Za-z0-9._-]{0,6}[A-Za-z0-9])?$/);
  const amount = (min: number) =>
    fc.oneof(
      fc.integer({ min, max: 5 }),
      fc.integer({ min, max: 100 }).map((n) => `${n}%`),
    );
  const deploymentValue = fc
    .record({
      name,
      labels: fc.dictionary(name, labelValue, { minKeys: 1, maxKeys: 3 }),
      replicas: fc.option(fc.nat(50), { nil: undefined }),
      image: fc.constantFrom('nginx', 'nginx:1.27', 'registry:5000/a/b:v1'),
      // Unique names: a repeated variable is warned about, which this property does not test.
      env: fc.uniqueArray(
        fc.record({ name: name.map((n) => n.toUpperCase()), value: fc.string() }),
        { selector: (e) => e.name, maxLength: 3 },
      ),
      ports: fc.uniqueArray(fc.integer({ min: 1, max: 65535 }), { maxLength: 3 }),
      maxSurge: amount(0),
      maxUnavailable: amount(1),
    })
    .map((d) => ({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: d.name, labels: d.labels },
      spec: {
        replicas: d.replicas,
        selector: { matchLabels: d.labels },
        strategy: { rollingUpdate: { maxSurge: d.maxSurge, maxUnavailable: d.maxUnavailable } },
        template: {
          metadata: { labels: d.labels },
          spec: {
            containers: [
              {
                name: 'main',
                image: d.image,
                env: d.env,
                ports: d.ports.map((containerPort) => ({ containerPort })),
              },
            ],
          },
        },
      },
    }));

  test('gives the same object from block YAML, flow YAML and JSON of any Deployment', () => {
    fc.assert(
      fc.property(deploymentValue, (value) => {
        const plain = JSON.parse(JSON.stringify(value));
        const texts = [
          stringify(plain),
          stringify(plain, { collectionStyle: 'flow' }),
          JSON.stringify(plain, null, 2),
        ];
        const [block, flow, json] = texts.map((text) => parseManifests(text, 'p.yaml'));
        // yaml writes a string such as "n" unquoted; only that may be remarked on.
        for (const { message } of block.warnings) assert.match(message, /boolean to kubectl/);
        assert.deepEqual(flow.objects[0].object, block.objects[0].object);
        assert.deepEqual(json.objects[0].object, block.objects[0].object);
        const again = parseManifests(stringify(block.objects[0].object), 'again.yaml');
        assert.deepEqual(again.objects[0].object, block.objects[0].object);
      }),
      { numRuns: 200 },
    );
  });
});

function service(name: string): string {
  return [
    'apiVersion: v1',
    'kind: Service',
    'metadata:',
    `  name: ${name}`,
    'spec:',
    `  selector: {app: ${name}}`,
    '  ports:',
    '  - port: 80',
    '',
  ].join('\n');
}

function jsonService(name: string): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name },
    spec: { selector: { app: name }, ports: [{ port: 80 }] },
  });
}

function deployment(name: string): string {
  return [
    'apiVersion: apps/v1',
    'kind: Deployment',
    `metadata: {name: ${name}}`,
    'spec:',
    `  selector: {matchLabels: {app: ${name}}}`,
    `  template:`,
    `    metadata: {labels: {app: ${name}}}`,
    `    spec: {containers: [{name: main, image: nginx}]}`,
    '',
  ].join('\n');
}
