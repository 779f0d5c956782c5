import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import { desiredServices } from '../../src/agent/endpoints';
import { proxyHeader, proxyProtocolFor } from '../../src/lb/proxy-protocol';
import type { Service } from '../../src/manifest/types';
import { validateManifest } from '../../src/manifest/validate';
import { TestStore } from '../store/fixtures';
import type { BalancedMode, Endpoint, ProxyProtocolVersion } from '../../src/lb/types';
import {
  HOST,
  cleanups,
  closeServer,
  readResponse,
  runCleanups,
  startBalancer,
  portOf,
} from './helpers';

after(runCleanups);

const V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

/** What a backend read from a PROXY header. */
interface ProxyInfo {
  version: ProxyProtocolVersion;
  source: string;
  sourcePort: number;
  destination: string;
  destinationPort: number;
}

/** Parses a header at the start of `buf`: info and its length, or undefined if incomplete. */
function parseProxyHeader(buf: Buffer): { info: ProxyInfo; length: number } | undefined {
  if (buf.length >= 16 && buf.subarray(0, 12).equals(V2_SIGNATURE)) {
    const length = 16 + buf.readUInt16BE(14);
    if (buf.length < length) return undefined;
    assert.equal(buf[12], 0x21, 'version 2, PROXY command');
    const v4 = buf[13] === 0x11;
    const size = v4 ? 4 : 16;
    const address = (at: number) =>
      v4
        ? [...buf.subarray(at, at + 4)].join('.')
        : (buf.subarray(at, at + 16).toString('hex').match(/.{4}/g) ?? []).join(':');
    const ports = 16 + 2 * size;
    const info: ProxyInfo = {
      version: 'v2',
      source: address(16),
      destination: address(16 + size),
      sourcePort: buf.readUInt16BE(ports),
      destinationPort: buf.readUInt16BE(ports + 2),
    };
    return { info, length };
  }
  const end = buf.indexOf('\r\n');
  if (end < 0) return undefined;
  const [word, , source, destination, sourcePort, destinationPort] = buf
    .subarray(0, end)
    .toString('latin1')
    .split(' ');
  assert.equal(word, 'PROXY', `a PROXY line, got ${buf.subarray(0, end).toString()}`);
  const info: ProxyInfo = {
    version: 'v1',
    source,
    destination,
    sourcePort: Number(sourcePort),
    destinationPort: Number(destinationPort),
  };
  return { info, length: end + 2 };
}

/**
 * A backend that requires a PROXY header on every connection, then hands
 * the rest of the connection to `serve` with what the header said.
 */
async function startProxyAwareBackend(
  serve: (socket: net.Socket, info: ProxyInfo) => void,
): Promise<{ endpoint: Endpoint; headers: ProxyInfo[] }> {
  const headers: ProxyInfo[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const parsed = parseProxyHeader(buffered);
      if (!parsed) return;
      socket.off('data', onData);
      socket.pause();
      headers.push(parsed.info);
      const rest = buffered.subarray(parsed.length);
      if (rest.length > 0) socket.unshift(rest);
      serve(socket, parsed.info);
    };
    socket.on('data', onData);
  });
  server.listen(0, HOST);
  await once(server, 'listening');
  cleanups.push(() => {
    for (const socket of sockets) socket.destroy();
    return closeServer(server);
  });
  const port = (server.address() as net.AddressInfo).port;
  return { endpoint: { id: 'pp', host: HOST, port, nodeName: 'n' }, headers };
}

/** Serves HTTP on each connection, answering with the PROXY source seen. */
function httpEchoingSource(): (socket: net.Socket, info: ProxyInfo) => void {
  const http1 = http.createServer((req, res) => {
    const info = (req.socket as net.Socket & { proxyInfo?: ProxyInfo }).proxyInfo;
    const text = `${info?.source}:${info?.sourcePort}`;
    res.writeHead(200, { 'content-length': Buffer.byteLength(text) }).end(text);
  });
  cleanups.push(() => closeServer(http1));
  return (socket, info) => {
    Object.assign(socket, { proxyInfo: info });
    http1.emit('connection', socket);
    socket.resume();
  };
}

async function balance(endpoint: Endpoint, mode: BalancedMode, version: ProxyProtocolVersion) {
  const lb = startBalancer();
  const listen = [{ host: HOST, port: 0 }];
  const ports = [{ name: 'p', mode, listen, endpoints: [endpoint], proxyProtocol: version }];
  return portOf(await lb.sync([{ key: 'default/pp', ports }]), 'default/pp');
}

/** A client connection from `localAddress`, ready for keep-alive requests. */
async function connectFrom(port: number, localAddress: string): Promise<net.Socket> {
  const socket = net.connect({ port, host: HOST, localAddress });
  cleanups.push(() => void socket.destroy());
  await once(socket, 'connect');
  return socket;
}

async function get(socket: net.Socket): Promise<string> {
  const reply = readResponse(socket);
  socket.write(`GET / HTTP/1.1\r\nHost: x\r\n\r\n`);
  return (await reply).split('\r\n\r\n')[1];
}

