/**
 * The mutual-TLS tunnel between nodes: the agent side (serveTunnel) on an
 * https server set up like the agent's listener, the dialer, and the
 * balancer sending HTTP, TCP and upgraded connections through it.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { after, describe, test } from 'node:test';
import pino from 'pino';
import { Balancer } from '../../src/lb/balancer';
import {
  TunnelDialer,
  parseAuthority,
  serveTunnel,
  type TunnelMaterial,
  type TunnelServer,
} from '../../src/lb/tunnel';
import type { BalancedService, Endpoint } from '../../src/lb/types';
import {
  HOST,
  cleanups,
  closeServer,
  closedPort,
  fetchText,
  listenPort,
  runCleanups,
  service,
  startBackend,
} from './helpers';

after(runCleanups);

// Compiled tests run from an output folder; the fixtures stay in the checkout.
const PKI = findPki();

function findPki(): string {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'test/fixtures/pki');
    if (existsSync(candidate)) return candidate;
  }
  throw new Error('test/fixtures/pki not found');
}

function pem(name: string): string {
  return readFileSync(path.join(PKI, name), 'utf8');
}

const CA = pem('ca.crt');
/** Material of a cluster member, as the agent would hold it. */
function member(name: 'node-a' | 'node-b'): TunnelMaterial {
  return { ca: CA, cert: pem(`${name}.crt`), key: pem(`${name}.key`) };
}

/** An agent listener (node-a) serving only the tunnel, and what it saw. */
interface Agent {
  via: string;
  server: https.Server;
  /** TLS connections accepted. */
  connections: number;
  /** The CN of each client certificate presented, in order. */
  peers: string[];
  /** Every target `authorize` was asked about. */
  asked: string[];
  tunnels?: TunnelServer;
}

async function startAgent(allow: (host: string, port: number) => boolean = () => true) {
  const a = member('node-a');
  const server = https.createServer({
    requestCert: true,
    rejectUnauthorized: false,
    ca: a.ca,
    cert: a.cert,
    key: a.key,
  });
  const agent: Agent = { via: '', server, connections: 0, peers: [], asked: [] };
  server.on('secureConnection', (socket: tls.TLSSocket) => {
    agent.connections += 1;
    const cn = socket.getPeerCertificate().subject?.CN;
    agent.peers.push(typeof cn === 'string' ? cn : '');
  });
  agent.tunnels = serveTunnel(server, {
    logger: pino({ level: 'silent' }),
    authorize: (host, port) => {
      agent.asked.push(`${host}:${port}`);
      return allow(host, port);
    },
    connectTimeoutMs: 2000,
  });
  server.listen(0, HOST);
  await once(server, 'listening');
  cleanups.push(() => closeServer(server));
  agent.via = `${HOST}:${(server.address() as net.AddressInfo).port}`;
  return agent;
}

function startTunnelBalancer(dialer = new TunnelDialer({ tls: () => member('node-b') })): Balancer {
  const lb = new Balancer({ logger: pino({ level: 'silent' }), tunnel: dialer });
  cleanups.push(() => lb.close());
  return lb;
}

function via(endpoint: Endpoint, agent: Agent): Endpoint {
  return { ...endpoint, nodeName: 'node-a', via: agent.via };
}

/** A TCP server echoing every connection's bytes, ending when the client ends. */
async function startEcho(onConnection?: (socket: net.Socket) => void): Promise<number> {
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => socket.destroy());
    if (onConnection) onConnection(socket);
    else socket.pipe(socket);
  });
  server.listen(0, HOST);
  await once(server, 'listening');
  cleanups.push(() => closeServer(server));
  return (server.address() as net.AddressInfo).port;
}

/** Writes `request` on a TLS connection to the agent and collects its answer. */
async function rawTunnelAnswer(
  agent: Agent,
  request: string,
  creds: Partial<TunnelMaterial> = {},
): Promise<string> {
  const [host, port] = agent.via.split(':');
  const socket = tls.connect({ host, port: Number(port), ca: CA, ...creds });
  cleanups.push(() => void socket.destroy());
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => (text += chunk));
  socket.on('error', () => undefined);
  await once(socket, 'secureConnect');
  socket.write(request);
  // A refusal closes the connection; a tunnel wrongly opened would not.
  const deadline = new Promise((resolve) => setTimeout(resolve, 2000).unref());
  await Promise.race([once(socket, 'close'), deadline]);
  return text;
}

