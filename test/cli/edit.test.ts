import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { ensureManifestModule, FakeApi, runCli, status, type Answer } from './fake-api';
import { deployment } from './fixtures';

const WEB = '/apis/apps/v1/namespaces/default/deployments/web';

describe('flotilla edit', () => {
  let api: FakeApi;
  let putAnswer: Answer = { status: 200 };

  function editor(name: string, body: string): string {
    const script = path.join(api.dataDir, name);
    fs.writeFileSync(script, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    return script;
  }
  const edit = (editorPath: string) =>
    runCli(['--data-dir', api.dataDir, 'edit', 'deployment', 'web'], {
      env: { EDITOR: editorPath, VISUAL: '', TMPDIR: api.dataDir },
    });
  const copyPath = (stderr: string) => /stored to "([^"]+)"/.exec(stderr)?.[1] ?? '';

  before(async () => {
    ensureManifestModule();
    api = await new FakeApi()
      .on(`GET ${WEB}`, { status: 200, body: deployment() })
      .on(`PUT ${WEB}`, () => putAnswer)
      .start();
  });
  beforeEach(() => {
    api.requests.length = 0;
    putAnswer = { status: 200, body: deployment() };
  });
  after(() => api.stop());

  it('replaces the object with the edited text, guarded by its resourceVersion', async () => {
    const res = await edit(editor('bump.sh', `sed -i 's/nginx:1.27/nginx:1.28/' "$1"`));
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, 'deployment.apps/web edited\n');

    const put = api.writes()[0];
    assert.equal(put.method, 'PUT');
    const body = put.body as ReturnType<typeof deployment>;
    assert.equal(body.metadata?.resourceVersion, '41');
    assert.equal(body.spec?.template?.spec?.containers?.[0].image, 'nginx:1.28');
    assert.equal(body.status, undefined);
  });

  it('cancels without writing when the file is saved unchanged', async () => {
    const res = await edit(editor('noop.sh', 'exit 0'));
    assert.equal(res.code, 0);
    assert.equal(res.stderr, 'Edit cancelled, no changes made.\n');
    assert.equal(api.writes().length, 0);
  });

  it('keeps a copy and explains when someone changed the object meanwhile', async () => {
    putAnswer = status(409, 'Conflict', 'the object has been modified');
    const res = await edit(editor('bump.sh', `sed -i 's/nginx:1.27/nginx:1.28/' "$1"`));
    assert.equal(res.code, 1);

    const copy = copyPath(res.stderr);
    assert.match(fs.readFileSync(copy, 'utf8'), /image: nginx:1\.28/);
    const lines = res.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 2);
    assert.match(lines[1], /^error: deployments\.apps "web" was changed by someone else/);
  });

  it('keeps a copy and sends nothing when the edited object is invalid', async () => {
    const res = await edit(editor('gut.sh', `sed -i '/^spec:/,$d' "$1"`));
    assert.equal(res.code, 1);
    assert.ok(fs.existsSync(copyPath(res.stderr)));
    assert.match(res.stderr, /\nerror: .*spec/);
    assert.equal(api.writes().length, 0);
  });

  it('refuses to rename the object', async () => {
    const res = await edit(editor('rename.sh', `sed -i 's/^  name: web$/  name: other/' "$1"`));
    assert.equal(res.code, 1);
    assert.match(res.stderr, /error: the kind and name of an object cannot be changed/);
    assert.equal(api.writes().length, 0);
  });

  it('fails when the editor fails', async () => {
    const res = await edit(editor('fail.sh', 'exit 3'));
    assert.equal(res.code, 1);
    assert.match(res.stderr, /exited with status 3/);
  });
});
