import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RuntimeError } from '../../src/errors';
import { FakeRuntime } from '../../src/runtime/fake-runtime';
import { EventRecorder } from './event-recorder';
import { describeRuntimeContract, EXPECTED_OUTPUT } from './runtime-contract';

const IMAGE = 'flotilla-runtime-test:1';

describeRuntimeContract('FakeRuntime', async () => {
  const runtime = new FakeRuntime();
  runtime.addImage(IMAGE);
  runtime.failPull('flotilla-runtime-test:absent', 'manifest unknown');
  return {
    runtime,
    image: IMAGE,
    unpullableImage: 'flotilla-runtime-test:absent',
    runLabels: { 'io.flotilla.test-run': 'fake' },
    command: ['/bin/sleep', '300'],
    afterStart: (id) => EXPECTED_OUTPUT.forEach((line) => runtime.writeLog(id, line)),
    removeExternally: async (id) => runtime.removeExternally(id),
    kill: async (id) => runtime.crash(id, 137),
    cleanup: async () => undefined,
  };
});

describe('FakeRuntime', () => {
  const spec = (name: string) => ({ name, image: IMAGE, labels: { app: 'web' }, env: [] });

  function withImage(): FakeRuntime {
    const runtime = new FakeRuntime({ now: () => Date.UTC(2030, 0, 1) });
    runtime.addImage(IMAGE);
    return runtime;
  }

  it('gives the same ids in the same order on every run', async () => {
    const ids = async () => {
      const runtime = withImage();
      return [await runtime.createContainer(spec('a')), await runtime.createContainer(spec('b'))];
    };
    const [first, second] = [await ids(), await ids()];
    assert.deepEqual(first, second);
    assert.notEqual(first[0], first[1]);
    assert.match(first[0], /^[0-9a-f]{64}$/);
  });

  it('treats a reference without a tag as :latest', async () => {
    const runtime = new FakeRuntime();
    await runtime.pullImage('busybox');
    assert.equal(await runtime.hasImage('busybox:latest'), true);
  });

  it('keeps the configured pull failure message until it is cleared', async () => {
    const runtime = new FakeRuntime();
    runtime.failPull('app:2', 'manifest unknown');
    await assert.rejects(runtime.pullImage('app:2'), (err: unknown) => {
      assert.ok(err instanceof RuntimeError);
      assert.equal(err.reason, 'ErrImagePull');
      assert.equal(err.message, 'pull app:2: manifest unknown');
      return true;
    });
    runtime.clearPullFailure('app:2');
    await runtime.pullImage('app:2');
    assert.equal(await runtime.hasImage('app:2'), true);
  });

  it('holds a pull until released and rejects it with the abort reason', async () => {
    const runtime = new FakeRuntime();
    const release = runtime.holdPull('app:3');
    const abort = new AbortController();
    const aborted = runtime.pullImage('app:3', abort.signal);
    const held = runtime.pullImage('app:3');
    abort.abort(new Error('pod deleted'));
    await assert.rejects(aborted, /pod deleted/);

    assert.equal(await runtime.hasImage('app:3'), false);
    release();
    await held;
    assert.equal(await runtime.hasImage('app:3'), true);
  });

  it('fails a start configured to fail with RunContainerError and keeps it created', async () => {
    const runtime = withImage();
    runtime.failStart(IMAGE, 'port is already allocated');
    const id = await runtime.createContainer(spec('a'));
    await assert.rejects(runtime.startContainer(id), { reason: 'RunContainerError' });
    const info = await runtime.inspectContainer(id);
    assert.equal(info?.state, 'created');
    assert.equal(info?.error, 'port is already allocated');
  });

  it('reports an out-of-memory kill with an oom event and an OOMKilled error', async () => {
    const runtime = withImage();
    const recorder = new EventRecorder();
    runtime.watchEvents({ app: 'web' }, recorder.onEvent);
    const id = await runtime.createContainer(spec('a'));
    await runtime.startContainer(id);

    runtime.crash(id, 137, { oom: true });
    await recorder.waitForAction(id, 'die');
    assert.deepEqual(recorder.actionsOf(id), ['create', 'start', 'oom', 'die']);
    assert.equal((await runtime.inspectContainer(id))?.error, 'OOMKilled');
  });

  it('emits the same stop sequence as Docker', async () => {
    const runtime = withImage();
    const recorder = new EventRecorder();
    runtime.watchEvents({}, recorder.onEvent);
    const id = await runtime.createContainer(spec('a'));
    await runtime.startContainer(id);
    await runtime.stopContainer(id, 5);
    await runtime.removeContainer(id);
    await recorder.waitForAction(id, 'destroy');
    assert.deepEqual(recorder.actionsOf(id), ['create', 'start', 'kill', 'die', 'stop', 'destroy']);
  });

  it('fails every call with RuntimeUnavailable while the engine is down', async () => {
    const runtime = withImage();
    const recorder = new EventRecorder();
    runtime.watchEvents({}, recorder.onEvent);
    const id = await runtime.createContainer(spec('a'));

    runtime.setAvailable(false);
    await recorder.waitFor((e) => e.type === 'disconnected');
    await assert.rejects(runtime.ping(), { reason: 'RuntimeUnavailable' });
    await assert.rejects(runtime.removeContainer(id), { reason: 'RuntimeUnavailable' });

    runtime.setAvailable(true);
    await recorder.waitFor((e) => e.type === 'reconnected');
    await runtime.removeContainer(id);
  });

  it('loses events that happen while disconnected, so the caller must re-list', async () => {
    const runtime = withImage();
    const recorder = new EventRecorder();
    runtime.watchEvents({}, recorder.onEvent);
    const id = await runtime.createContainer(spec('a'));
    await runtime.startContainer(id);

    runtime.setAvailable(false);
    runtime.crash(id, 1);
    runtime.setAvailable(true);
    await recorder.waitFor((e) => e.type === 'reconnected');
    assert.deepEqual(recorder.actionsOf(id), ['create', 'start']);
    assert.equal((await runtime.listContainers({ app: 'web' }))[0]?.exitCode, 1);
  });

  it('ends a followed log when the container stops', async () => {
    const runtime = withImage();
    const id = await runtime.createContainer(spec('a'));
    await runtime.startContainer(id);
    runtime.writeLog(id, 'one');
    const stream = await runtime.logs(id, { follow: true });
    runtime.writeLog(id, 'two');
    await runtime.stopContainer(id, 1);

    let text = '';
    for await (const chunk of stream) text += chunk.toString();
    assert.equal(text, 'one\ntwo\n');
  });

  it('records each call for assertions', async () => {
    const runtime = withImage();
    await runtime.hasImage(IMAGE);
    await runtime.stopContainer('gone', 1);
    assert.deepEqual(runtime.calls, [
      { op: 'hasImage', target: IMAGE },
      { op: 'stopContainer', target: 'gone' },
    ]);
  });
});
