#!/usr/bin/env node
'use strict';
/**
 * Runs Flotilla's balancer alone, for scripts/bench/balancer.sh:
 *
 *   node scripts/bench/balancer-proxy.js MODE LISTEN_PORT BACKEND_PORT
 *
 * MODE is http or tcp; both ports are on 127.0.0.1. Prints "ready" once
 * listening and runs until killed. Needs a build (npx tsc).
 */
const path = require('node:path');
const pino = require('pino');

const ROOT = path.resolve(__dirname, '..', '..');
const { Balancer } = require(path.join(ROOT, 'build', 'src', 'lb', 'balancer'));

async function main() {
  const [mode, listenPort, backendPort] = process.argv.slice(2);
  if (!['http', 'tcp'].includes(mode) || !Number(listenPort) || !Number(backendPort)) {
    console.error('usage: balancer-proxy.js http|tcp LISTEN_PORT BACKEND_PORT');
    process.exit(2);
  }
  const lb = new Balancer({ logger: pino({ level: 'warn' }) });
  const port = Number(backendPort);
  const endpoint = { id: 'backend', host: '127.0.0.1', port, nodeName: 'bench' };
  const listen = [{ host: '127.0.0.1', port: Number(listenPort) }];
  const report = await lb.sync([
    { key: 'default/bench', ports: [{ name: 'http', mode, listen, endpoints: [endpoint] }] },
  ]);
  if (report.failed.length > 0) {
    console.error(`cannot listen: ${JSON.stringify(report.failed)}`);
    process.exit(1);
  }
  process.on('SIGTERM', () => void lb.close().then(() => process.exit(0)));
  console.log('ready');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
