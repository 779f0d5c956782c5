/**
 * A balancer alone in a child process, so that a test can measure its
 * memory apart from the clients and backends. Forked with the backend's
 * port as argument; sends `{ port }` once listening, and answers every
 * "rss" message with `{ rss, peak }` in bytes, where `peak` is the highest
 * RSS sampled since the previous "rss" message.
 */
import pino from 'pino';
import { Balancer } from '../../src/lb/balancer';

const HOST = '127.0.0.1';

async function main(): Promise<void> {
  const backendPort = Number(process.argv[2]);
  const lb = new Balancer({ logger: pino({ level: 'silent' }) });
  const endpoint = { id: 'sink', host: HOST, port: backendPort, nodeName: 'n' };
  const report = await lb.sync([
    {
      key: 'default/upload',
      ports: [
        { name: 'http', mode: 'http', listen: [{ host: HOST, port: 0 }], endpoints: [endpoint] },
      ],
    },
  ]);

  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 10);
  process.on('message', (message) => {
    if (message !== 'rss') return;
    const rss = process.memoryUsage().rss;
    process.send!({ rss, peak: Math.max(peak, rss) });
    peak = rss;
  });
  process.on('disconnect', () => {
    clearInterval(sampler);
    void lb.close().then(() => process.exit(0));
  });
  process.send!({ port: report.listeners[0].boundPort });
}

void main();
