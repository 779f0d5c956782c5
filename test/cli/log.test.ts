import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogger } from '../../src/log';

function sink(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  return { stream, text: () => text };
}

describe('createLogger', () => {
  it('writes one JSON record per line with the name and bound fields', () => {
    const out = sink();
    const log = createLogger({ name: 'agent', pretty: false, destination: out.stream });
    log.child({ nodeId: 'alpha' }).info({ term: 3 }, 'became leader');

    const record = JSON.parse(out.text().trim());
    assert.equal(record.name, 'agent');
    assert.equal(record.msg, 'became leader');
    assert.equal(record.nodeId, 'alpha');
    assert.equal(record.term, 3);
    assert.equal(record.level, 30);
  });

  it('drops records below the chosen level', () => {
    const out = sink();
    const log = createLogger({ level: 'warn', pretty: false, destination: out.stream });
    log.info('not shown');
    log.warn('shown');
    assert.deepEqual(
      out.text().trim().split('\n').map((l) => JSON.parse(l).msg),
      ['shown'],
    );
  });

  it('writes readable lines, not JSON, when pretty', () => {
    const out = sink();
    const log = createLogger({ pretty: true, destination: out.stream });
    log.info({ podName: 'web-1' }, 'pod started');
    assert.match(out.text(), /INFO.*pod started/);
    assert.match(out.text(), /podName: "web-1"/);
    assert.throws(() => JSON.parse(out.text()));
  });
});