async function dialError(promise: Promise<net.Socket>): Promise<Error & { code?: string }> {
  try {
    const socket = await promise;
    socket.destroy();
  } catch (err) {
    return err as Error & { code?: string };
  }
  assert.fail('the dial succeeded');
}

describe('balancer through the tunnel', { timeout: 20_000 }, () => {
  test('http mode reaches a backend on another node and reuses the tunnel', async () => {
    const agent = await startAgent();
    const backend = await startBackend('far');
    const lb = startTunnelBalancer();
    const port = await listenPort(lb, service('default/far', [via(backend.endpoint(), agent)]));

    const first = await fetchText(port);
    const second = await fetchText(port);
    assert.equal(first.status, 200);
    assert.equal(second.body, 'far');
    assert.equal(backend.seen.length, 2);
    assert.equal(agent.connections, 1, 'both requests went over one kept-alive tunnel');
    assert.deepEqual(agent.asked, [`${HOST}:${backend.port}`]);
    assert.deepEqual(agent.peers, ['node-b']);
  });

  test('a changed via gets new connections', async () => {
    const agent = await startAgent();
    const backend = await startBackend('moved');
    const lb = startTunnelBalancer();
    const direct = service('default/moved', [backend.endpoint()]);
    const port = await listenPort(lb, direct);
    assert.equal((await fetchText(port)).status, 200);
    assert.equal(agent.connections, 0);

    await lb.sync([service('default/moved', [via(backend.endpoint(), agent)], { port })]);
    assert.equal((await fetchText(port)).body, 'moved');
    assert.equal(agent.connections, 1, 'the pooled direct connection was not reused');
  });

  test('tcp mode pipes bytes both ways and passes half-closes', async () => {
    const agent = await startAgent();
    const echo = await startEcho();
    const lb = startTunnelBalancer();
    const endpoint = { id: 'echo', host: HOST, port: echo, nodeName: 'node-a', via: agent.via };
    const port = await listenPort(lb, service('default/echo', [endpoint], { mode: 'tcp' }));

    const socket = net.connect({ port, host: HOST, allowHalfOpen: true });
    cleanups.push(() => void socket.destroy());
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.write('hello through the tunnel');
    socket.end();
    await once(socket, 'end');
    assert.equal(text, 'hello through the tunnel');
    assert.equal(agent.connections, 1);
  });

  test('an upgraded connection goes through the tunnel', async () => {
    const agent = await startAgent();
    const backend = await startBackend('ws');
    backend.server.on('upgrade', (_req, socket: net.Socket, head: Buffer) => {
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n',
      );
      if (head.length > 0) socket.write(head);
      socket.pipe(socket);
    });
    const lb = startTunnelBalancer();
    const port = await listenPort(lb, service('default/ws', [via(backend.endpoint(), agent)]));

    const socket = net.connect(port, HOST);
    cleanups.push(() => void socket.destroy());
    socket.write('GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
    const [head] = (await once(socket, 'data')) as [Buffer];
    assert.match(head.toString(), /^HTTP\/1\.1 101 /);
    socket.write('ping');
    const [echo] = (await once(socket, 'data')) as [Buffer];
    assert.equal(echo.toString(), 'ping');
    assert.equal(agent.connections, 1);
    socket.end();
    assert.equal(await lb.waitIdle('ws', 2000), true);
  });

  test('the PROXY header comes first through the tunnel, in tcp and http mode', async () => {
    const agent = await startAgent();
    const firstLines: string[] = [];
    const port = await startEcho((socket) => {
      socket.once('data', (chunk: Buffer) => {
        const text = chunk.toString('latin1');
        firstLines.push(text.slice(0, text.indexOf('\r\n')));
        socket.end('HTTP/1.1 200 OK\r\ncontent-length: 7\r\nconnection: close\r\n\r\nproxied');
      });
    });
    const lb = startTunnelBalancer();
    const endpoint = { id: 'pp', host: HOST, port, nodeName: 'node-a', via: agent.via };
    const svc = (mode: 'tcp' | 'http'): BalancedService => {
      const s = service(`default/pp-${mode}`, [endpoint], { mode });
      s.ports[0].proxyProtocol = 'v1';
      return s;
    };
    const report = await lb.sync([svc('tcp'), svc('http')]);
    for (const listener of report.listeners) {
      const reply = await fetchText(listener.boundPort);
      assert.equal(reply.body, 'proxied', listener.key);
    }
    assert.equal(firstLines.length, 2);
    for (const line of firstLines) {
      assert.match(line, /^PROXY TCP4 127\.0\.0\.1 127\.0\.0\.1 \d+ \d+$/);
    }
    assert.equal(agent.connections, 2);
  });

  test('a target refused on the far node is retried on another endpoint', async () => {
    const agent = await startAgent();
    const dead = await closedPort();
    const backend = await startBackend('alive');
    const lb = startTunnelBalancer();
    const endpoints = [
      { id: 'dead', host: HOST, port: dead, nodeName: 'node-a', via: agent.via },
      via(backend.endpoint(), agent),
    ];
    const port = await listenPort(lb, service('default/retry', endpoints));

    const replies = [];
    for (let i = 0; i < 4; i++) replies.push(await fetchText(port));
    assert.deepEqual(
      replies.map((r) => `${r.status} ${r.body}`),
      ['200 alive', '200 alive', '200 alive', '200 alive'],
    );
    assert.ok(agent.asked.includes(`${HOST}:${dead}`), 'the dead endpoint was tried');

    const tcp: BalancedService = service('default/retry-tcp', endpoints, { mode: 'tcp' });
    const echoPort = await startEcho();
    tcp.ports[0].endpoints = [endpoints[0], { ...endpoints[0], id: 'echo', port: echoPort }];
    const tcpPort = await listenPort(lb, tcp);
    const socket = net.connect(tcpPort, HOST);
    cleanups.push(() => void socket.destroy());
    socket.write('still answered');
    const [echoed] = (await once(socket, 'data')) as [Buffer];
    assert.equal(echoed.toString(), 'still answered');
  });

  test('two refusing endpoints (a dead server holding both) never fail a request', async () => {
    const agent = await startAgent();
    const [deadA, deadB] = [await closedPort(), await closedPort()];
    const backend = await startBackend('alive');
    const lb = startTunnelBalancer();
    const dead = (id: string, port: number): Endpoint => ({
      id,
      host: HOST,
      port,
      nodeName: 'node-a',
      via: agent.via,
    });
    const endpoints = [dead('dead-a', deadA), dead('dead-b', deadB), backend.endpoint()];
    const port = await listenPort(lb, service('default/two-dead', endpoints));
    for (let i = 0; i < 6; i++) assert.equal((await fetchText(port)).body, 'alive');

    const echoPort = await startEcho();
    const tcp = service('default/two-dead-tcp', endpoints, { mode: 'tcp' });
    tcp.ports[0].endpoints = [
      endpoints[0],
      endpoints[1],
      { ...endpoints[0], id: 'e', port: echoPort },
    ];
    const tcpPort = await listenPort(lb, tcp);
    for (let i = 0; i < 3; i++) {
      const socket = net.connect(tcpPort, HOST);
      cleanups.push(() => void socket.destroy());
      socket.write(`hello ${i}`);
      const [echoed] = (await once(socket, 'data')) as [Buffer];
      assert.equal(echoed.toString(), `hello ${i}`);
      socket.destroy();
    }
  });

  test('an endpoint with via and no tunnel configured is never dialled directly', async () => {
    const backend = await startBackend('far');
    const local = await startBackend('near');
    const lb = new Balancer({ logger: pino({ level: 'silent' }) });
    cleanups.push(() => lb.close());
    const far = { ...backend.endpoint(), via: `${HOST}:1` };
    const port = await listenPort(lb, service('default/notunnel', [far, local.endpoint()]));
    for (let i = 0; i < 3; i++) assert.equal((await fetchText(port)).body, 'near');
    assert.equal(backend.seen.length, 0);
  });
});

