import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { DockerRuntime } from '../../src/runtime/docker-runtime';
import {
  DEFAULT_RECONNECT,
  EventFollower,
  reconnectDelayMs,
  toRuntimeEvent,
} from '../../src/runtime/event-follower';
import { EventRecorder } from './event-recorder';

const silent = pino({ enabled: false });

function dockerEvent(action: string, id: string, attributes: Record<string, string>): string {
  const timeNano = 1_700_000_000_123_456_789;
  return JSON.stringify({
    Type: 'container',
    Action: action,
    Actor: { ID: id, Attributes: attributes },
    time: Math.floor(timeNano / 1e9),
    timeNano,
  });
}

describe('reconnectDelayMs', () => {
  it('doubles from the initial delay and stops at the cap', () => {
    const delays = [0, 1, 2, 3, 4, 5, 6].map((attempt) => reconnectDelayMs(attempt));
    assert.deepEqual(delays, [100, 200, 400, 800, 1600, 3000, 3000]);
    assert.equal(reconnectDelayMs(10_000), DEFAULT_RECONNECT.maxDelayMs);
  });
});

describe('toRuntimeEvent', () => {
  it('keeps labels, drops Docker attributes and reads the exit code and time', () => {
    const line = dockerEvent('die', 'abc', {
      'io.flotilla.pod': 'web-1',
      name: 'web-1-app',
      image: 'app:1',
      exitCode: '3',
    });
    assert.deepEqual(toRuntimeEvent(line), {
      type: 'container',
      action: 'die',
      id: 'abc',
      labels: { 'io.flotilla.pod': 'web-1' },
      exitCode: 3,
      time: 1_700_000_000_123,
    });
  });

  it('ignores lines that are not container events', () => {
    assert.equal(toRuntimeEvent(JSON.stringify({ Type: 'network', Action: 'connect' })), undefined);
    assert.equal(toRuntimeEvent('not json'), undefined);
  });
});

describe('EventFollower', () => {
  const fast = { initialDelayMs: 1, maxDelayMs: 4 };

  it('reports one disconnect while attempts fail and reconnects when one succeeds', async () => {
    const recorder = new EventRecorder();
    let attempts = 0;
    const stream = new PassThrough();
    const open = async () => {
      attempts += 1;
      if (attempts <= 3) throw new Error('connect ECONNREFUSED');
      return stream;
    };
    const follower = new EventFollower(open, recorder.onEvent, silent, fast).start();

    await recorder.waitFor((e) => e.type === 'reconnected');
    stream.write(`${dockerEvent('start', 'c1', {})}\n`);
    await recorder.waitFor((e) => e.type === 'container');
    follower.close();

    assert.equal(attempts, 4);
    assert.deepEqual(
      recorder.events.map((e) => e.type),
      ['disconnected', 'reconnected', 'container'],
    );
    const [first] = recorder.events;
    assert.equal(first.type === 'disconnected' && first.error, 'connect ECONNREFUSED');
  });

  it('keeps following when a handler throws', async () => {
    const stream = new PassThrough();
    const seen: string[] = [];
    const recorder = new EventRecorder();
    const follower = new EventFollower(async () => stream, (e) => {
      recorder.onEvent(e);
      if (e.type === 'container') seen.push(e.action);
      throw new Error('handler bug');
    }, silent, fast).start();
    await follower.ready;

    stream.write(`${dockerEvent('start', 'c1', {})}\n${dockerEvent('die', 'c1', {})}\n`);
    await recorder.waitForAction('c1', 'die');
    follower.close();
    assert.deepEqual(seen, ['start', 'die']);
  });

  it('delivers nothing and destroys a late stream once closed', async () => {
    const stream = new PassThrough();
    let resolveOpen!: (s: NodeJS.ReadableStream) => void;
    const opened = new Promise<NodeJS.ReadableStream>((resolve) => (resolveOpen = resolve));
    const events: unknown[] = [];
    const follower = new EventFollower(() => opened, (e) => events.push(e), silent, fast).start();

    follower.close();
    resolveOpen(stream);
    await follower.ready;
    await once(stream, 'close');
    assert.deepEqual(events, []);
  });
});

/** A stand-in for dockerd's /events endpoint on a unix socket we own. */
class FakeEventsEndpoint {
  readonly requests: string[] = [];
  private server?: Server;
  private response?: ServerResponse;
  private waiting: Array<() => void> = [];

  constructor(readonly socketPath: string) {}

  async listen(): Promise<void> {
    rmSync(this.socketPath, { force: true });
    this.server = createServer((req, res) => this.handle(req, res));
    this.server.listen(this.socketPath);
    await once(this.server, 'listening');
  }

  /** Drops the open stream and stops listening, as a dying dockerd would. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.response = undefined;
    if (!server) return;
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  }

  send(line: string): void {
    assert.ok(this.response, 'no client is following events');
    // Split mid-line: the follower must reassemble chunks.
    const middle = Math.floor(line.length / 2);
    this.response.write(line.slice(0, middle));
    this.response.write(`${line.slice(middle)}\n`);
  }

  /** Resolves once a client has an open events stream. */
  connected(): Promise<void> {
    if (this.response) return Promise.resolve();
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    this.requests.push(req.url ?? '');
    if (!req.url?.includes('/events')) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.flushHeaders();
    this.response = res;
    this.waiting.splice(0).forEach((resolve) => resolve());
  }
}

describe('DockerRuntime.watchEvents', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'flotilla-events-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('filters by labels, survives the engine going away and reports reconnected', async () => {
    const endpoint = new FakeEventsEndpoint(join(dir, 'docker.sock'));
    await endpoint.listen();
    const recorder = new EventRecorder();
    const runtime = new DockerRuntime({ socketPath: endpoint.socketPath });
    const watch = runtime.watchEvents({ 'io.flotilla.node': 'n1' }, recorder.onEvent);
    await watch.ready;

    const query = new URL(endpoint.requests[0], 'http://socket').searchParams;
    const filters = JSON.parse(query.get('filters') ?? '{}');
    assert.deepEqual(filters, { type: ['container'], label: ['io.flotilla.node=n1'] });
    endpoint.send(dockerEvent('start', 'c1', { 'io.flotilla.node': 'n1' }));
    await recorder.waitForAction('c1', 'start');

    await endpoint.stop();
    await recorder.waitFor((e) => e.type === 'disconnected');
    await endpoint.listen();
    await recorder.waitFor((e) => e.type === 'reconnected');
    await endpoint.connected();
    endpoint.send(dockerEvent('die', 'c1', { 'io.flotilla.node': 'n1', exitCode: '0' }));
    await recorder.waitForAction('c1', 'die');

    watch.close();
    await endpoint.stop();
    assert.deepEqual(
      recorder.events.map((e) => (e.type === 'container' ? e.action : e.type)),
      ['start', 'disconnected', 'reconnected', 'die'],
    );
  });
});