describe('PROXY protocol headers', () => {
  const ends = {
    sourceAddress: '::ffff:192.0.2.7',
    sourcePort: 51234,
    destinationAddress: '127.0.0.1',
    destinationPort: 30080,
  };

  test('v1 names both ends of an IPv4 connection in one text line', () => {
    assert.equal(
      proxyHeader('v1', ends).toString('latin1'),
      'PROXY TCP4 192.0.2.7 127.0.0.1 51234 30080\r\n',
    );
  });

  test('v2 carries the same ends in binary form', () => {
    const parsed = parseProxyHeader(proxyHeader('v2', ends));
    assert.deepEqual(parsed?.info, {
      version: 'v2',
      source: '192.0.2.7',
      sourcePort: 51234,
      destination: '127.0.0.1',
      destinationPort: 30080,
    });
    assert.equal(parsed?.length, 28);
  });

  test('v2 encodes IPv6 ends in full', () => {
    const six = { ...ends, sourceAddress: '2001:db8::7', destinationAddress: '::1' };
    const parsed = parseProxyHeader(proxyHeader('v2', six));
    assert.equal(parsed?.info.source, '2001:0db8:0000:0000:0000:0000:0000:0007');
    assert.equal(parsed?.info.destination, '0000:0000:0000:0000:0000:0000:0000:0001');
  });

  test('ends of different families are sent as unknown', () => {
    const mixed = { ...ends, destinationAddress: '::1' };
    assert.equal(proxyHeader('v1', mixed).toString(), 'PROXY UNKNOWN\r\n');
    assert.equal(proxyHeader('v2', mixed)[12], 0x20, 'v2 LOCAL command');
  });

  test('the annotation names one version for all ports or one per port name', () => {
    assert.equal(proxyProtocolFor('v2', 'http'), 'v2');
    assert.equal(proxyProtocolFor('http=v1, db=v2', 'db'), 'v2');
    assert.equal(proxyProtocolFor('http=v1', 'db'), undefined);
    assert.equal(proxyProtocolFor('v3', 'http'), undefined);
    assert.equal(proxyProtocolFor(undefined, 'http'), undefined);
  });

  test('the agent turns the Service annotation into each port\'s version', () => {
    const store = new TestStore('flotilla-proxy-protocol-');
    cleanups.push(() => store.close());
    const raw = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'pp', annotations: { 'flotilla.io/proxy-protocol': 'http=v2' } },
      spec: {
        type: 'NodePort',
        selector: { app: 'pp' },
        ports: [
          { name: 'http', port: 80 },
          { name: 'raw', port: 81 },
        ],
      },
    };
    store.apply(validateManifest(raw, { file: 'fixture' }).object as Service);
    const [svc] = desiredServices(store.store, HOST);
    assert.deepEqual(
      svc.ports.map((p) => [p.name, p.proxyProtocol]),
      [
        ['http', 'v2'],
        ['raw', undefined],
      ],
    );
  });
});

describe('PROXY protocol towards backends', () => {
  for (const version of ['v1', 'v2'] as const) {
    test(`http mode sends each client's own address with ${version}`, async () => {
      const backend = await startProxyAwareBackend(httpEchoingSource());
      const port = await balance(backend.endpoint, 'http', version);

      const first = await connectFrom(port, '127.0.0.1');
      const second = await connectFrom(port, '127.0.0.2');
      const answers = [await get(first), await get(second), await get(first), await get(second)];
      assert.deepEqual(
        answers.map((a) => a.split(':')[0]),
        ['127.0.0.1', '127.0.0.2', '127.0.0.1', '127.0.0.2'],
      );
      assert.equal(answers[0], `127.0.0.1:${first.localPort}`);
      assert.equal(answers[1], `127.0.0.2:${second.localPort}`);
      // Kept-alive requests reuse the backend connection of their client.
      assert.equal(backend.headers.length, 2);
      assert.ok(backend.headers.every((h) => h.version === version && h.destinationPort === port));
    });
  }

  test('tcp mode sends the header before the first client byte', async () => {
    const backend = await startProxyAwareBackend((socket, info) => {
      socket.resume();
      socket.once('data', (chunk: Buffer) => {
        socket.end(`${info.source} said ${chunk.toString()}`);
      });
    });
    const port = await balance(backend.endpoint, 'tcp', 'v2');

    const socket = await connectFrom(port, '127.0.0.3');
    let reply = '';
    socket.on('data', (c: Buffer) => (reply += c.toString()));
    socket.write('hello');
    await once(socket, 'end');
    assert.equal(reply, '127.0.0.3 said hello');
  });

  test('an upgraded connection starts with the header too', async () => {
    const backend = await startProxyAwareBackend((socket, info) => {
      socket.resume();
      socket.once('data', () => {
        socket.write(
          'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n',
        );
        socket.write(`from ${info.source}`);
      });
    });
    const port = await balance(backend.endpoint, 'http', 'v1');

    const socket = await connectFrom(port, '127.0.0.4');
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString()));
    socket.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
    while (!text.includes('from ')) await once(socket, 'data');
    while (!text.endsWith('127.0.0.4')) await once(socket, 'data');
    assert.match(text, /^HTTP\/1\.1 101 [\s\S]*\r\n\r\nfrom 127\.0\.0\.4$/);
  });
});
