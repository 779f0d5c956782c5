import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { FlotillaError, RuntimeError } from '../../src/errors';
import type {
  ContainerCreateSpec,
  ContainerRuntime,
  EventWatch,
  RuntimeEvent,
} from '../../src/runtime/container-runtime';
import { EventRecorder } from './event-recorder';

/** A ContainerRuntime whose watches say when their stream is live. */
export type WatchableRuntime = Omit<ContainerRuntime, 'watchEvents'> & {
  watchEvents(
    labels: Record<string, string>,
    onEvent: (e: RuntimeEvent) => void,
  ): EventWatch & { ready: Promise<void> };
};

/** Lines every contract container prints once started, one of them on stderr. */
export const EXPECTED_OUTPUT = ['ready', 'to-stderr'];

/** What the contract needs from one runtime implementation. */
export interface ContractHarness {
  runtime: WatchableRuntime;
  /** An image that is present. */
  image: string;
  /** An image that is absent and whose pull fails. */
  unpullableImage: string;
  /** Labels put on every container, so that cleanup finds them. */
  runLabels: Record<string, string>;
  /** Keeps the container running after printing {@link EXPECTED_OUTPUT}. */
  command: string[];
  /** Runs after each start: the fake prints the expected output here. */
  afterStart(id: string): void;
  /** Removes a container behind the runtime's back, like `docker rm -f`. */
  removeExternally(id: string): Promise<void>;
  /** SIGKILLs the container's process behind the runtime's back. */
  kill(id: string): Promise<void>;
  cleanup(): Promise<void>;
}

/**
 * Declares the behaviour every ContainerRuntime shares. `setUp` returns a
 * harness, or a reason to skip (no Docker on this machine).
 */