describe('a stopping agent drains its tunnels', { timeout: 20_000 }, () => {
  test('a request in flight finishes before its tunnel is closed', async () => {
    const agent = await startAgent();
    const slow = await startBackend('slow', (_req, res) => {
      setTimeout(() => res.end('slow'), 400);
    });
    const lb = startTunnelBalancer();
    const port = await listenPort(lb, service('default/slow', [via(slow.endpoint(), agent)]));
    const reply = fetchText(port);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const drained = agent.tunnels!.drain(5000);
    assert.deepEqual(await reply.then((r) => `${r.status} ${r.body}`), '200 slow');
    await drained;
  });

  test('after the drain, new requests are refused like a connect and go elsewhere', async () => {
    const agent = await startAgent();
    const far = await startBackend('far');
    const near = await startBackend('near');
    const lb = startTunnelBalancer();
    const endpoints = [via(far.endpoint(), agent), near.endpoint()];
    const port = await listenPort(lb, service('default/drained', endpoints));
    const before = [];
    for (let i = 0; i < 4; i++) before.push((await fetchText(port)).body);
    assert.ok(before.includes('far'), `never through the tunnel: ${before.join(',')}`);

    await agent.tunnels!.drain(5000);
    const after = [];
    for (let i = 0; i < 6; i++) {
      const r = await fetchText(port);
      after.push(`${r.status} ${r.body}`);
    }
    assert.deepEqual(after, Array(6).fill('200 near'));
  });
});

