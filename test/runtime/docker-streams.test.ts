import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import {
  createLogDemuxer,
  LineSplitter,
  PullProgressError,
  readPullProgress,
} from '../../src/runtime/docker-streams';

function frame(streamType: number, text: string): Buffer {
  const payload = Buffer.from(text);
  const header = Buffer.alloc(8);
  header.writeUInt8(streamType, 0);
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

async function collect(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += chunk.toString();
  return text;
}

describe('LineSplitter', () => {
  it('joins a line split across chunks and drops carriage returns', () => {
    const lines = new LineSplitter();
    assert.deepEqual(lines.push('{"a":'), []);
    assert.deepEqual(lines.push('1}\r\n{"b"'), ['{"a":1}']);
    assert.deepEqual(lines.push(':2}\n\n'), ['{"b":2}']);
    assert.deepEqual(lines.flush(), []);
  });

  it('returns an unterminated last line on flush', () => {
    const lines = new LineSplitter();
    lines.push('tail');
    assert.deepEqual(lines.flush(), ['tail']);
  });
});

describe('readPullProgress', () => {
  it('resolves when the progress stream ends without an error record', async () => {
    const stream = Readable.from(['{"status":"Pulling"}\n', '{"status":"Done"}\n']);
    await readPullProgress(stream);
  });

  it('rejects with the engine message from an error record in the stream', async () => {
    const stream = Readable.from([
      '{"status":"Pulling fs layer"}\n',
      '{"errorDetail":{"message":"unexpected EOF"},"error":"unexpected EOF"}\n',
    ]);
    await assert.rejects(readPullProgress(stream), (err: unknown) => {
      assert.ok(err instanceof PullProgressError);
      assert.equal(err.message, 'unexpected EOF');
      return true;
    });
  });
});

describe('createLogDemuxer', () => {
  it('merges stdout and stderr frames even when headers are split across chunks', async () => {
    const bytes = Buffer.concat([frame(1, 'out\n'), frame(2, 'err\n'), frame(1, 'more\n')]);
    const chunks = [bytes.subarray(0, 3), bytes.subarray(3, 13), bytes.subarray(13)];
    const text = await collect(Readable.from(chunks).pipe(createLogDemuxer()));
    assert.equal(text, 'out\nerr\nmore\n');
  });
});