export function describeRuntimeContract(
  title: string,
  setUp: () => Promise<ContractHarness | string>,
): void {
  describe(title, () => {
    let harness: ContractHarness | undefined;
    let skipReason = 'not set up';
    let serial = 0;

    before(async () => {
      const result = await setUp();
      if (typeof result === 'string') skipReason = result;
      else harness = result;
    });
    after(async () => {
      await harness?.cleanup();
    });

    function use(t: TestContext): ContractHarness | undefined {
      if (!harness) t.skip(skipReason);
      return harness;
    }

    function spec(h: ContractHarness, extraLabels = {}): ContainerCreateSpec {
      const name = `flotilla-contract-${Object.values(h.runLabels).join('-')}-${++serial}`;
      return {
        name,
        image: h.image,
        labels: { ...h.runLabels, ...extraLabels },
        env: ['GREETING=hello'],
        command: h.command,
      };
    }

    async function runContainer(h: ContractHarness, extraLabels?: Record<string, string>) {
      const id = await h.runtime.createContainer(spec(h, extraLabels));
      await h.runtime.startContainer(id);
      h.afterStart(id);
      return id;
    }

    async function watch(h: ContractHarness, labels: Record<string, string>) {
      const recorder = new EventRecorder();
      const handle = h.runtime.watchEvents(labels, recorder.onEvent);
      await handle.ready;
      return { recorder, handle };
    }

    it('answers a ping', async (t) => {
      const h = use(t);
      if (!h) return;
      await h.runtime.ping();
    });

    it('tells a present image from an absent one', async (t) => {
      const h = use(t);
      if (!h) return;
      assert.equal(await h.runtime.hasImage(h.image), true);
      assert.equal(await h.runtime.hasImage(h.unpullableImage), false);
    });

    it('creates, starts and inspects a running container with its labels and IP', async (t) => {
      const h = use(t);
      if (!h) return;
      const id = await runContainer(h, { 'io.flotilla.pod': 'web-1' });

      const info = await h.runtime.inspectContainer(id);
      assert.ok(info);
      assert.equal(info.id, id);
      assert.equal(info.state, 'running');
      assert.equal(info.image, h.image);
      assert.match(info.imageId, /^(sha256:)?[0-9a-f]{64}$/);
      assert.equal(info.labels['io.flotilla.pod'], 'web-1');
      assert.match(info.ipAddress ?? '', /^\d+\.\d+\.\d+\.\d+$/);
      assert.ok(info.startedAt);
      assert.equal(info.exitCode, undefined);
    });

    it('finds a container by its name as well as its id', async (t) => {
      const h = use(t);
      if (!h) return;
      const s = spec(h);
      const id = await h.runtime.createContainer(s);
      assert.equal((await h.runtime.inspectContainer(s.name))?.id, id);
      assert.equal((await h.runtime.inspectContainer(id))?.name, s.name);
    });

    it('stops a running container promptly and records exit code 143', async (t) => {
      const h = use(t);
      if (!h) return;
      const id = await runContainer(h);

      const started = Date.now();
      await h.runtime.stopContainer(id, 10);
      assert.ok(Date.now() - started < 2000, 'stop should not wait for the grace period');

      const info = await h.runtime.inspectContainer(id);
      assert.equal(info?.state, 'exited');
      assert.equal(info?.exitCode, 143);
      assert.ok(info?.finishedAt);
      assert.equal(info?.ipAddress, undefined);
    });

    it('counts stopping or removing a stopped or missing container as success', async (t) => {
      const h = use(t);
      if (!h) return;
      const id = await runContainer(h);
      await h.runtime.stopContainer(id, 1);
      await h.runtime.stopContainer(id, 1);
      await h.runtime.removeContainer(id);
      await h.runtime.removeContainer(id);
      await h.runtime.stopContainer(id, 1);
      assert.equal(await h.runtime.inspectContainer(id), undefined);
    });

    it('removes a running container without stopping it first', async (t) => {
      const h = use(t);
      if (!h) return;
      const id = await runContainer(h);
      await h.runtime.removeContainer(id);
      assert.equal(await h.runtime.inspectContainer(id), undefined);
    });

    it('lists containers in every state that carry all the given labels', async (t) => {
      const h = use(t);
      if (!h) return;
      const running = await runContainer(h, { 'io.flotilla.pod': 'list-a' });
      const created = await h.runtime.createContainer(spec(h, { 'io.flotilla.pod': 'list-a' }));
      const exited = await runContainer(h, { 'io.flotilla.pod': 'list-a' });
      await h.runtime.stopContainer(exited, 1);
      await runContainer(h, { 'io.flotilla.pod': 'list-b' });

      const selector = { ...h.runLabels, 'io.flotilla.pod': 'list-a' };
      const listed = await h.runtime.listContainers(selector);
      const states = Object.fromEntries(listed.map((c) => [c.id, c.state]));
      assert.deepEqual(states, { [running]: 'running', [created]: 'created', [exited]: 'exited' });
      assert.equal(listed.find((c) => c.id === exited)?.exitCode, 143);
    });

    it('fails a pull of an unknown image with ErrImagePull', async (t) => {
      const h = use(t);
      if (!h) return;
      const err = await h.runtime.pullImage(h.unpullableImage).then(
        () => assert.fail('pull should fail'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof RuntimeError, String(err));
      assert.equal(err.reason, 'ErrImagePull');
      assert.equal(err.code, 'RuntimeFailed');
      assert.ok(err.message.includes(h.unpullableImage));
      assert.ok(err.message.length < 400, 'the engine message is kept short');
    });

    it('refuses to create from an absent image or under a taken name', async (t) => {
      const h = use(t);
      if (!h) return;
      const absent = { ...spec(h), image: h.unpullableImage };
      await assert.rejects(h.runtime.createContainer(absent), { reason: 'CreateContainerError' });

      const taken = spec(h);
      await h.runtime.createContainer(taken);
      await assert.rejects(h.runtime.createContainer(taken), { reason: 'CreateContainerError' });
    });

    it('fails starting a missing container with RunContainerError', async (t) => {
      const h = use(t);
      if (!h) return;
      await assert.rejects(h.runtime.startContainer('flotilla-no-such-container'), {
        reason: 'RunContainerError',
      });
    });

    it('treats starting a running container as success', async (t) => {
      const h = use(t);
      if (!h) return;
      const id = await runContainer(h);
      await h.runtime.startContainer(id);
      assert.equal((await h.runtime.inspectContainer(id))?.state, 'running');
    });

    it('reports start, die and destroy for a container removed behind its back', async (t) => {
      const h = use(t);
      if (!h) return;
      const { recorder, handle } = await watch(h, { ...h.runLabels, group: 'watched' });
      const other = await runContainer(h, { group: 'other' });
      const id = await runContainer(h, { group: 'watched' });
      await recorder.waitForAction(id, 'start');

      await h.removeExternally(id);
      const destroyed = await recorder.waitForAction(id, 'destroy');
      handle.close();

      const actions = recorder.actionsOf(id).filter((a) => ['start', 'die', 'destroy'].includes(a));
      assert.deepEqual(actions, ['start', 'die', 'destroy']);
      assert.equal(destroyed.type === 'container' && destroyed.labels.group, 'watched');
      assert.deepEqual(recorder.actionsOf(other), [], 'unmatched labels are filtered out');
    });

    it('reports the exit code of a killed container on die and in inspect', async (t) => {
      const h = use(t);
      if (!h) return;
      const { recorder, handle } = await watch(h, { ...h.runLabels, group: 'killed' });
      const id = await runContainer(h, { group: 'killed' });

      await h.kill(id);
      const died = await recorder.waitForAction(id, 'die');
      handle.close();

      assert.equal(died.type === 'container' && died.exitCode, 137);
      assert.ok(died.type === 'container' && died.time > Date.now() - 60_000);
      const info = await h.runtime.inspectContainer(id);
      assert.equal(info?.state, 'exited');
      assert.equal(info?.exitCode, 137);
    });

    it('delivers nothing after a watch is closed', async (t) => {
      const h = use(t);
      if (!h) return;
      const selector = { ...h.runLabels, group: 'closed' };
      const { recorder: closed, handle } = await watch(h, selector);
      handle.close();
      const { recorder: open, handle: openHandle } = await watch(h, selector);

      const id = await runContainer(h, { group: 'closed' });
      await open.waitForAction(id, 'start');
      openHandle.close();
      assert.deepEqual(closed.events, []);
    });

    it('follows demultiplexed stdout and stderr and honours tail', async (t) => {
      const h = use(t);
      if (!h) return;
      const id = await runContainer(h);

      const followed = await h.runtime.logs(id, { follow: true });
      const lines = await readLinesUntil(followed, EXPECTED_OUTPUT.length);
      assert.deepEqual([...lines].sort(), [...EXPECTED_OUTPUT].sort());

      const tail = await readAll(await h.runtime.logs(id, { tail: 1 }));
      assert.equal(tail.trim().split('\n').length, 1);
      const stamped = await readAll(await h.runtime.logs(id, { timestamps: true }));
      assert.match(stamped, /^\d{4}-\d\d-\d\dT\S+ /);
    });

    it('fails reading the logs of a missing container with NotFound', async (t) => {
      const h = use(t);
      if (!h) return;
      const err = await h.runtime.logs('flotilla-no-such-container', {}).catch((e: unknown) => e);
      assert.ok(err instanceof FlotillaError);
      assert.equal(err.code, 'NotFound');
    });
  });
}

function readLinesUntil(stream: NodeJS.ReadableStream, count: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    let text = '';
    const destroyable = stream as NodeJS.ReadableStream & { destroy(): void };
    stream.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const lines = text.split('\n').filter((l) => l !== '');
      if (text.endsWith('\n') && lines.length >= count) {
        destroyable.destroy();
        resolve(lines);
      }
    });
    stream.on('error', reject);
    stream.on('end', () => reject(new Error(`stream ended after: ${JSON.stringify(text)}`)));
  });
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += chunk.toString();
  return text;
}