describe('tunnel dialer', { timeout: 20_000 }, () => {
  test('names the remote cause of a refused target', async () => {
    const agent = await startAgent();
    const dialer = new TunnelDialer({ tls: () => member('node-b') });
    const err = await dialError(dialer.dial(agent.via, HOST, await closedPort(), 2000));
    assert.equal(err.code, 'ECONNREFUSED');
  });

  test('leaves bytes sent right after the answer for the application', async () => {
    // A peer that sends the answer split at awkward places, the pod's first
    // bytes in the same write as its blank line.
    const a = member('node-a');
    const peer = https.createServer({ ca: a.ca, cert: a.cert, key: a.key });
    peer.on('connect', (_req, socket: net.Socket) => {
      socket.write('HTTP/1.1 200 Conn');
      setTimeout(() => socket.write('ection Established\r\n\r'), 20);
      setTimeout(() => socket.end('\ngreeting first'), 40);
    });
    peer.listen(0, HOST);
    await once(peer, 'listening');
    cleanups.push(() => closeServer(peer));
    const address = `${HOST}:${(peer.address() as net.AddressInfo).port}`;

    const dialer = new TunnelDialer({ tls: () => member('node-b') });
    const socket = await dialer.dial(address, HOST, 80, 2000);
    cleanups.push(() => void socket.destroy());
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    await once(socket, 'end');
    assert.equal(text, 'greeting first');
  });

  test('refuses an agent whose certificate is not from the trusted CA', async () => {
    const agent = await startAgent();
    const other = {
      ca: pem('other-ca.crt'),
      cert: pem('other-node.crt'),
      key: pem('other-node.key'),
    };
    const dialer = new TunnelDialer({ tls: () => other });
    const err = await dialError(dialer.dial(agent.via, HOST, 80, 2000));
    assert.match(err.code ?? '', /CERT|SIGNATURE|VERIFY|ISSUER/);
    assert.deepEqual(agent.asked, [], 'no CONNECT was sent');
  });

  test('presents renewed material on new dials, building one context per material', async () => {
    const agent = await startAgent();
    const port = await startEcho();
    let material = member('node-a');
    const dialer = new TunnelDialer({ tls: () => material });
    const create = tls.createSecureContext;
    let built = 0;
    tls.createSecureContext = (options) => {
      built += 1;
      return create(options);
    };
    try {
      for (let i = 0; i < 2; i++) (await dialer.dial(agent.via, HOST, port, 2000)).destroy();
      material = member('node-b');
      (await dialer.dial(agent.via, HOST, port, 2000)).destroy();
    } finally {
      tls.createSecureContext = create;
    }
    assert.deepEqual(agent.peers, ['node-a', 'node-a', 'node-b']);
    assert.equal(built, 2);
  });

  test('times out on a peer that never answers', async () => {
    // Reads (so that it sees the dialer go away) but never answers.
    const silent = net.createServer((socket) => socket.on('error', () => undefined).resume());
    silent.listen(0, HOST);
    await once(silent, 'listening');
    cleanups.push(() => closeServer(silent));
    const peer = `${HOST}:${(silent.address() as net.AddressInfo).port}`;
    const dialer = new TunnelDialer({ tls: () => member('node-b') });
    const err = await dialError(dialer.dial(peer, HOST, 80, 100));
    assert.equal(err.code, 'ETIMEDOUT');
  });
});

