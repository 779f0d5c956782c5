import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Container, Probe } from '../../src/manifest/types';
import { executeProbe, resolvePort } from '../../src/runtime/probes';

const HOST = `127.0.${1 + Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}`;

function probe(handler: Partial<Probe>): Probe {
  return {
    initialDelaySeconds: 0,
    periodSeconds: 1,
    timeoutSeconds: 1,
    successThreshold: 1,
    failureThreshold: 3,
    ...handler,
  };
}

describe('probe handlers', () => {
  let server: http.Server;
  let port: number;
  let headers: http.IncomingHttpHeaders | undefined;
  let container: Container;

  before(async () => {
    server = http.createServer((req, res) => {
      headers = req.headers;
      if (req.url === '/hang') return; // never answers
      const status = req.url === '/ok' ? 200 : req.url === '/redirect' ? 302 : 503;
      res.writeHead(status, { location: '/ok' }).end('body');
    });
    await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
    port = (server.address() as AddressInfo).port;
    container = {
      name: 'main',
      image: 'app:1',
      imagePullPolicy: 'IfNotPresent',
      ports: [{ name: 'http', containerPort: port, protocol: 'TCP' }],
    };
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  const run = (p: Probe, ip: string | undefined = HOST) =>
    executeProbe({ ip, container, containerId: 'c1' }, p, 300);

  it('passes an httpGet probe answered with 200 or a redirect, without following it', async () => {
    assert.deepEqual(await run(probe({ httpGet: { path: '/ok', port } })), { ok: true });
    const redirect = probe({ httpGet: { path: '/redirect', port: 'http' } });
    assert.deepEqual(await run(redirect), { ok: true });
  });

  it('fails an httpGet probe answered with 503 and says the status', async () => {
    const result = await run(probe({ httpGet: { path: '/bad', port } }));
    assert.equal(result.ok, false);
    assert.match(result.message ?? '', /statuscode: 503/);
  });

  it('sends the probe headers', async () => {
    const httpHeaders = [{ name: 'X-Probe', value: 'yes' }];
    await run(probe({ httpGet: { path: '/ok', port, httpHeaders } }));
    assert.equal(headers?.['x-probe'], 'yes');
  });

  it('fails an httpGet probe that gets no answer within the timeout', async () => {
    const result = await run(probe({ httpGet: { path: '/hang', port } }));
    assert.equal(result.ok, false);
    assert.match(result.message ?? '', /timeout/);
  });

  it('passes a tcpSocket probe on a listening port and fails on a closed one', async () => {
    assert.deepEqual(await run(probe({ tcpSocket: { port } })), { ok: true });
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, HOST, resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const result = await run(probe({ tcpSocket: { port: closedPort } }));
    assert.equal(result.ok, false);
    assert.match(result.message ?? '', /ECONNREFUSED/);
  });

  it('fails network probes of a pod that has no IP yet', async () => {
    const target = { container, containerId: 'c1' };
    const result = await executeProbe(target, probe({ tcpSocket: { port } }), 300);
    assert.equal(result.ok, false);
  });

  it('runs exec probes through the runtime and passes on exit code 0 only', async () => {
    const calls: string[][] = [];
    const exec = async (_id: string, command: string[]) => {
      calls.push(command);
      return { exitCode: command[0] === 'true' ? 0 : 1, output: 'not healthy\n' };
    };
    const target = { ip: HOST, container, containerId: 'c1', exec };
    const ok = await executeProbe(target, probe({ exec: { command: ['true'] } }), 300);
    const bad = await executeProbe(target, probe({ exec: { command: ['false'] } }), 300);
    assert.deepEqual(ok, { ok: true });
    assert.deepEqual(bad, { ok: false, message: 'command exited with 1: not healthy' });
    assert.deepEqual(calls, [['true'], ['false']]);
  });

  it('resolves a named port to the container port of that name', () => {
    assert.equal(resolvePort(container, 'http'), port);
    assert.equal(resolvePort(container, 8080), 8080);
    assert.ok(Number.isNaN(resolvePort(container, 'metrics')));
  });
});