describe('tunnel server refusals', { timeout: 20_000 }, () => {
  const connect = (port: number) => `CONNECT ${HOST}:${port} HTTP/1.1\r\nHost: x\r\n\r\n`;

  test('a client without a certificate gets 403', async () => {
    const agent = await startAgent();
    const answer = await rawTunnelAnswer(agent, connect(await startEcho()));
    assert.match(answer, /^HTTP\/1\.1 403 /);
    assert.deepEqual(agent.asked, []);
  });

  test('a client certificate from another CA gets 403', async () => {
    const agent = await startAgent();
    const creds = { cert: pem('other-node.crt'), key: pem('other-node.key') };
    const answer = await rawTunnelAnswer(agent, connect(await startEcho()), creds);
    assert.match(answer, /^HTTP\/1\.1 403 /);
    assert.deepEqual(agent.asked, []);
  });

  test('a target authorize rejects gets 403', async () => {
    const port = await startEcho();
    const agent = await startAgent((_host, p) => p !== port);
    const dialer = new TunnelDialer({ tls: () => member('node-b') });
    const err = await dialError(dialer.dial(agent.via, HOST, port, 2000));
    assert.equal(err.code, 'ERR_TUNNEL_403');
    assert.deepEqual(agent.asked, [`${HOST}:${port}`]);
  });

  test('a malformed CONNECT target gets 400', async () => {
    const agent = await startAgent();
    const { cert, key } = member('node-b');
    for (const target of ['localhost:80', `${HOST}:0`, `${HOST}:65536`, `${HOST}:080`, HOST]) {
      const answer = await rawTunnelAnswer(agent, `CONNECT ${target} HTTP/1.1\r\nHost: x\r\n\r\n`, {
        cert,
        key,
      });
      assert.match(answer, /^HTTP\/1\.1 400 /, target);
    }
    assert.deepEqual(agent.asked, []);
  });

  test('survives peers and targets that reset mid-stream', async () => {
    const agent = await startAgent();
    const port = await startEcho((socket) => {
      socket.once('data', () => socket.resetAndDestroy());
    });
    const dialer = new TunnelDialer({ tls: () => member('node-b') });
    const first = await dialer.dial(agent.via, HOST, port, 2000);
    first.on('error', () => undefined);
    first.resume().write('x');
    // The reset reaches the dialer as the end of the tunnel.
    await once(first, 'end');
    first.destroy();

    // The agent is left writing the echo to a connection that is gone.
    const second = await dialer.dial(agent.via, HOST, await startEcho(), 2000);
    second.write('y'.repeat(1024 * 1024));
    second.destroy();
    await new Promise((resolve) => setTimeout(resolve, 50));

    // The agent still serves.
    const third = await dialer.dial(agent.via, HOST, await startEcho(), 2000);
    third.end('ok');
    const [echo] = (await once(third, 'data')) as [Buffer];
    assert.equal(echo.toString(), 'ok');
    third.destroy();
  });

  test('parses only address literals and valid ports', () => {
    assert.deepEqual(parseAuthority('10.0.0.5:8080'), { host: '10.0.0.5', port: 8080 });
    assert.deepEqual(parseAuthority('[fd00::1]:443'), { host: 'fd00::1', port: 443 });
    const bad = ['fd00::1:443', '[10.0.0.5]:80', '300.1.1.1:80', 'a.b:1', '1.2.3.4:', ' 1.2.3.4:5'];
    for (const text of bad) {
      assert.equal(parseAuthority(text), undefined, text);
    }
  });
});
